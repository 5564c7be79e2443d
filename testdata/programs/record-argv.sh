#!/bin/sh
# Appends its arguments to $ARGV_LOG, NUL-separated, one call per line.
# Answers `timeout` like a program that does not implement it.
[ "$1" = timeout ] && exit 1
for arg in "$@"; do printf '%s\0' "$arg"; done >>"$ARGV_LOG"
printf '\n' >>"$ARGV_LOG"
