#!/bin/sh
# Records its arguments in $ARGV_LOG (as record-argv.sh does), then runs the
# example nsupdate program with them: a real program whose input is checked.
[ "$1" = timeout ] || {
	for arg in "$@"; do printf '%s\0' "$arg"; done >>"$ARGV_LOG"
	printf '\n' >>"$ARGV_LOG"
}
exec "$NSUPDATE_PROGRAM" "$@"
