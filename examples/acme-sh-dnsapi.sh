#!/bin/sh
# Runs an acme.sh DNS API hook, so acme.sh's many providers work with
# cert-manager-webhook-exec (default mode). acme.sh calls a hook as
#   dns_<name>_add <fulldomain> <value>   and   dns_<name>_rm <fulldomain> <value>
# with the record name without its trailing dot; this adapter does the same.
#
#   acme-sh-dnsapi.sh present|cleanup <fqdn> <value>
#   acme-sh-dnsapi.sh timeout
#
# Environment:
#   ACMESH_DNSAPI      the hook's name, e.g. dns_cf (required)
#   ACMESH_DNSAPI_DIR  the directory holding <name>.sh, e.g. acme.sh's dnsapi/ (required)
#   plus what the hook reads (e.g. CF_Token for dns_cf); give them through the
#   program's env, passEnv or secretEnv.
#   PROPAGATION_TIMEOUT, POLLING_INTERVAL  answer to `timeout` (default 120 and 2)
#
# acme.sh itself is not needed: the helpers its hooks use most are defined
# below (logging, reading and saving settings, _get/_post with curl, string
# helpers). Settings a hook would save to acme.sh's account file are read from
# the environment instead. A hook that needs another helper fails with
# "not found"; add the helper here.
#
# Any variable may come from an Issuer's Secret (secretEnv). The adapter checks
# the shape of its own; it cannot know the hook's, which acme.sh's hooks put
# into headers, URLs and JSON as they are, so it refuses to run when any
# variable of its environment holds a control character (a newline would add
# a header or an nsupdate command) or more than 16384 bytes.
set -eu

# check NAME VALUE ERE SHAPE exits unless VALUE, the value of NAME, is
# printable ASCII of at most 1024 bytes that ERE matches whole.
check() {
	case $2 in
	*[![:print:]]*) ;;
	*) [ ${#2} -le 1024 ] && printf '%s\n' "$2" | grep -Eqx -- "$3" && return ;;
	esac
	echo "${0##*/}: $1 must be $4 (at most 1024 bytes)" >&2
	exit 2
}
seconds='[0-9]+(\.[0-9]+)?'

case "${1:-}" in
timeout)
	check PROPAGATION_TIMEOUT "${PROPAGATION_TIMEOUT:=120}" "$seconds" "a number of seconds"
	check POLLING_INTERVAL "${POLLING_INTERVAL:=2}" "$seconds" "a number of seconds"
	printf '{"timeout": %s, "interval": %s}\n' "$PROPAGATION_TIMEOUT" "$POLLING_INTERVAL"
	exit 0
	;;
present) function=add ;;
cleanup) function=rm ;;
*)
	echo "usage: $0 present|cleanup <fqdn> <value> | timeout" >&2
	exit 2
	;;
esac
if [ "${2:-}" = "--" ] || [ $# -ne 3 ]; then
	echo "$0 supports default mode only: present|cleanup <fqdn> <value>" >&2
	exit 2
fi
check '<fqdn>' "$2" '([A-Za-z0-9_-]+\.)*[A-Za-z0-9_-]+\.?' "a DNS name"
check '<value>' "$3" '[A-Za-z0-9_+/=-]+' "base64url or base64"
: "${ACMESH_DNSAPI:?set ACMESH_DNSAPI to the hook name, e.g. dns_cf}"
: "${ACMESH_DNSAPI_DIR:?set ACMESH_DNSAPI_DIR to the directory of ${ACMESH_DNSAPI}.sh}"
check ACMESH_DNSAPI "$ACMESH_DNSAPI" 'dns_[A-Za-z0-9_]+' "a hook name: dns_ and letters, digits, '_'"
check ACMESH_DNSAPI_DIR "$ACMESH_DNSAPI_DIR" '/[A-Za-z0-9._/-]*' \
	"an absolute path of letters, digits, '.', '_', '-', '/'"
bad=$(awk 'BEGIN { for (k in ENVIRON) if (ENVIRON[k] ~ /[[:cntrl:]]/ || length(ENVIRON[k]) > 16384) { print k; exit } }')
[ -z "$bad" ] || { echo "${0##*/}: $bad must be one line without control characters (at most 16384 bytes)" >&2; exit 2; }
fulldomain=${2%.}
txtvalue=$3

# --- the acme.sh helpers hooks use ---
_info() { echo "[info] $*" >&2; }
_err() { echo "[error] $*" >&2; }
_warn() { echo "[warn] $*" >&2; }
_debug() { [ -z "${DEBUG:-}" ] || echo "[debug] $*" >&2; }
_debug2() { _debug "$@"; }
_debug3() { _debug "$@"; }
_secure_debug() { _debug "$1" "[hidden]"; }
_secure_debug2() { _debug "$1" "[hidden]"; }
_exists() { command -v "$1" >/dev/null 2>&1; }
_contains() { case "$1" in *"$2"*) return 0 ;; *) return 1 ;; esac; }
_startswith() { case "$1" in "$2"*) return 0 ;; *) return 1 ;; esac; }
_endswith() { case "$1" in *"$2") return 0 ;; *) return 1 ;; esac; }
_egrep_o() { grep -Eo "$1"; }
_lower_case() { tr '[:upper:]' '[:lower:]'; }
_upper_case() { tr '[:lower:]' '[:upper:]'; }
_math() { echo "$(($@))"; }
_sleep() { sleep "$1"; }
# eval only a variable's name, never its value: the hook passes the name.
_readaccountconf() {
	case $1 in '' | [0-9]* | *[!A-Za-z0-9_]*) _err "not a variable name: $1"; return 1 ;; esac
	eval "printf '%s' \"\${$1:-}\""
}
_readaccountconf_mutable() { _readaccountconf "$1"; }
_readdomainconf() { _readaccountconf "$1"; }
_getdeployconf() { _readaccountconf "$1"; }
_saveaccountconf() { :; }
_saveaccountconf_mutable() { :; }
_savedomainconf() { :; }
_clearaccountconf() { :; }
_clearaccountconf_mutable() { :; }
# _get URL [onlyheader]; _post BODY URL [needbase64] [METHOD] [CONTENT_TYPE]:
# headers from _H1.._H5, like acme.sh.
_headers() {
	for h in "${_H1:-}" "${_H2:-}" "${_H3:-}" "${_H4:-}" "${_H5:-}"; do
		[ -n "$h" ] && printf '%s\n' "$h"
	done
	return 0
}
# Each response's headers go to $_adapter_headers (a name no hook uses: hooks
# share this shell's variables), so a failing hook's last answer can be read.
_get() {
	_headers | curl -sS -D "$_adapter_headers" -H @- ${2:+-I} "$1"
}
_post() {
	_headers | curl -sS -D "$_adapter_headers" -H @- -X "${4:-POST}" ${5:+-H "Content-Type: $5"} --data "$1" "$2"
}
# --- end of helpers ---

umask 077
_adapter_headers=$(mktemp "${TMPDIR:-/tmp}/acme-sh-response.XXXXXX")
trap 'rm -f "$_adapter_headers"' EXIT
hook="$ACMESH_DNSAPI_DIR/$ACMESH_DNSAPI.sh"
[ -r "$hook" ] || { echo "no hook at $hook" >&2; exit 2; }
# shellcheck disable=SC1090
. "$hook"
if ! "${ACMESH_DNSAPI}_$function" "$fulldomain" "$txtvalue"; then
	# A provider's 429 becomes the webhook's "slow down": exit status 75 and
	# a retry-after line (the provider's Retry-After when it gives seconds).
	if grep -q '^HTTP/[0-9.]* 429' "$_adapter_headers"; then
		after=$(sed -n 's/^[Rr][Ee][Tt][Rr][Yy]-[Aa][Ff][Tt][Ee][Rr]: *\([0-9][0-9]*\).*/\1/p' "$_adapter_headers" | tail -n 1)
		echo "the provider answered 429 Too Many Requests" >&2
		echo "retry-after: ${after:-60}" >&2
		exit 75
	fi
	exit 1
fi
echo "$1 $fulldomain: done"
