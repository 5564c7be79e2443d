#!/bin/sh
# A DNS provider stand-in whose API calls are counted: every call appends a
# line "<unix seconds> <namespace> <action>" to $CALL_LOG. While the file
# $MISCONFIGURED exists it fails like an expired API token; once it is
# removed, it writes the record for real through $NSUPDATE_PROGRAM.
[ "$1" = timeout ] && exit 1
printf '%s %s %s\n' "$(date +%s)" "$CERT_MANAGER_RESOURCE_NAMESPACE" "$1" >>"$CALL_LOG"
if [ -e "$MISCONFIGURED" ]; then
	echo "API said 401 unauthorized: token expired" >&2
	exit 1
fi
exec "$NSUPDATE_PROGRAM" "$@"
