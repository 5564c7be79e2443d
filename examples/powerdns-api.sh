#!/bin/sh
# PowerDNS Authoritative HTTP API, with curl and jq: a generic JSON API example
# for cert-manager-webhook-exec (default mode). The API replaces a whole TXT
# RRset at once, so the program reads the current values, adds or removes its
# own, and writes the set back; the webhook runs one program per zone at a time
# (serialize: zone, the default), so no other run changes the set meanwhile.
#
#   powerdns-api.sh present|cleanup <fqdn> <value>
#   powerdns-api.sh timeout
#
# Environment:
#   PDNS_API_URL     e.g. http://pdns.example.net:8081 (required)
#   PDNS_API_KEY     the API key (required; sent in a header file, never on the command line)
#   PDNS_SERVER_ID   default localhost
#   PDNS_ZONE        zone to change (default: CERT_MANAGER_RESOLVED_ZONE)
#   PDNS_TTL         record TTL in seconds (default 60)
#   PROPAGATION_TIMEOUT, POLLING_INTERVAL  answer to `timeout` (default 120 and 2)
set -eu

# check NAME VALUE ERE SHAPE exits unless VALUE, the value of NAME, is
# printable ASCII of at most 1024 bytes that ERE matches whole. An Issuer's
# Secret (secretEnv) may set any variable to any bytes: a newline in the key
# would add headers to our requests, a '/' or '?' in the zone or server id
# would change their path.
check() {
	case $2 in
	*[![:print:]]*) ;;
	*) [ ${#2} -le 1024 ] && printf '%s\n' "$2" | grep -Eqx -- "$3" && return ;;
	esac
	echo "${0##*/}: $1 must be $4 (at most 1024 bytes)" >&2
	exit 2
}
dns_name='([A-Za-z0-9_-]+\.)*[A-Za-z0-9_-]+\.?'
seconds='[0-9]+(\.[0-9]+)?'

case "${1:-}" in
timeout)
	check PROPAGATION_TIMEOUT "${PROPAGATION_TIMEOUT:=120}" "$seconds" "a number of seconds"
	check POLLING_INTERVAL "${POLLING_INTERVAL:=2}" "$seconds" "a number of seconds"
	printf '{"timeout": %s, "interval": %s}\n' "$PROPAGATION_TIMEOUT" "$POLLING_INTERVAL"
	exit 0
	;;
present | cleanup) ;;
*)
	echo "usage: $0 present|cleanup <fqdn> <value> | timeout" >&2
	exit 2
	;;
esac
if [ "${2:-}" = "--" ] || [ $# -ne 3 ]; then
	echo "$0 supports default mode only: present|cleanup <fqdn> <value>" >&2
	exit 2
fi
action=$1 fqdn=$2 value=$3
check '<fqdn>' "$fqdn" "$dns_name" "a DNS name"
check '<value>' "$value" '[A-Za-z0-9_+/=-]+' "base64url or base64"
: "${PDNS_API_URL:?set PDNS_API_URL to the PowerDNS API, e.g. http://pdns:8081}"
: "${PDNS_API_KEY:?set PDNS_API_KEY}"
check PDNS_API_URL "$PDNS_API_URL" 'https?://[][A-Za-z0-9.:-]+(/[A-Za-z0-9._~/-]*)?' \
	"an http:// or https:// URL: host[:port][/path]"
check PDNS_API_KEY "$PDNS_API_KEY" "[^ \"'\`\\]+" "printable ASCII without spaces, quotes or backslashes"
check PDNS_SERVER_ID "${PDNS_SERVER_ID:=localhost}" '[A-Za-z0-9_-][A-Za-z0-9._-]*' \
	"a server id: letters, digits, '.', '_', '-'"
check PDNS_TTL "${PDNS_TTL:=60}" '[0-9]+' "a whole number of seconds"
[ -z "${PDNS_ZONE:-}" ] || check PDNS_ZONE "$PDNS_ZONE" "$dns_name" "a DNS name"
[ -z "${CERT_MANAGER_RESOLVED_ZONE:-}" ] ||
	check CERT_MANAGER_RESOLVED_ZONE "$CERT_MANAGER_RESOLVED_ZONE" "$dns_name" "a DNS name"
zone=${PDNS_ZONE:-${CERT_MANAGER_RESOLVED_ZONE:-}}
[ -n "$zone" ] || { echo "set PDNS_ZONE (the zone of $fqdn)" >&2; exit 2; }
case "$zone" in *.) ;; *) zone="$zone." ;; esac
case "$fqdn" in *.) ;; *) fqdn="$fqdn." ;; esac
api="$PDNS_API_URL/api/v1/servers/$PDNS_SERVER_ID/zones/$zone"

umask 077
work=$(mktemp -d "${TMPDIR:-/tmp}/pdns.XXXXXX")
trap 'rm -rf "$work"' EXIT
headers=$work/headers
printf 'X-API-Key: %s\nContent-Type: application/json\n' "$PDNS_API_KEY" >"$headers"

# call [curl arguments] makes one API request and prints the response body. A
# 429 becomes the webhook's "slow down" (exit status 75 and a retry-after line
# on stderr, with the API's Retry-After when it gives seconds), so the webhook
# pauses this program instead of calling again; another error exits 1.
call() {
	status=$(curl -sS -o "$work/body" -D "$work/response" -w '%{http_code}' -H @"$headers" "$@") || exit 1
	case $status in
	2??) cat "$work/body" ;;
	429)
		after=$(sed -n 's/^[Rr][Ee][Tt][Rr][Yy]-[Aa][Ff][Tt][Ee][Rr]: *\([0-9][0-9]*\).*/\1/p' "$work/response" | tail -n 1)
		echo "the PowerDNS API answered 429 Too Many Requests" >&2
		echo "retry-after: ${after:-60}" >&2
		exit 75
		;;
	*)
		echo "the PowerDNS API answered $status: $(head -c 300 "$work/body")" >&2
		exit 1
		;;
	esac
}

# Read first, then parse: in a pipeline sh would see only jq's status, and a
# failed read would look like a zone without our record. TXT contents are
# stored quoted: "value".
zone_json=$(call "$api")
current=$(printf '%s' "$zone_json" |
	jq -c --arg name "$fqdn" '[.rrsets[] | select(.name == $name and .type == "TXT") | .records[].content]')
if [ "$action" = present ]; then
	wanted=$(printf '%s' "$current" | jq -c --arg v "\"$value\"" '. + [$v] | unique')
else
	wanted=$(printf '%s' "$current" | jq -c --arg v "\"$value\"" '. - [$v]')
fi
if [ "$wanted" = "$current" ]; then
	echo "$action $fqdn: nothing to change"
	exit 0
fi
jq -n --arg name "$fqdn" --argjson contents "$wanted" --argjson ttl "$PDNS_TTL" '{rrsets: [{
	name: $name, type: "TXT", ttl: $ttl,
	changetype: (if ($contents | length) == 0 then "DELETE" else "REPLACE" end),
	records: [$contents[] | {content: ., disabled: false}]
}]}' >"$work/patch"
call -X PATCH --data @"$work/patch" "$api" >/dev/null
echo "$action $fqdn: done"
