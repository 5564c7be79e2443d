#!/bin/sh
# Keeps state in $HOME as a credential-caching tool does and fails if an
# earlier run left some; records its HOME and that directory's mode in
# $DIR_LOG; leaves a directory it cannot write. With HANG=1 it then hangs.
[ "$1" = timeout ] && exit 1
echo "$HOME $(stat -c %a "$HOME")" >>"$DIR_LOG"
if [ -e "$HOME/x" ]; then
  echo "found state of $(cat "$HOME/x")" >&2
  exit 1
fi
if [ "$HOME" != "$TMPDIR" ] || [ "$HOME" != "$PWD" ]; then
  echo "HOME=$HOME TMPDIR=$TMPDIR PWD=$PWD differ" >&2
  exit 1
fi
echo "$CERT_MANAGER_RESOURCE_NAMESPACE" >"$HOME/x"
mkdir "$HOME/read-only" && echo x >"$HOME/read-only/f" && chmod 500 "$HOME/read-only"
if [ "${HANG:-}" = 1 ]; then
  trap '' TERM
  while :; do sleep 1; done
fi
echo presented
