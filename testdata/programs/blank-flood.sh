#!/bin/sh
# Writes 5,000,000 empty lines: nothing for a byte count to stop, everything for
# a line count. A tenant reaches this through an API that answers with them.
[ "$1" = timeout ] && exit 1
head -c 5000000 /dev/zero | tr '\0' '\n'
echo "last words" >&2
exit 1
