#!/usr/bin/env bash
# Runs a command in a PID namespace of its own, with its own /proc, so that
# nothing it starts outlives it: when the command ends, the kernel kills every
# process left in the namespace (a server orphaned by a test binary that was
# killed at its -timeout, a container shim, a daemonized program). Mounts made
# inside it go with it too. Needs root (CAP_SYS_ADMIN); otherwise the command
# runs as is, with a note.
set -euo pipefail
if ((EUID == 0)) && command -v unshare >/dev/null; then
	exec unshare --pid --fork --kill-child --mount-proc -- "$@"
fi
echo "[contain] not root: running without a PID namespace; a killed test may leave servers behind" >&2
exec "$@"
