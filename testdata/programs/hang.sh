#!/bin/sh
# Starts a grandchild, records both PIDs in $PID_LOG, then hangs.
[ "$1" = timeout ] && exit 1
sleep 300 &
echo "$$ $!" >"$PID_LOG"
trap '' TERM
while :; do sleep 1; done
