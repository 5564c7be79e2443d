#!/bin/sh
# Records start and end times (ns) of each run with its zone, for overlap checks.
[ "$1" = timeout ] && exit 1
start=$(date +%s%N)
sleep "${RUN_SECONDS:-0.5}"
end=$(date +%s%N)
echo "$CERT_MANAGER_RESOLVED_ZONE $start $end" >>"$INTERVAL_LOG"
