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

case "${1:-}" in
timeout)
	printf '{"timeout": %s, "interval": %s}\n' "${PROPAGATION_TIMEOUT:-120}" "${POLLING_INTERVAL:-2}"
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
: "${PDNS_API_URL:?set PDNS_API_URL to the PowerDNS API, e.g. http://pdns:8081}"
: "${PDNS_API_KEY:?set PDNS_API_KEY}"
zone=${PDNS_ZONE:-${CERT_MANAGER_RESOLVED_ZONE:-}}
[ -n "$zone" ] || { echo "set PDNS_ZONE (the zone of $fqdn)" >&2; exit 2; }
case "$zone" in *.) ;; *) zone="$zone." ;; esac
case "$fqdn" in *.) ;; *) fqdn="$fqdn." ;; esac
api="$PDNS_API_URL/api/v1/servers/${PDNS_SERVER_ID:-localhost}/zones/$zone"

umask 077
headers=$(mktemp "${TMPDIR:-/tmp}/pdns-headers.XXXXXX")
trap 'rm -f "$headers"' EXIT
printf 'X-API-Key: %s\nContent-Type: application/json\n' "$PDNS_API_KEY" >"$headers"

# TXT contents are stored quoted: "value".
current=$(curl -fsS -H @"$headers" "$api" |
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
jq -n --arg name "$fqdn" --argjson contents "$wanted" --argjson ttl "${PDNS_TTL:-60}" '{rrsets: [{
	name: $name, type: "TXT", ttl: $ttl,
	changetype: (if ($contents | length) == 0 then "DELETE" else "REPLACE" end),
	records: [$contents[] | {content: ., disabled: false}]
}]}' | curl -fsS -X PATCH -H @"$headers" --data @- "$api"
echo "$action $fqdn: done"
