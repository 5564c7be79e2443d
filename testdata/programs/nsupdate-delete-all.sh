#!/bin/sh
# A common mistake, for `check` to catch: cleanup deletes every TXT record at
# the name instead of only its own value. present is examples/nsupdate.sh.
[ "$1" = cleanup ] || exec "$NSUPDATE_PROGRAM" "$@"
umask 077
keyfile=$(mktemp)
trap 'rm -f "$keyfile"' EXIT
printf 'key "%s" { algorithm hmac-sha256; secret "%s"; };\n' "$TSIG_KEY_NAME" "$TSIG_SECRET" >"$keyfile"
nsupdate -k "$keyfile" <<UPDATE
server $NSUPDATE_SERVER $NSUPDATE_PORT
update delete $2 TXT
send
UPDATE
