#!/bin/sh
# RFC 2136 dynamic DNS update with TSIG, for cert-manager-webhook-exec (and
# lego's exec provider). It adds exactly its value and deletes exactly its
# value, never the other TXT records at the name, so wildcard and apex
# certificates (two values at one name) work.
#
#   nsupdate.sh present|cleanup <fqdn> <value>                  (default mode)
#   nsupdate.sh present|cleanup -- <domain> <token> <keyAuth>   (RAW mode)
#   nsupdate.sh timeout
#
# Environment:
#   NSUPDATE_SERVER     primary server to update (required)
#   NSUPDATE_PORT       its port (default 53)
#   NSUPDATE_ZONE       zone to update (default: CERT_MANAGER_RESOLVED_ZONE,
#                       else nsupdate finds it from the SOA)
#   TSIG_KEY_NAME       TSIG key name (required)
#   TSIG_SECRET         TSIG key secret, base64 (required)
#   TSIG_ALGORITHM      default hmac-sha256
#   NSUPDATE_TTL        record TTL in seconds (default 60)
#   PROPAGATION_TIMEOUT, POLLING_INTERVAL
#                       answer to `timeout` in seconds (default 60 and 2)
set -eu

usage() {
	echo "usage: $0 present|cleanup <fqdn> <value> | present|cleanup -- <domain> <token> <keyAuth> | timeout" >&2
	exit 2
}

# check NAME VALUE ERE SHAPE exits unless VALUE, the value of NAME, is
# printable ASCII of at most 255 bytes that ERE matches whole. An Issuer's
# Secret (secretEnv) may set any variable to any bytes: a newline in a value
# would add update lines of its own to nsupdate's input, signed by our key.
check() {
	case $2 in
	*[![:print:]]*) ;;
	*) [ ${#2} -le 255 ] && printf '%s\n' "$2" | grep -Eqx -- "$3" && return ;;
	esac
	echo "${0##*/}: $1 must be $4 (at most 255 bytes)" >&2
	exit 2
}
dns_name='([A-Za-z0-9_-]+\.)*[A-Za-z0-9_-]+\.?'
base64url='[A-Za-z0-9_-]+'
seconds='[0-9]+(\.[0-9]+)?'

[ $# -ge 1 ] || usage
action=$1
shift

if [ "$action" = timeout ]; then
	check PROPAGATION_TIMEOUT "${PROPAGATION_TIMEOUT:=60}" "$seconds" "a number of seconds"
	check POLLING_INTERVAL "${POLLING_INTERVAL:=2}" "$seconds" "a number of seconds"
	printf '{"timeout": %s, "interval": %s}\n' "$PROPAGATION_TIMEOUT" "$POLLING_INTERVAL"
	exit 0
fi

case "$action" in
present | cleanup) ;;
*) usage ;;
esac

if [ "${1:-}" = "--" ]; then
	# RAW mode: the record is _acme-challenge.<domain>. and its value is
	# base64url(sha256(keyAuth)), RFC 8555 section 8.4.
	[ $# -eq 4 ] || usage
	check '<domain>' "$2" "$dns_name" "a DNS name"
	check '<token>' "$3" "$base64url" "base64url"
	check '<keyAuth>' "$4" "$base64url\.$base64url" "two base64url parts joined by a dot"
	fqdn="_acme-challenge.$2."
	value=$(printf '%s' "$4" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=')
else
	[ $# -eq 2 ] || usage
	check '<fqdn>' "$1" "$dns_name" "a DNS name"
	check '<value>' "$2" '[A-Za-z0-9_+/=-]+' "base64url or base64"
	fqdn=$1
	value=$2
fi
case "$fqdn" in
*.) ;;
*) fqdn="$fqdn." ;;
esac

: "${NSUPDATE_SERVER:?set NSUPDATE_SERVER to the primary DNS server}"
: "${TSIG_KEY_NAME:?set TSIG_KEY_NAME to the TSIG key name}"
: "${TSIG_SECRET:?set TSIG_SECRET to the TSIG key secret}"
check NSUPDATE_SERVER "$NSUPDATE_SERVER" '[A-Za-z0-9:][A-Za-z0-9.:-]*' "a host name or IP address"
check NSUPDATE_PORT "${NSUPDATE_PORT:=53}" '[0-9]{1,5}' "a port number"
check TSIG_KEY_NAME "$TSIG_KEY_NAME" "$dns_name" "a DNS name"
check TSIG_SECRET "$TSIG_SECRET" '[A-Za-z0-9+/]+={0,2}' "base64"
check TSIG_ALGORITHM "${TSIG_ALGORITHM:=hmac-sha256}" 'hmac-(md5|sha1|sha224|sha256|sha384|sha512)' \
	"hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512"
check NSUPDATE_TTL "${NSUPDATE_TTL:=60}" '[0-9]+' "a whole number of seconds"
[ -z "${NSUPDATE_ZONE:-}" ] || check NSUPDATE_ZONE "$NSUPDATE_ZONE" "$dns_name" "a DNS name"
[ -z "${CERT_MANAGER_RESOLVED_ZONE:-}" ] ||
	check CERT_MANAGER_RESOLVED_ZONE "$CERT_MANAGER_RESOLVED_ZONE" "$dns_name" "a DNS name"
zone=${NSUPDATE_ZONE:-${CERT_MANAGER_RESOLVED_ZONE:-}}

# The key goes to nsupdate in a private file, never on its command line where
# other processes could read it.
umask 077
keyfile=$(mktemp "${TMPDIR:-/tmp}/nsupdate-key.XXXXXX")
trap 'rm -f "$keyfile"' EXIT
printf 'key "%s" {\n\talgorithm %s;\n\tsecret "%s";\n};\n' \
	"$TSIG_KEY_NAME" "$TSIG_ALGORITHM" "$TSIG_SECRET" >"$keyfile"

if [ "$action" = present ]; then
	# Adding a record that exists is a no-op (RFC 2136 3.4.2.2): present is idempotent.
	change="update add $fqdn $NSUPDATE_TTL TXT \"$value\""
else
	# Deleting a record that is gone is a no-op: cleanup is idempotent.
	change="update delete $fqdn TXT \"$value\""
fi

nsupdate -k "$keyfile" -t 10 <<UPDATE
server $NSUPDATE_SERVER $NSUPDATE_PORT
${zone:+zone $zone}
$change
send
UPDATE
echo "$action $fqdn: done"
