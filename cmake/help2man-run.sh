#!/bin/sh
# help2man runs this as `help2man-run.sh --help` and `--version`: the output of
# $STK_H2M_PROG (stokerd or stoker), with its "usage:" spelled as help2man
# looks for it ("Usage:"), so that the man page gets a SYNOPSIS.
set -e
out=$("$STK_H2M_PROG" "$@")
printf '%s\n' "$out" | sed '1s/^usage:/Usage:/'
