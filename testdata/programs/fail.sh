#!/bin/sh
# Fails like a broken DNS API call: a few lines of output, then exit $FAIL_STATUS
# (after $FAIL_AFTER seconds).
[ "$1" = timeout ] && exit 1
sleep "${FAIL_AFTER:-0}"
echo "calling the DNS API for $2"
echo "warning: retrying" >&2
echo "error: API said 403 for token ${API_TOKEN:-unset}" >&2
exit "${FAIL_STATUS:-3}"
