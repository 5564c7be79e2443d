#!/usr/bin/env sh
# A DNS API hook that adds and removes records through an HTTP API with
# acme.sh's _post, as most of acme.sh's hooks do. Used to test how
# examples/acme-sh-dnsapi.sh reports a provider's 429.

dns_testhttp_add() {
  _testhttp_call "{\"add\": \"$1\", \"value\": \"$2\"}"
}

dns_testhttp_rm() {
  _testhttp_call "{\"remove\": \"$1\", \"value\": \"$2\"}"
}

_testhttp_call() {
  response="$(_post "$1" "$TESTHTTP_URL" "" "POST" "application/json")" || return 1
  if ! _contains "$response" '"ok"'; then
    _err "the API said: $response"
    return 1
  fi
}
