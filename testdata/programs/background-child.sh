#!/bin/sh
# Leaves a background child holding its output open, then exits successfully.
[ "$1" = timeout ] && exit 1
sleep 300 &
echo "$!" >>"$PID_LOG"
echo presented
