#!/bin/sh
# Appends its arguments to $ARGV_LOG, NUL-separated, one call per line, for
# every action including `timeout`, which it then answers like a program that
# does not implement it.
for arg in "$@"; do printf '%s\0' "$arg"; done >>"$ARGV_LOG"
printf '\n' >>"$ARGV_LOG"
[ "$1" = timeout ] && exit 1
exit 0
