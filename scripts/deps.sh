#!/usr/bin/env bash
# Installs what stoker needs to build, test and benchmark on Debian 12.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail

pkgs=(build-essential cmake pkg-config git ca-certificates
      liburing-dev libcurl4-openssl-dev libssl-dev libzstd-dev libxxhash-dev
      libjansson-dev libexpat1-dev libcriterion-dev libmicrohttpd-dev
      fio python3 nginx-light clang-format
      prometheus   # promtool checks stokerd's /metrics in the tests
      chromium     # renders stoker-bench's HTML report in the tests
      python3-torch python3-numpy python3-pil # real data loaders under the shim
      python3-pip python3-setuptools # the offline `pip install ./python` test
      help2man     # the man pages stokerd(8) and stoker(1), made from --help at build time
      systemd shellcheck strace # the tests check deploy/systemd (systemd-analyze verify, its
                                # syscall filter) and deploy/slurm; nothing is started
      gdb          # gcore: the test that a core dump of stokerd holds no secret key
      clang libclang-rt-dev) # libFuzzer and the sanitizers' runtimes, for tests/fuzz/

# The tests' S3 server is an npm package (@20minutes/s3rver): Node and npm
# count as present whichever way they were installed (Debian's or
# NodeSource's nodejs, which bundles npm and conflicts with Debian's npm).
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)

# npm packages of the Kubernetes manifest tests (tests/deploy/package-lock.json),
# installed after any apt packages since apt may be what brings node.
node_deps() { "$(dirname "$0")/../tests/deploy/install-node-deps.sh"; }

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { node_deps; exit 0; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
	SUDO=sudo
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
node_deps
