#!/bin/sh
# Stands in for node when cmake found none: the deploy tests then fail with
# this message instead of skipping.
echo "node is not installed: run scripts/deps.sh (Debian: nodejs npm), then re-run cmake" >&2
exit 1
