#!/bin/sh
# Keeps the TXT values of one name in $TXT_FILE, one a line, for a test DNS
# server to serve: present adds its value, cleanup removes it and marks that a
# cleanup ran ($TXT_FILE.cleanup). Answers `timeout` with a short window.
# A value may start with '-' (base64url), hence -e.
case "$1" in
timeout) echo '{"timeout": 1, "interval": 0.1}' ;;
present) grep -qxF -e "$3" "$TXT_FILE" 2>/dev/null || printf '%s\n' "$3" >>"$TXT_FILE" ;;
cleanup)
	touch "$TXT_FILE.cleanup"
	grep -vxF -e "$3" "$TXT_FILE" >"$TXT_FILE.new" || true
	mv "$TXT_FILE.new" "$TXT_FILE"
	;;
esac
