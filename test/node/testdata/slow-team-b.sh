#!/bin/sh
# team-b's program in the node test's spy scenario (9): as a tool that caches a
# credential in $HOME would, it leaves one there, then stays in flight until
# the spy has looked (it marks this HOME), at most 20 s, and presents the
# record as nsupdate.sh does.
if [ "$1" = present ]; then
	echo "team-b's cached credential" >"$HOME/credentials"
	i=0
	while [ $i -lt 40 ] && [ ! -e "$HOME/spy-was-here" ]; do
		sleep 0.5
		i=$((i + 1))
	done
fi
exec /usr/local/share/cert-manager-webhook-exec/examples/nsupdate.sh "$@"
