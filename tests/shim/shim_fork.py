#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""shim_fork: libstoker_shim across fork, multiprocessing and threads.

Run by test_shim.sh under LD_PRELOAD with MNT mapped to ROOT.  The parent
reads mapped files (so it connects), then:
- os.fork(): parent and child both read mapped files; the child must connect
  on its own (the shim drops the parent's client in the child);
- multiprocessing pools with the fork, spawn and forkserver start methods,
  each worker reading mapped files;
- after all that the parent still reads.
Every read is compared byte for byte with the original under ROOT.

Usage: shim_fork.py MNT ROOT
"""
import hashlib
import multiprocessing as mp
import os
import sys

MNT, ROOT = sys.argv[1], sys.argv[2]


def files():
    out = []
    for d, _, fs in os.walk(ROOT):
        for f in fs:
            out.append(os.path.relpath(os.path.join(d, f), ROOT))
    return sorted(out)


def digest(rel):
    with open(os.path.join(MNT, rel), "rb") as f:
        return rel, hashlib.sha256(f.read()).hexdigest()


def want(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return rel, hashlib.sha256(f.read()).hexdigest()


def check(got, names, what):
    exp = [want(r) for r in names]
    if sorted(got) != sorted(exp):
        print(f"shim_fork: FAIL: {what}: {sorted(got)} != {sorted(exp)}", flush=True)
        sys.exit(1)


def main():
    names = files()
    check([digest(r) for r in names], names, "parent before fork")

    pid = os.fork()
    if pid == 0:
        try:
            got = [digest(r) for r in names]
            exp = [want(r) for r in names]
            os._exit(0 if got == exp else 3)
        except BaseException as e:  # noqa: BLE001 - report anything
            print(f"shim_fork: child: {e!r}", flush=True)
            os._exit(4)
    check([digest(r) for r in names], names, "parent while the child reads")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        print(f"shim_fork: FAIL: forked child exited {status}", flush=True)
        sys.exit(1)

    for method in ("fork", "spawn", "forkserver"):
        ctx = mp.get_context(method)
        with ctx.Pool(2) as pool:
            got = pool.map(digest, names * 2, chunksize=1)
        check(sorted(set(got)), names, f"multiprocessing {method}")
        print(f"shim_fork: {method}: {len(got)} reads ok", flush=True)

    check([digest(r) for r in names], names, "parent after the pools")
    print("shim_fork: ok", flush=True)


if __name__ == "__main__":
    main()
