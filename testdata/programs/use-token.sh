#!/bin/sh
# Uses $API_TOKEN like a DNS API client: records it in $TOKEN_LOG, prints it
# (as careless scripts do), and fails when $FAIL is set.
[ "$1" = timeout ] && exit 1
printf '%s\n' "$API_TOKEN" >>"$TOKEN_LOG"
echo "authenticating with token $API_TOKEN"
if [ -n "${FAIL:-}" ]; then
	echo "error: token $API_TOKEN rejected" >&2
	exit 1
fi
