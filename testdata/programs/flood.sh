#!/bin/sh
# Writes far more output than the webhook keeps: many lines, then one huge line.
[ "$1" = timeout ] && exit 1
i=0
while [ $i -lt 20000 ]; do echo "line $i of a flood of output"; i=$((i + 1)); done
head -c 1000000 /dev/zero | tr '\0' 'x'
echo
echo "secret at the end: $API_TOKEN" >&2
exit 1
