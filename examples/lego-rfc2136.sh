#!/bin/sh
# A minimal lego exec script, as Traefik users have them: it reads lego's own
# rfc2136 variables, so the same environment works under lego, Traefik and
# cert-manager-webhook-exec (with EXEC_PATH pointing here, the webhook passes
# its whole environment to the program, as lego does).
#
#   lego-rfc2136.sh present|cleanup <fqdn> <value>
#
# Environment (lego's names): RFC2136_NAMESERVER (host or host:port),
# RFC2136_TSIG_KEY, RFC2136_TSIG_SECRET, RFC2136_TSIG_ALGORITHM (default hmac-sha256.)
set -eu
[ "${1:-}" = timeout ] && exit 1 # no answer: the defaults (EXEC_PROPAGATION_TIMEOUT, ...) apply
[ $# -eq 3 ] || { echo "usage: $0 present|cleanup <fqdn> <value>" >&2; exit 2; }
# Exits unless $2 (the value of $1) is printable ASCII of at most 255 bytes
# matching the regular expression $3: a variable may come from an Issuer's
# Secret, and a newline would add update lines to nsupdate's input.
check() {
	case $2 in *[![:print:]]*) ;; *) [ ${#2} -le 255 ] && printf '%s\n' "$2" | grep -Eqx -- "$3" && return ;; esac
	echo "${0##*/}: $1 must be $4 (at most 255 bytes)" >&2
	exit 2
}
dns_name='([A-Za-z0-9_-]+\.)*[A-Za-z0-9_-]+\.?'
check '<fqdn>' "$2" "$dns_name" "a DNS name"
check '<value>' "$3" '[A-Za-z0-9_+/=-]+' "base64url or base64"
check RFC2136_NAMESERVER "${RFC2136_NAMESERVER:-}" '[A-Za-z0-9.-]+(:[0-9]{1,5})?' "host or host:port"
check RFC2136_TSIG_KEY "${RFC2136_TSIG_KEY:-}" "$dns_name" "a DNS name"
check RFC2136_TSIG_SECRET "${RFC2136_TSIG_SECRET:-}" '[A-Za-z0-9+/]+={0,2}' "base64"
algorithm=${RFC2136_TSIG_ALGORITHM:-hmac-sha256.}
check RFC2136_TSIG_ALGORITHM "$algorithm" 'hmac-(md5|sha1|sha224|sha256|sha384|sha512)\.?' \
	"hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512, with or without a final dot"
server=${RFC2136_NAMESERVER%:*} port=53
case "$RFC2136_NAMESERVER" in *:*) port=${RFC2136_NAMESERVER##*:} ;; esac
keyfile=$(umask 077 && mktemp)
trap 'rm -f "$keyfile"' EXIT
printf 'key "%s" { algorithm %s; secret "%s"; };\n' "$RFC2136_TSIG_KEY" "${algorithm%.}" "$RFC2136_TSIG_SECRET" >"$keyfile"
case "$1" in
present) change="update add $2 60 TXT \"$3\"" ;;
cleanup) change="update delete $2 TXT \"$3\"" ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
printf 'server %s %s\n%s\nsend\n' "$server" "$port" "$change" | nsupdate -k "$keyfile"
