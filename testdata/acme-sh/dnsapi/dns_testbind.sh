#!/usr/bin/env sh
# A DNS API hook written the way acme.sh's hooks are (functions
# dns_<name>_add/_rm <fulldomain> <txtvalue>, settings through
# _readaccountconf_mutable/_saveaccountconf_mutable, logging through _info),
# updating the test BIND server. Used to test examples/acme-sh-dnsapi.sh.

dns_testbind_add() {
  fulldomain=$1
  txtvalue=$2
  _testbind_settings || return 1
  _info "adding $fulldomain"
  _testbind_update "update add $fulldomain. 60 TXT \"$txtvalue\""
}

dns_testbind_rm() {
  fulldomain=$1
  txtvalue=$2
  _testbind_settings || return 1
  _info "removing $fulldomain"
  _testbind_update "update delete $fulldomain. TXT \"$txtvalue\""
}

_testbind_settings() {
  TESTBIND_SERVER="${TESTBIND_SERVER:-$(_readaccountconf_mutable TESTBIND_SERVER)}"
  TESTBIND_PORT="${TESTBIND_PORT:-$(_readaccountconf_mutable TESTBIND_PORT)}"
  TESTBIND_KEY_NAME="${TESTBIND_KEY_NAME:-$(_readaccountconf_mutable TESTBIND_KEY_NAME)}"
  TESTBIND_KEY="${TESTBIND_KEY:-$(_readaccountconf_mutable TESTBIND_KEY)}"
  if [ -z "$TESTBIND_SERVER" ] || [ -z "$TESTBIND_KEY" ]; then
    _err "TESTBIND_SERVER and TESTBIND_KEY are required"
    return 1
  fi
  _saveaccountconf_mutable TESTBIND_SERVER "$TESTBIND_SERVER"
  _debug TESTBIND_PORT "$TESTBIND_PORT"
}

_testbind_update() {
  _keyfile=$(mktemp)
  chmod 600 "$_keyfile"
  printf 'key "%s" { algorithm hmac-sha256; secret "%s"; };\n' "$TESTBIND_KEY_NAME" "$TESTBIND_KEY" >"$_keyfile"
  printf 'server %s %s\n%s\nsend\n' "$TESTBIND_SERVER" "$TESTBIND_PORT" "$1" | nsupdate -k "$_keyfile"
  _ret=$?
  rm -f "$_keyfile"
  return $_ret
}
