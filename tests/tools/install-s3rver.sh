#!/usr/bin/env bash
# Installs @20minutes/s3rver 5.0.0 (an S3 server that verifies SigV4) into
# PREFIX/node_modules for the s3 end-to-end tests.  Run by ctest as the
# s3rver_install fixture, and by hand: tests/tools/install-s3rver.sh PREFIX
#
# No node: exits 0 and says so; the tests then skip with that reason.
# node without npm, or a failed install: exits 1, so the tests are not run
# and ctest reports the failure (never a silent pass).
# Already installed at that version: does nothing (no network needed).
set -euo pipefail
prefix=${1:?usage: install-s3rver.sh PREFIX}
version=5.0.0
pkg=@20minutes/s3rver

if ! command -v node >/dev/null 2>&1; then
	echo "install-s3rver: node is not installed (Debian: nodejs npm); the s3 tests will skip"
	exit 0
fi
manifest="$prefix/node_modules/$pkg/package.json"
if [ -f "$manifest" ] &&
	node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
		"$manifest" "$version"; then
	echo "install-s3rver: $pkg@$version already in $prefix"
	exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
	echo "install-s3rver: node is installed but npm is not (Debian: npm)" >&2
	exit 1
fi
mkdir -p "$prefix"
echo "install-s3rver: npm install $pkg@$version into $prefix"
npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$prefix" "$pkg@$version"
node -e 'require(process.argv[1])' "$prefix/node_modules/$pkg/lib/cli.js"
echo "install-s3rver: done"
