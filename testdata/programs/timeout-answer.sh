#!/bin/sh
# Answers `timeout` with $TIMEOUT_ANSWER and exits $TIMEOUT_STATUS.
if [ "$1" = timeout ]; then
	printf '%s\n' "$TIMEOUT_ANSWER"
	exit "${TIMEOUT_STATUS:-0}"
fi
