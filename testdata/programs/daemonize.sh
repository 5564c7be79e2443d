#!/bin/sh
# Leaves two daemons that escape the process group: one by setsid, keeping the
# output pipes open, and one by a double fork and setsid, orphaned at once.
# Both hold the run's environment and so its secrets. Records their PIDs in
# $PID_LOG and exits successfully.
[ "$1" = timeout ] && exit 1
setsid sh -c 'echo $$ >>"$PID_LOG"; exec sleep 300' &
(setsid sh -c 'echo $$ >>"$PID_LOG"; exec sleep 300' </dev/null >/dev/null 2>&1 &)
until [ "$(wc -l <"$PID_LOG" 2>/dev/null)" = 2 ]; do sleep 0.01; done
echo presented
