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
server=${RFC2136_NAMESERVER%:*} port=53
case "$RFC2136_NAMESERVER" in *:*) port=${RFC2136_NAMESERVER##*:} ;; esac
algorithm=${RFC2136_TSIG_ALGORITHM:-hmac-sha256.}
keyfile=$(umask 077 && mktemp)
trap 'rm -f "$keyfile"' EXIT
printf 'key "%s" { algorithm %s; secret "%s"; };\n' "$RFC2136_TSIG_KEY" "${algorithm%.}" "$RFC2136_TSIG_SECRET" >"$keyfile"
case "$1" in
present) change="update add $2 60 TXT \"$3\"" ;;
cleanup) change="update delete $2 TXT \"$3\"" ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
printf 'server %s %s\n%s\nsend\n' "$server" "$port" "$change" | nsupdate -k "$keyfile"
