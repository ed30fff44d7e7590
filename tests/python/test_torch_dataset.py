#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""stoker.torch (StokerDataset, StokerIterableDataset) and stoker._epoch (the
DataLoader patch that plans each epoch) against real stokerds.

usage: test_torch_dataset.py STOKERD STOKER_CLI LIBSTOKER WORKDIR
"""
import errno
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)
    return cond


# ---------------------------------------------------------------- helpers (module level: spawn pickles them)

def ident(buf):
    """A transform returning a copy of the bytes."""
    return bytes(buf)


def ident_group(buf):
    """The bytes and the worker's plan group."""
    return bytes(buf), os.environ.get("STOKER_PLAN_GROUP", "")


def np_view(buf):
    import numpy as np
    return np.frombuffer(buf, np.uint8)


_HELD = []


class KillDataset:
    """Made in main(): wraps a StokerDataset; worker 0 keeps every buffer it
    reads (pins) and, once it holds `hold` objects, writes its pid to
    `marker` and sleeps until the main process kills it."""

    def __init__(self, inner, marker, hold):
        self.inner, self.marker, self.hold = inner, marker, hold

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        import torch.utils.data as tud
        info = tud.get_worker_info()
        if info is not None and info.id == 0:
            v = self.inner.view(i)
            _HELD.append(v)  # never released: the dead process's pins
            if len(_HELD) >= self.hold:
                with open(self.marker + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.rename(self.marker + ".tmp", self.marker)
                time.sleep(60)
            return len(v)
        return len(self.inner[i])


class Ints:
    """Returns (index, a worker-side random draw): shows the sampler and the workers' seeds."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        import torch
        return i, float(torch.rand(1))


class Recorder:
    def __init__(self, n, fail=False):
        self.n, self.fail, self.plans = n, fail, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i

    def __stoker_plan__(self, indices):
        self.plans.append(list(indices))
        if self.fail:
            raise RuntimeError("planner broke")


# ---------------------------------------------------------------- the daemons

def start_daemon(stokerd, work, name, root, *extra):
    import stoker
    sock = os.path.join(work, name + ".sock")
    log = open(os.path.join(work, name + ".log"), "w")
    p = subprocess.Popen([stokerd, "--foreground", "--socket", sock, "--allow-root", root,
                          "--metrics", "off", *extra], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            stoker.Client(socket=sock).close()
            return p, sock
        except OSError:
            if time.monotonic() > deadline or p.poll() is not None:
                raise
            time.sleep(0.05)


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def daemon_stats(cli, sock):
    r = subprocess.run([cli, "--socket", sock, "stats", "--json"], capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise RuntimeError("stoker stats: " + r.stderr)
    return json.loads(r.stdout)


def ds_counts(cli, sock, uri):
    for d in daemon_stats(cli, sock)["per_dataset"]:
        if d["uri"].rstrip("/") == uri.rstrip("/"):
            return d["gets"], d["hits"]
    return 0, 0


def write_files(d, n, size, seed):
    import random
    rng = random.Random(seed)
    os.makedirs(d, exist_ok=True)
    out = {}
    for i in range(n):
        k = "c%d/f%04d.bin" % (i % 4, i)
        os.makedirs(os.path.join(d, os.path.dirname(k)), exist_ok=True)
        b = rng.randbytes(size + i)
        with open(os.path.join(d, k), "wb") as f:
            f.write(b)
        out[k] = b
    return out


def main():
    STOKERD, CLI, LIBSTOKER, WORK = sys.argv[1:5]
    os.environ["STOKER_LIB"] = LIBSTOKER
    for k in ("STOKER_SOCKET", "STOKER_PLAN_GROUP", "STOKER_NO_PATCH", "RANK", "WORLD_SIZE"):
        os.environ.pop(k, None)
    shutil.rmtree(WORK, ignore_errors=True)
    root = os.path.join(WORK, "root")
    os.makedirs(root)
    t_start = time.monotonic()

    try:
        __import__("numpy")  # np_view uses it in the workers
        import torch
        from torch.utils.data import ConcatDataset, DataLoader, Subset
    except ImportError as e:
        print("skipped: %s (Debian's python3-torch and python3-numpy)" % e)
        sys.exit(77)
    # Batches cross from workers through shared-memory files, not passed fds:
    # torch's fd passing races a worker that exits right after sending (the
    # missing-object epoch), failing in multiprocessing's resource_sharer.
    torch.multiprocessing.set_sharing_strategy("file_system")

    import stoker
    import stoker._epoch as ep
    import stoker.torch as st
    check(ep.installed(), "importing stoker.torch installs the patch")
    check(st.install_patch() is True, "install() idempotent")
    shared_ok = hasattr(stoker._lib.lib, "stk_plan_shared")
    print("stk_plan_shared in this libstoker:", shared_ok, flush=True)

    # ------------------------------------------------ the patch: same batches, same worker seeds
    def run(nw, seed):
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed + 1)
        dl = DataLoader(Ints(37), batch_size=4, shuffle=True, num_workers=nw, generator=g)
        out = []
        for _ in range(2):
            for idx, r in dl:
                out.append((idx.tolist(), [round(x, 6) for x in r.tolist()]))
        torch.manual_seed(seed + 1)
        dl2 = DataLoader(Ints(23), batch_size=None, shuffle=True, num_workers=nw)  # no generator, no batching
        out.append([(int(i), round(float(r), 6)) for i, r in dl2])
        return out
    for nw in (0, 2):
        patched = run(nw, 5)
        ep.uninstall()
        plain = run(nw, 5)
        ep.install()
        check(patched == plain, "num_workers=%d: the patched DataLoader yields what the plain one does" % nw)
    check(ep.installed(), "reinstalled")

    # plan_epoch: Subset and ConcatDataset map indices through; a failing planner warns once.
    a, b = Recorder(10), Recorder(5)
    ep.plan_epoch(ConcatDataset([a, Subset(b, [4, 3, 2])]), [11, 0, 12, 9, 10])
    check(a.plans == [[0, 9]] and b.plans == [[3, 2, 4]], "plan through Concat/Subset: %r %r" % (a.plans, b.plans))
    rec = Recorder(20)
    dl = DataLoader(rec, batch_size=3, shuffle=True, num_workers=0)
    got = [i for batch in dl for i in batch.tolist()]
    check(len(rec.plans) == 1 and rec.plans[0] == got, "the plan is the epoch's order (workers=0)")
    rec = Recorder(21)
    dl = DataLoader(rec, batch_size=4, shuffle=True, num_workers=2, persistent_workers=True)
    epochs = [[i for batch in dl for i in batch.tolist()] for _ in range(2)]
    check(rec.plans == epochs and epochs[0] != epochs[1],
          "persistent workers: each epoch planned in its own order")
    del dl
    bad = Recorder(8, fail=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for _ in range(2):
            n = sum(len(x) for x in DataLoader(bad, batch_size=3, shuffle=True))
        check(n == 8, "a failing planner does not break the loop")
    check(sum("planner broke" in str(x.message) for x in w) == 1, "warned once: %r" % [str(x.message) for x in w])
    check(bool(os.environ.get("STOKER_PLAN_GROUP")), "STOKER_PLAN_GROUP set by the patch")

    # ------------------------------------------------ daemon 1: 30 MiB of objects, 16 MiB of RAM, a slow backend
    big = os.path.join(root, "big")
    files = write_files(big, 240, 128 << 10, 1)
    keys = sorted(files)
    small = os.path.join(root, "small")
    sfiles = write_files(small, 24, 3000, 2)
    skeys = sorted(sfiles)
    d1, sock = start_daemon(STOKERD, WORK, "d1", root, "--ram", "16M", "--emulate-latency", "20")
    try:
        os.environ["STOKER_SOCKET"] = sock
        ds = st.StokerDataset("file://" + big + "/")
        check(len(ds) == 240 and ds.keys() == keys, "len and keys")
        check(ds.find(keys[7]) == 7 and keys[7] in ds and "nope" not in ds, "find / in")
        check(ds[3] == files[keys[3]] and ds[-1] == files[keys[-1]], "getitem bytes (no transform)")
        try:
            ds[240]
            check(False, "index past the end")
        except IndexError:
            pass
        check(ds.__getitems__([5, 1, 5]) == [files[keys[i]] for i in (5, 1, 5)], "__getitems__")

        # Two epochs, 2 workers, shuffle: byte-identical, each sample once; epoch 2 planned.
        uri = "file://" + big + "/"
        dl = DataLoader(ds, batch_size=8, shuffle=True, num_workers=2)
        counts = []
        for e in range(2):
            before = ds_counts(CLI, sock, uri)
            seen = []
            t0 = time.monotonic()
            for batch in dl:
                for x in batch:
                    seen.append(x)
                time.sleep(0.012)  # the model's step
            deadline = time.monotonic() + 3  # the workers' last reports come as they exit
            while True:
                after = ds_counts(CLI, sock, uri)
                g, h = after[0] - before[0], after[1] - before[1]
                if g >= 240 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            counts.append((g, h))
            print("epoch %d: %.2fs, %d gets, %d hits" % (e + 1, time.monotonic() - t0, g, h), flush=True)
            check(sorted(seen) == sorted(files.values()), "epoch %d: every object once, byte-identical" % (e + 1))
        if shared_ok:
            g, h = counts[1]
            check(g >= 240 and h >= 0.8 * g, "epoch 2 follows the shuffled plan: %d/%d hits "
                  "(every get reported: the workers close their connections)" % (h, g))
            # Control: the same without the patch (a reshuffled epoch nobody planned) misses.
            ep.uninstall()
            try:
                before = ds_counts(CLI, sock, uri)
                for batch in dl:
                    time.sleep(0.012)
                deadline = time.monotonic() + 3
                while True:
                    after = ds_counts(CLI, sock, uri)
                    g, h = after[0] - before[0], after[1] - before[1]
                    if g >= 240 or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
            finally:
                ep.install()
            print("unplanned control epoch: %d gets, %d hits" % (g, h), flush=True)
            check(h < 0.9 * g, "control: without the plan a reshuffled epoch misses (%d/%d hits)" % (h, g))
        else:
            print("NOTE: no stk_plan_shared: worker gets are not planned; checking the plan with num_workers=0")
        # The plan with num_workers=0 (the main process reads; its own handle is in the group).
        dl0 = DataLoader(ds, batch_size=8, shuffle=True, num_workers=0)
        before = ds_counts(CLI, sock, uri)
        n = 0
        for batch in dl0:
            n += len(batch)
            time.sleep(0.012)
        ds.close()  # flushes the reported gets
        after = ds_counts(CLI, sock, uri)
        g, h = after[0] - before[0], after[1] - before[1]
        print("num_workers=0 epoch: %d gets, %d hits" % (g, h), flush=True)
        check(n == 240 and g >= 240 and h >= 0.8 * g, "num_workers=0 follows the plan: %d/%d hits" % (h, g))

        # fork and spawn: the same samples; workers inherit the plan group.
        sd = st.StokerDataset("file://" + small + "/", transform=ident_group)
        sd[0]  # the main process has a connection before the workers fork
        for ctx in ("fork", "spawn"):
            dl = DataLoader(sd, batch_size=5, shuffle=True, num_workers=2, multiprocessing_context=ctx)
            got, groups = [], set()
            for data, group in dl:
                got += data
                groups.update(group)
            check(sorted(got) == sorted(sfiles.values()), "%s: every sample, byte-identical" % ctx)
            check(groups == {os.environ["STOKER_PLAN_GROUP"]}, "%s: workers' plan group %r" % (ctx, groups))
        check(sd.__getstate__().keys() == {"uri", "transform", "manifest", "socket", "_len"},
              "pickled state: options only")

        # numpy.frombuffer on the view shares its memory; the hold outlives the call.
        nd = st.StokerDataset("file://" + small + "/", transform=np_view)
        with nd.view(2) as v:
            arr = nd[2]
            check(arr.ctypes.data == v.data_ptr, "numpy.frombuffer shares the view's memory")
            check(not arr.flags.writeable, "read-only array")
        gc.collect()
        check(arr.tobytes() == sfiles[skeys[2]], "the array stays valid after the call")
        del arr

        # A missing object: FileNotFoundError naming the URI.
        gone = os.path.join(root, "gone")
        write_files(gone, 3, 100, 3)
        gd = st.StokerDataset("file://" + gone + "/")
        check(len(gd) == 3, "gone: listed")
        os.unlink(os.path.join(gone, gd.key(1)))
        try:
            gd[1]
            check(False, "missing object: no error")
        except FileNotFoundError as e:
            check(e.errno == errno.ENOENT and gone in str(e), "FileNotFoundError names the URI: %s" % e)
            print("missing:", e)
        try:
            list(DataLoader(gd, batch_size=3, num_workers=1))
            check(False, "missing object in a worker: no error")
        except FileNotFoundError as e:
            check(gone in str(e), "worker's FileNotFoundError names the URI")
        gc.collect()  # the failed loader's iterator, before the next workers fork

        # StokerIterableDataset: ranks x workers cover the epoch exactly once; epochs differ.
        it = st.StokerIterableDataset("file://" + small + "/", seed=3, transform=ident)
        o0 = it.epoch_order()
        it.set_epoch(1)
        check(sorted(o0) == list(range(24)) and it.epoch_order() != o0, "iterable: epochs reshuffle")
        got = [x for batch in DataLoader(it, batch_size=4, num_workers=2) for x in batch]
        check(sorted(got) == sorted(sfiles.values()), "iterable, 2 workers: every object once")
        shards = []
        for r in range(3):
            os.environ["RANK"], os.environ["WORLD_SIZE"] = str(r), "3"
            it.set_epoch(2)
            shards.append(it.shard())
        os.environ.pop("RANK")
        os.environ.pop("WORLD_SIZE")
        check(sorted(sum(shards, [])) == list(range(24)) and all(len(s) == 8 for s in shards),
              "iterable: ranks split the epoch %r" % shards)
    finally:
        stop(d1)

    # ------------------------------------------------ daemon 2 (no fast gets: every hold is visible):
    # a worker killed while holding objects leaks no pins.
    d2, sock2 = start_daemon(STOKERD, WORK, "d2", root, "--ram", "64M", "--no-fast-gets")
    try:
        os.environ["STOKER_SOCKET"] = sock2
        marker = os.path.join(WORK, "killme")
        kd = KillDataset(st.StokerDataset("file://" + small + "/"), marker, 4)
        seen = {}

        def killer():
            deadline = time.monotonic() + 30
            while not os.path.exists(marker) and time.monotonic() < deadline:
                time.sleep(0.02)
            try:
                pid = int(open(marker).read())
            except (OSError, ValueError):
                return
            mine = [c for c in daemon_stats(CLI, sock2)["per_client"] if c["pid"] == pid]
            seen["pid"] = pid
            seen["held"] = sum(c["pinned_bytes"] for c in mine)
            os.kill(pid, signal.SIGKILL)
        th = threading.Thread(target=killer)
        th.start()
        err = None
        try:
            for _ in DataLoader(kd, batch_size=2, shuffle=True, num_workers=2):
                pass
        except RuntimeError as e:
            err = e
        th.join()
        check(err is not None and ("killed" in str(err) or "exited unexpectedly" in str(err)),
              "the loader reports the killed worker: %r" % err)
        err = None
        gc.collect()
        check(seen.get("held", 0) > 0, "the worker held objects before it died: %r" % seen)
        deadline = time.monotonic() + 10
        while True:
            s = daemon_stats(CLI, sock2)
            left = [c for c in s["per_client"] if c["pid"] == seen.get("pid")]
            pinned = sum(c["pinned_bytes"] for c in s["per_client"])
            if (not left and pinned == 0 and s["pinned_objects"] == 0) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        check(not left, "the dead worker's connection is gone: %r" % left)
        check(pinned == 0 and s["pinned_objects"] == 0,
              "nothing pinned afterwards: %d bytes, %d objects" % (pinned, s["pinned_objects"]))
    finally:
        stop(d2)

    print("took %.1fs" % (time.monotonic() - t_start))
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        for n in ("d1", "d2"):
            p = os.path.join(WORK, n + ".log")
            if os.path.exists(p):
                print("--- %s\n%s" % (n, open(p).read()[-2000:]))
        sys.exit(1)
    print("stoker.torch: all checks passed")


if __name__ == "__main__":
    main()
