#!/bin/sh
# Rejects its admin token the way an API client reports it, quoting the token.
[ "$1" = timeout ] && exit 1
echo "error: token $API_TOKEN rejected" >&2
exit 1
