#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""End-to-end test of the Python package stoker (python/stoker) against a real stokerd.

usage: test_client.py STOKERD LIBSTOKER WORKDIR
"""
import errno
import gc
import os
import shutil
import subprocess
import sys
import time

STOKERD, LIBSTOKER, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
os.environ["STOKER_LIB"] = LIBSTOKER
os.environ.pop("STOKER_SOCKET", None)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

import stoker  # noqa: E402

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)


def expect_raises(exc, fn, what):
    try:
        fn()
    except exc as e:
        return e
    except BaseException as e:  # noqa: BLE001
        check(False, "%s: raised %r, wanted %s" % (what, e, exc.__name__))
        return None
    check(False, "%s: did not raise %s" % (what, exc.__name__))
    return None


shutil.rmtree(WORK, ignore_errors=True)
root = os.path.join(WORK, "root")
data = os.path.join(root, "ds")
os.makedirs(os.path.join(data, "sub", "deeper"))
files = {
    "a.bin": bytes(range(256)) * 16,
    "sub/b.txt": b"hello stoker\n",
    "sub/deeper/c.bin": os.urandom(100000),
    "sub/empty": b"",
    "z.bin": bytes(4096 * 3 + 8),
}
for k, v in files.items():
    with open(os.path.join(data, k), "wb") as f:
        f.write(v)
sock = os.path.join(WORK, "s.sock")

# No daemon yet: connecting fails with an OSError carrying the errno and stoker's message.
e = expect_raises(OSError, lambda: stoker.Client(socket=sock), "connect without a daemon")
if e is not None:
    check(e.errno in (errno.ENOENT, errno.ECONNREFUSED), "connect errno %r" % e.errno)
    check(bool(e.strerror), "connect message %r" % (e.strerror,))
    print("no daemon:", e)

log = open(os.path.join(WORK, "stokerd.log"), "w")
daemon = subprocess.Popen([STOKERD, "--foreground", "--socket", sock, "--allow-root", root,
                           "--ram", "64M", "--metrics", "off"], stdout=log, stderr=subprocess.STDOUT)
try:
    client = None
    deadline = time.monotonic() + 20
    while client is None:
        try:
            client = stoker.Client(socket=sock)
        except OSError:
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise
            time.sleep(0.05)

    ds = client.open("file://" + data + "/")
    keys = sorted(files)
    check(len(ds) == len(files), "len %d" % len(ds))
    check([ds.key(i) for i in range(len(ds))] == keys, "keys %r" % [ds.key(i) for i in range(len(ds))])
    check(all(ds.size(i) == len(files[ds.key(i)]) for i in range(len(ds))), "sizes")
    check(ds.nbytes == sum(len(v) for v in files.values()), "nbytes")
    check(ds.key(-1) == keys[-1], "negative index")
    expect_raises(IndexError, lambda: ds.key(len(ds)), "key out of range")
    for k in keys:
        check(ds.find(k) == keys.index(k), "find %s" % k)
    expect_raises(KeyError, lambda: ds.find("no/such"), "find of a missing key")
    check("sub/b.txt" in ds and "nope" not in ds, "__contains__")

    # get: right bytes, read-only, zero copy.
    for k in keys:
        v = ds.get(ds.find(k))
        check(bytes(v) == files[k], "bytes of %s" % k)
        check(v.buffer.readonly and v.buffer.nbytes == len(files[k]) == len(v), "buffer of %s" % k)
        v.release()
        check(v.released, "released %s" % k)
        v.release()  # idempotent
        expect_raises(ValueError, lambda: v.buffer, "buffer after release")

    # zstd=True: a .zst file (one raw block, made by hand) is served decompressed, key without .zst.
    zdir = os.path.join(root, "zds")
    os.makedirs(zdir)
    plain = b"hello zstd\n"
    frame = (b"\x28\xb5\x2f\xfd\x20" + bytes([len(plain)]) +
             (1 | len(plain) << 3).to_bytes(3, "little") + plain)
    with open(os.path.join(zdir, "h.txt.zst"), "wb") as f:
        f.write(frame)
    zds = client.open("file://" + zdir + "/", zstd=True)
    check(len(zds) == 1 and zds.key(0) == "h.txt" and zds.size(0) == len(plain),
          "zstd listing %r %r" % (zds.key(0), zds.size(0)))
    v = zds.get(0)
    check(bytes(v) == plain, "zstd bytes %r" % bytes(v))
    v.release()
    raw = client.open("file://" + zdir + "/")
    check(raw.key(0) == "h.txt.zst" and raw.size(0) == len(frame), "without zstd: the file as stored")

    import numpy as np
    v = ds.get(ds.find("sub/deeper/c.bin"))
    check(v.data_ptr != 0, "data_ptr")
    a = np.frombuffer(v.buffer, dtype=np.uint8)
    check(a.ctypes.data == v.data_ptr, "numpy.frombuffer shares memory")
    check(not a.flags.writeable, "numpy array is read-only")
    check(a.tobytes() == files["sub/deeper/c.bin"], "numpy contents")
    a32 = np.frombuffer(v.buffer, dtype=np.uint32, count=1000)
    check(a32.ctypes.data == v.data_ptr, "numpy uint32 shares memory")
    b = np.asarray(v)
    check(b.ctypes.data == v.data_ptr and not b.flags.writeable, "numpy.asarray(view) zero-copy read-only")
    check(b.shape == (100000,), "asarray shape")
    mv = memoryview(v.buffer)
    check(mv.readonly, "memoryview read-only")
    try:
        mv[0] = 1
        check(False, "write through memoryview")
    except TypeError:
        pass
    if sys.version_info >= (3, 12):
        m2 = memoryview(v)
        check(m2.readonly and m2.nbytes == 100000, "memoryview(view)")
        c = np.frombuffer(v, dtype=np.uint8)
        check(c.ctypes.data == v.data_ptr and not c.flags.writeable, "numpy.frombuffer(view)")
        m2.release()
        del c
    # release() refuses (BufferError, nothing released) while view.buffer is exported.
    import pickle
    pb = pickle.PickleBuffer(v.buffer)  # holds a buffer export of v.buffer
    expect_raises(BufferError, v.release, "release while exported")
    check(not v.released and v._fin.alive and bytes(v) == files["sub/deeper/c.bin"], "still held")
    pb.release()
    del pb
    try:
        import torch
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "The given buffer is not writable"
            t = torch.frombuffer(v.buffer, dtype=torch.uint8)
        check(t.data_ptr() == v.data_ptr, "torch.frombuffer shares memory")
        check(bytes(t[:16].tolist()) == files["sub/deeper/c.bin"][:16], "torch contents")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t32 = torch.frombuffer(v.buffer, dtype=torch.int32, count=10)
        check(t32.data_ptr() == v.data_ptr, "torch int32 shares memory")
        del t, t32
    except ImportError:
        print("torch not installed: skipped")
    del a, a32, b, mv
    gc.collect()
    v.release()

    # Garbage collection releases: a derived array keeps the object held.
    # (The daemon's pinned_objects does not see the client's fast-path holds,
    # so this watches the view's finalizer, which calls stk_release once.)
    v = ds.get(0)
    fin = v._fin
    arr = np.frombuffer(v.buffer, dtype=np.uint8)
    del v
    gc.collect()
    check(fin.alive, "array keeps the hold")
    check(arr.tobytes() == files[keys[0]], "array readable after the view is gone")
    del arr
    gc.collect()
    check(not fin.alive, "released by gc")

    # Context manager.
    with ds.get(ds.find("sub/b.txt")) as v:
        check(v.tobytes() == b"hello stoker\n", "with: bytes")
        check(v._fin.alive, "held inside with")
    check(v.released and not v._fin.alive, "released by with")

    # Zero-byte object: an empty buffer.
    with ds.get(ds.find("sub/empty")) as v:
        check(len(v) == 0 and v.buffer.nbytes == 0 and bytes(v) == b"", "empty object")
        check(np.frombuffer(v.buffer, dtype=np.uint8).size == 0, "empty numpy")

    # get_batch, release_batch.
    idx = [ds.find(k) for k in ("z.bin", "a.bin", "sub/b.txt", "sub/empty", "a.bin")]
    views = ds.get_batch(idx)
    check([v.index for v in views] == idx, "batch indices")
    check([bytes(v) for v in views] == [files[ds.key(i)] for i in idx], "batch bytes")
    ds.release_batch(views[:3])
    check(all(v.released for v in views[:3]), "release_batch")
    for v in views[3:]:
        v.release()
    check(not any(v._fin.alive for v in views), "batch released")
    check(ds.get_batch([]) == [], "empty batch")
    expect_raises(OSError, lambda: ds.get_batch([0, 999]), "batch out of range")

    # A second dataset: plan, then the gets are hits.
    ds2 = client.open(data + "/sub/")  # plain absolute path
    check(len(ds2) == 3, "ds2 len")
    order = list(range(len(ds2)))[::-1]
    ds2.plan(order)
    deadline = time.monotonic() + 10
    while ds2.status()["resident"] < len(ds2) and time.monotonic() < deadline:
        time.sleep(0.02)
    hits = []
    for i in order:
        with ds2.get(i) as v:
            hits.append(v.hit)
    check(all(hits), "plan then get: hits %r" % hits)
    expect_raises(OSError, lambda: ds2.plan([0, 10**6]), "plan out of range")

    # warm then status.
    ds3 = client.open("file://" + data + "/")
    ds3.warm()
    deadline = time.monotonic() + 10
    st = ds3.status()
    while st["warm"] != "done" and time.monotonic() < deadline:
        time.sleep(0.02)
        st = ds3.status()
    check(st["warm"] == "done" and st["resident"] == len(files) and st["objects"] == len(files),
          "warm status %r" % st)
    check(st["bytes"] == ds3.nbytes and st["error"] is None, "status bytes %r" % st)

    s = client.stats()
    check(isinstance(s, dict) and "gets" in s and "stall_ns" in s and s["client_gets"] > 0,
          "stats %r" % s)
    check(s["gets"] >= s["client_gets"], "daemon gets")

    # Errors: a missing path and one outside --allow-root.
    missing = data + "/no/such/file.bin"
    e = expect_raises(FileNotFoundError, lambda: client.open("file://" + missing), "open of a missing path")
    if e is not None:
        check(e.errno == errno.ENOENT, "ENOENT errno %r" % e.errno)
        check(missing in str(e), "message names the path: %s" % e)
        print("missing:", e)
    e = expect_raises(PermissionError, lambda: client.open("/etc/hostname"), "open outside allow-root")
    if e is not None:
        check(e.errno == errno.EACCES, "EACCES")
        print("outside:", e)

    # Closing a dataset while a view is live keeps the view valid.
    v = ds2.get(0)
    want = files["sub/" + ds2.key(0)]
    ds2.close()
    expect_raises(ValueError, lambda: len(ds2), "closed dataset")
    check(bytes(v) == want, "view after dataset close")
    v.release()

    for d in (ds, ds3):
        d.close()
    client.close()
    expect_raises(ValueError, client.stats, "closed client")

    # Threads share a client.
    import threading
    with stoker.Client(socket=sock) as c2, c2.open(data) as d:
        errs = []

        def worker():
            try:
                for _ in range(200):
                    for i in range(len(d)):
                        with d.get(i) as vv:
                            if bytes(vv) != files[d.key(i)]:
                                errs.append(i)
            except Exception as ex:  # noqa: BLE001
                errs.append(ex)
        ts = [threading.Thread(target=worker) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(not errs, "threads %r" % errs[:3])
finally:
    daemon.terminate()
    try:
        daemon.wait(10)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()

# Library lookup: a bad STOKER_LIB is an ImportError naming it.
r = subprocess.run([sys.executable, "-c", "import stoker"], capture_output=True, text=True,
                   env=dict(os.environ, STOKER_LIB="/nonexistent/libstoker.so",
                            PYTHONPATH=os.path.join(HERE, "..", "..", "python")))
check(r.returncode != 0 and "ImportError" in r.stderr and "/nonexistent/libstoker.so" in r.stderr,
      "bad STOKER_LIB: %s" % r.stderr[-300:])
# ...and a libstoker.so next to the package is found without STOKER_LIB.
pkg = os.path.join(WORK, "pkg")
shutil.copytree(os.path.join(HERE, "..", "..", "python", "stoker"), os.path.join(pkg, "stoker"),
                ignore=shutil.ignore_patterns("__pycache__"))
shutil.copy(LIBSTOKER, os.path.join(pkg, "stoker", "libstoker.so"))
env = {k: v for k, v in os.environ.items() if k != "STOKER_LIB"}
env["PYTHONPATH"] = pkg
r = subprocess.run([sys.executable, "-c", "import stoker._lib as l; print(l.lib._name)"],
                   capture_output=True, text=True, env=env)
check(r.returncode == 0 and r.stdout.strip() == os.path.join(pkg, "stoker", "libstoker.so"),
      "library next to the package: %r %r" % (r.stdout, r.stderr[-300:]))

if FAILS:
    print("%d check(s) failed" % len(FAILS))
    print(open(os.path.join(WORK, "stokerd.log")).read()[-3000:])
    sys.exit(1)
print("python client: all checks passed")
