#!/bin/sh
# txt-file.sh with a common mistake: the name holds one value at most. With
# ONE_VALUE=replace present replaces the value there; with ONE_VALUE=first it
# leaves it and adds nothing. Either way it exits 0.
case "$1" in
present)
	if [ "$ONE_VALUE" = replace ] || ! [ -s "$TXT_FILE" ]; then
		printf '%s\n' "$3" >"$TXT_FILE"
	fi
	;;
cleanup)
	grep -vxF -e "$3" "$TXT_FILE" >"$TXT_FILE.new" || true
	mv "$TXT_FILE.new" "$TXT_FILE"
	;;
esac
