#!/usr/bin/env bash
# Installs the npm packages that tests/deploy/validate_k8s.mjs needs
# (kubernetes-models and yaml, the exact versions and hashes of
# package-lock.json) into tests/deploy/node_modules.  Run by scripts/deps.sh;
# the ctest tests never touch the network and fail, naming this script, when
# the packages are missing.
#
# Already installed at the locked versions: does nothing (no network).
# No node or npm: says so and exits 1.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "install-node-deps: node and npm are needed (Debian: nodejs npm)" >&2
	exit 1
fi
if node check-node-deps.mjs >/dev/null 2>&1; then
	exit 0
fi
echo "install-node-deps: npm ci in tests/deploy (kubernetes-models, yaml)" >&2
# kubernetes-models declares node >= 22 but runs on Debian 12's node 20
# (the validator is tested there); npm only warns about the engine.
npm ci --no-audit --no-fund --loglevel=error
node check-node-deps.mjs
