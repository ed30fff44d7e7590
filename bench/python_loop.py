#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A PyTorch training-loop stand-in over an EMULATED slow backend, three ways
in one run, then the hot path on resident objects.

Part 1 (slow backend): a DataLoader (batch 32, 2 workers, shuffle) and a
fixed compute time per batch (time.sleep), over --files objects of --kib KiB:
  local    the plain Dataset below without the sleep, files in the page
           cache: the floor
  plain    a plain Dataset: open().read() of each file, plus --latency-ms of
           time.sleep per file (EMULATION of a remote store, every epoch)
  shim     the same plain Dataset (no sleep) under LD_PRELOAD=libstoker_shim.so
           with STOKER_SHIM_MAP from a path that does not exist to the
           directory, through a fresh stokerd --emulate-latency L
  shim-run the same under `python -m stoker.run` (each epoch's shuffled
           order, as paths, planned for the shim's connections)
  stoker   stoker.torch.StokerDataset over the directory, through a fresh
           stokerd --emulate-latency L (each epoch's shuffled order planned by
           stoker.torch's DataLoader patch)
Per epoch: seconds, compute, and data stall = 1 - compute / seconds.

Part 2 (hot path): samples/s of a loop over --hot-files resident objects of
--hot-kib KiB (a seeded shuffle, one process): StokerDataset returning bytes
(a copy), StokerDataset with a zero-copy numpy transform, and open().read() of
the same files from the page cache; alternated --repeat times, medians.

Usage: bench/python_loop.py [--files 1000] [--kib 100] [--latency-ms 20]
           [--compute-ms 20] [--epochs 2] [--batch 32] [--workers 2]
           [--hot-files 2000] [--hot-kib 110] [--repeat 3]
           [--build DIR] [--workdir DIR] [--modes local,plain,shim,shim-run,stoker]
Needs Debian's python3-torch and python3-numpy (/usr/bin/python3) and a build
(stokerd, libstoker.so, libstoker_shim.so; default: ./build, else build-*).
"""
import argparse
import glob
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
FAKE = "/nonexistent/stoker-pyloop"


# ---------------------------------------------------------------- child: one loop
class Files:
    """The plain Dataset: os.walk, then open().read() per sample."""

    def __init__(self, root, sleep_s=0.0):
        self.sleep_s = sleep_s
        self.paths = []
        for d, dirs, files in os.walk(root):
            dirs.sort()
            self.paths += [os.path.join(d, f) for f in sorted(files)]
        self.files = self.paths  # the path protocol of stoker._paths (python -m stoker.run)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        if self.sleep_s:
            time.sleep(self.sleep_s)  # EMULATION: the remote store's latency
        with open(self.paths[i], "rb") as f:
            return len(f.read())


def _nbytes(buf):
    return len(buf)


def child(a):
    import torch
    from torch.utils.data import DataLoader, RandomSampler
    if a.mode == "stoker":
        import stoker.torch as st
        ds = st.StokerDataset("file://" + a.root + "/", transform=_nbytes)
    else:
        ds = Files(a.root, a.latency_ms / 1e3 if a.mode == "plain" else 0.0)
    sampler = RandomSampler(ds, generator=torch.Generator().manual_seed(1))
    dl = DataLoader(ds, batch_size=a.batch, sampler=sampler, num_workers=a.workers)
    epochs = []
    for _ in range(a.epochs):
        t = time.monotonic()
        n = b = steps = 0
        for sizes in dl:
            n += len(sizes)
            b += int(sizes.sum())
            steps += 1
            time.sleep(a.compute_ms / 1e3)  # the model's step
        epochs.append({"seconds": time.monotonic() - t, "samples": n, "bytes": b,
                       "compute_s": steps * a.compute_ms / 1e3})
    print(json.dumps({"mode": a.mode, "epochs": epochs}))


def hot_child(a):
    """Part 2 in one process: prints {variant: samples/s}."""
    import numpy as np
    import stoker.torch as st
    files = Files(a.root)
    n = len(files)
    order = list(range(n))
    random.Random(2).shuffle(order)
    sd = st.StokerDataset("file://" + a.root + "/")
    zd = st.StokerDataset("file://" + a.root + "/", transform=lambda b: np.frombuffer(b, np.uint8))
    for i in range(n):  # resident, and this process's mappings touched once
        sd[i]
    paths = files.paths

    def stoker_bytes():
        s = 0
        for i in order:
            s += len(sd[i])
        return s

    def stoker_numpy():
        s = 0
        for i in order:
            arr = zd[i]
            s += int(arr[-1]) + arr.size  # touch the last byte: the bytes are there
        return s

    def page_cache():
        s = 0
        for i in order:
            with open(paths[i], "rb") as f:
                s += len(f.read())
        return s

    for p in paths:  # into the page cache
        with open(p, "rb") as f:
            f.read()
    variants = [("stoker_bytes", stoker_bytes), ("stoker_numpy", stoker_numpy), ("page_cache", page_cache)]
    rates = {k: [] for k, _ in variants}
    for _ in range(a.repeat):
        for k, fn in variants:
            t = time.perf_counter()
            fn()
            rates[k].append(n / (time.perf_counter() - t))
    print(json.dumps({k: statistics.median(v) for k, v in rates.items()}))


# ---------------------------------------------------------------- parent
def find_build(arg):
    cands = [arg] if arg else [os.path.join(TOP, "build")] + sorted(glob.glob(os.path.join(TOP, "build-*")))
    for b in cands:
        if b and all(os.path.exists(os.path.join(b, p)) for p in
                     ("prefetch/stokerd", "client/libstoker.so", "shim/libstoker_shim.so")):
            return os.path.abspath(b)
    sys.exit("python_loop: no build with stokerd, libstoker.so and libstoker_shim.so (--build DIR)")


def write_data(root, n, size, seed):
    stamp = root + ".done"  # next to the directory, not in it
    if os.path.exists(stamp):
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(seed)
    for i in range(n):
        d = os.path.join(root, "c%d" % (i % 10))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%06d.bin" % i), "wb") as f:
            f.write(rng.randbytes(size))
    open(stamp, "w").close()


class Daemon:
    def __init__(self, build, work, name, root, *extra):
        self.sock = os.path.join(work, name + ".sock")
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.log = open(os.path.join(work, name + ".log"), "w")
        self.p = subprocess.Popen([os.path.join(build, "prefetch/stokerd"), "-f", "--socket", self.sock,
                                   "--allow-root", root, "--metrics", "off", "--ram", "1G", *extra],
                                  stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(400):
            if os.path.exists(self.sock):
                break
            time.sleep(0.02)
        time.sleep(0.1)

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def run_child(args, env, pre=()):
    r = subprocess.run([sys.executable, *pre, os.path.abspath(__file__)] + args, capture_output=True,
                       text=True, env=env)
    if r.returncode != 0:
        sys.exit("python_loop: child %s failed:\n%s" % (args[:3], r.stderr[-3000:]))
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--kib", type=int, default=100)
    ap.add_argument("--latency-ms", type=float, default=20)
    ap.add_argument("--compute-ms", type=float, default=20)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--hot-files", type=int, default=2000)
    ap.add_argument("--hot-kib", type=int, default=110)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build")
    ap.add_argument("--workdir", default="/var/tmp/stoker-pyloop")
    ap.add_argument("--modes", default="local,plain,shim,shim-run,stoker")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--hot", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        a.mode = a.child
        return child(a)
    if a.hot:
        return hot_child(a)

    build = find_build(a.build)
    os.makedirs(a.workdir, exist_ok=True)
    work = os.path.realpath(a.workdir)
    data = os.path.join(work, "data-%dx%dK" % (a.files, a.kib))
    hot = os.path.join(work, "hot-%dx%dK" % (a.hot_files, a.hot_kib))
    print("python_loop: writing data under %s" % work, file=sys.stderr)
    write_data(data, a.files, a.kib << 10, 7)
    write_data(hot, a.hot_files, a.hot_kib << 10, 8)
    base = dict(os.environ)
    for k in ("STOKER_SOCKET", "STOKER_PLAN_GROUP", "LD_PRELOAD", "STOKER_SHIM_MAP", "STOKER_NO_PATCH"):
        base.pop(k, None)
    base["PYTHONPATH"] = os.path.join(TOP, "python") + os.pathsep + base.get("PYTHONPATH", "")
    base["STOKER_LIB"] = os.path.join(build, "client/libstoker.so")
    common = ["--epochs", str(a.epochs), "--batch", str(a.batch), "--workers", str(a.workers),
              "--compute-ms", str(a.compute_ms), "--latency-ms", str(a.latency_ms)]
    lat = ["--emulate-latency", str(int(a.latency_ms))]

    results = {}
    modes = a.modes.split(",")
    for mode in modes:
        print("python_loop: %s" % mode, file=sys.stderr)
        if mode in ("local", "plain"):
            if mode == "local":
                for p in Files(data).paths:  # into the page cache
                    with open(p, "rb") as f:
                        f.read()
            results[mode] = run_child(["--child", mode, "--root", data] + common, base)
        elif mode in ("shim", "shim-run"):
            d = Daemon(build, work, mode, data, *lat)
            try:
                env = dict(base, STOKER_SOCKET=d.sock, LD_PRELOAD=os.path.join(build, "shim/libstoker_shim.so"),
                           STOKER_SHIM_MAP="%s=file://%s/" % (FAKE, data))
                results[mode] = run_child(["--child", mode, "--root", FAKE] + common, env,
                                          ("-m", "stoker.run") if mode == "shim-run" else ())
            finally:
                d.stop()
        elif mode == "stoker":
            d = Daemon(build, work, "stoker", data, *lat)
            try:
                results[mode] = run_child(["--child", "stoker", "--root", data] + common,
                                          dict(base, STOKER_SOCKET=d.sock))
            finally:
                d.stop()
        else:
            sys.exit("python_loop: unknown mode %s" % mode)
        for e in results[mode]["epochs"]:
            if e["samples"] != a.files or e["bytes"] != a.files * (a.kib << 10):
                sys.exit("python_loop: %s read %d samples, %d bytes" % (mode, e["samples"], e["bytes"]))

    print("python_loop: hot path", file=sys.stderr)
    d = Daemon(build, work, "hot", hot)
    try:
        hotr = run_child(["--hot", "--root", hot, "--repeat", str(a.repeat)], dict(base, STOKER_SOCKET=d.sock))
    finally:
        d.stop()

    print("%d files of %d KiB, EMULATED backend latency %g ms per object (plain: time.sleep in "
          "__getitem__; shim, stoker: stokerd --emulate-latency), %g ms compute per batch of %d, "
          "%d workers, shuffle" % (a.files, a.kib, a.latency_ms, a.compute_ms, a.batch, a.workers))
    print("%-9s %5s %8s %8s %6s" % ("mode", "epoch", "seconds", "compute", "stall"))
    for m, r in results.items():
        for i, e in enumerate(r["epochs"]):
            print("%-9s %5d %8.2f %8.2f %6.0f%%" % (m, i + 1, e["seconds"], e["compute_s"],
                                                  100 * max(0.0, 1 - e["compute_s"] / e["seconds"])))

    def t(m, e):
        return results[m]["epochs"][e - 1]["seconds"] if m in results and e <= len(results[m]["epochs"]) else None
    for e in range(1, a.epochs + 1):
        for other in ("local", "plain", "shim", "shim-run"):
            x, y = t(other, e), t("stoker", e)
            if x and y:
                print("epoch %d: %s / stoker = %.2f" % (e, other, x / y))
    print("\nhot path: %d resident objects of %d KiB, one process, shuffled, median of %d" %
          (a.hot_files, a.hot_kib, a.repeat))
    for k in ("stoker_bytes", "stoker_numpy", "page_cache"):
        print("  %-13s %9.0f samples/s  (%.2f x page cache)" % (k, hotr[k], hotr[k] / hotr["page_cache"]))


if __name__ == "__main__":
    main()
