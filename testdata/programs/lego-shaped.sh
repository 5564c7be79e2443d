#!/bin/sh
# Shaped as many scripts for lego's exec provider are: present, else cleanup;
# it knows no `timeout`, which would run its cleanup branch. Keeps the TXT
# values of one name in $TXT_FILE as txt-file.sh does, and appends each
# call's arguments to $TXT_FILE.calls, one call a line.
printf '%s\n' "$*" >>"$TXT_FILE.calls"
if [ "$1" = present ]; then
	grep -qxF -e "$3" "$TXT_FILE" 2>/dev/null || printf '%s\n' "$3" >>"$TXT_FILE"
else
	grep -vxF -e "$3" "$TXT_FILE" >"$TXT_FILE.new" || true
	mv "$TXT_FILE.new" "$TXT_FILE"
fi
