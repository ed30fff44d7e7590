#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Python package's CUDA path (Dataset.get_to_device, Dataset.device_batches)
against a real stokerd.

With FAKE_GPU_LIB (libstoker_gpu's sources built against tests/gpu's fake CUDA
runtime, whose "device memory" is host memory and whose copies are memcpy),
it checks what the package asks of the driver: one registration per arena
segment however many objects are copied, copies from pinned memory on the
caller's stream with the right bytes, the pipe's batches, the copy wait
reported as delivery stall, CUDA errors as OSError with the errno.  With the
real libstoker_gpu it checks that a machine without a device gets a clear
error; on a machine with one and torch built with CUDA it copies into a
tensor and compares.

usage: test_gpu.py STOKERD LIBSTOKER LIBSTOKER_GPU FAKE_GPU_LIB|- WORKDIR
"""
import ctypes
import errno
import os
import shutil
import subprocess
import sys
import time

STOKERD, LIBSTOKER, REAL_GPU, FAKE_GPU, WORK = sys.argv[1:6]
os.environ["STOKER_LIB"] = LIBSTOKER
os.environ.pop("STOKER_SOCKET", None)
HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.join(HERE, "..", "..", "python")
sys.path.insert(0, PKG)
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)


shutil.rmtree(WORK, ignore_errors=True)
data = os.path.join(WORK, "root", "ds")
os.makedirs(data)
blobs = [os.urandom(1000 + 3371 * i) for i in range(24)]
for i, b in enumerate(blobs):
    with open(os.path.join(data, "%02d.bin" % i), "wb") as f:
        f.write(b)
sock = os.path.join(WORK, "s.sock")
log = open(os.path.join(WORK, "stokerd.log"), "w")
daemon = subprocess.Popen([STOKERD, "--foreground", "--socket", sock, "--allow-root",
                           os.path.join(WORK, "root"), "--ram", "64M", "--metrics", "off"],
                          stdout=log, stderr=subprocess.STDOUT)


def child(body, gpu_lib):
    """Runs body (Python source) in a fresh interpreter with libstoker_gpu = gpu_lib."""
    env = dict(os.environ, STOKER_GPU_LIB=gpu_lib, PYTHONPATH=PKG, T_SOCK=sock, T_DATA=data)
    prelude = ("import ctypes, errno, os, sys, stoker\n"
               "blobs = [open(os.path.join(os.environ['T_DATA'], n), 'rb').read()\n"
               "         for n in sorted(os.listdir(os.environ['T_DATA']))]\n")
    r = subprocess.run([sys.executable, "-c", prelude + body], env=env, capture_output=True,
                       text=True, timeout=60)
    sys.stdout.write(r.stdout)
    return r


try:
    deadline = time.monotonic() + 20
    while not os.path.exists(sock):
        check(time.monotonic() < deadline and daemon.poll() is None, "stokerd did not start")
        if FAILS:
            raise SystemExit(1)
        time.sleep(0.05)

    if FAKE_GPU != "-":
        r = child(r'''
F = ctypes.CDLL(os.environ["STOKER_GPU_LIB"])  # the same handle stoker._gpu loads
F.fake_calls.argtypes = [ctypes.c_char_p]
F.fake_reset(None)
calls = lambda fn: F.fake_calls(fn.encode())

class Copy(ctypes.Structure):
    _fields_ = [("dst", ctypes.c_void_p), ("src", ctypes.c_void_p), ("len", ctypes.c_size_t),
                ("stream", ctypes.c_void_p), ("pinned", ctypes.c_bool)]
F.fake_copies.restype = ctypes.POINTER(Copy)
F.fake_copies.argtypes = [ctypes.POINTER(ctypes.c_size_t)]

c = stoker.Client(socket=os.environ["T_SOCK"])
ds = c.open("file://" + os.environ["T_DATA"] + "/")
ds.warm()
while ds.status()["warm"] not in ("done", "full"):
    pass
# get_to_device into "device" memory (host memory standing in), on stream 0x5.
dev = [ctypes.create_string_buffer(len(b) or 1) for b in blobs]
for i in range(len(ds)):
    with ds.get_to_device(i, ctypes.addressof(dev[i]), stream=0x5) as cp:
        assert cp.size == len(blobs[i])
for i, b in enumerate(blobs):
    assert dev[i].raw[:len(b)] == b, "object %d: bytes differ" % i
n = ctypes.c_size_t()
cps = F.fake_copies(ctypes.byref(n))
assert n.value == len(blobs), n.value
assert all(cps[k].pinned for k in range(n.value)), "a copy came from unpinned memory"
assert all(cps[k].stream == 0x5 for k in range(n.value)), "a copy on another stream"
regs = calls("cudaHostRegister")
assert 1 <= regs <= 2, "%d registrations for %d objects in the arena" % (regs, len(blobs))
print("get_to_device: %d objects, %d registration(s)" % (len(blobs), regs))

# A second pass registers nothing more: the arena is pinned once.
for i in range(len(ds)):
    ds.get_to_device(i, ctypes.addressof(dev[i])).wait()
assert calls("cudaHostRegister") == regs, "registered again"

# The pipe: batches of 5 into two device buffers; the copy wait is delivery stall.
ctypes.c_int.in_dll(F, "fake_not_ready").value = 1 << 20  # every query: not done yet
ctypes.c_uint64.in_dll(F, "fake_sync_ns").value = 20_000_000
before = c.stats()
order = list(range(len(ds)))[::-1]
batches = [order[k:k + 5] for k in range(0, len(order), 5)]
got, waited = [], 0
for b, want in zip(ds.device_batches(batches, 1 << 20, compute_stream=0x9), batches):
    assert b.indices == want, (b.indices, want)
    for idx, off, size in zip(b.indices, b.offsets, b.sizes):
        assert ctypes.string_at(b.ptr + off, size) == blobs[idx], "pipe: object %d differs" % idx
    waited += b.wait_ns
    got.append(len(b.indices))
assert got == [len(b) for b in batches], got
assert calls("cudaStreamWaitEvent") >= len(batches), "compute stream never waited on a copy"
after = c.stats()
d = after["stall_delivery_ns"] - before["stall_delivery_ns"]
assert waited >= 15_000_000 * len(batches), waited
assert d >= waited * 0.99, "delivery stall grew %d ns, the pipe waited %d" % (d, waited)
print("device_batches: %d batches, waited %.0f ms, delivery stall +%.0f ms"
      % (len(batches), waited / 1e6, d / 1e6))
ctypes.c_int.in_dll(F, "fake_not_ready").value = 0
ctypes.c_uint64.in_dll(F, "fake_sync_ns").value = 0

# A CUDA failure is an OSError with the errno and the call's name.
F.fake_fail.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
F.fake_fail(b"cudaMemcpyAsync", 2, 1)  # cudaErrorMemoryAllocation
try:
    ds.get_to_device(0, ctypes.addressof(dev[0]))
    raise AssertionError("no error")
except OSError as e:
    assert e.errno == errno.ENOMEM and "cudaMemcpyAsync" in e.strerror, e
ds.close(); c.close()
# Bad arguments are TypeErrors before anything is got.
c2 = stoker.Client(socket=os.environ["T_SOCK"])
ds2 = c2.open("file://" + os.environ["T_DATA"] + "/")
for bad in ("x", 1.5):
    try:
        ds2.get_to_device(0, bad)
        raise AssertionError("accepted %r" % (bad,))
    except TypeError:
        pass
try:
    ds2.get_to_device(0, ctypes.addressof(dev[0]), stream="s")
    raise AssertionError("accepted a str stream")
except TypeError:
    pass
ctypes.c_int.in_dll(F, "fake_ndevices").value = 0
try:
    ds2.get_to_device(0, ctypes.addressof(dev[0]))
    raise AssertionError("no device, no error")
except OSError as e:
    assert e.errno == errno.ENODEV, e
print("errors: ok")
''', FAKE_GPU)
        check(r.returncode == 0, "fake runtime: %s" % (r.stderr[-2000:],))

    # The real libstoker_gpu: no device here is a clear error, not a crash.
    r = child(r'''
from stoker import _gpu
ok, why = _gpu.available()
c = stoker.Client(socket=os.environ["T_SOCK"])
ds = c.open("file://" + os.environ["T_DATA"] + "/")
if not ok:
    try:
        ds.get_to_device(0, 0x1000)
        raise AssertionError("no device, no error")
    except OSError as e:
        assert e.errno in (errno.ENODEV, errno.ENOTSUP), e
        assert e.strerror, e
    print("SKIP device copy: %s" % why)
else:
    import torch
    if not torch.cuda.is_available():
        print("SKIP device copy: torch has no CUDA")
    else:
        for i in range(len(ds)):
            t = torch.empty(len(blobs[i]), dtype=torch.uint8, device="cuda")
            s = torch.cuda.Stream()
            ds.get_to_device(i, t, stream=s).wait()
            assert bytes(t.cpu().numpy()) == blobs[i], i
        n = 0
        for b in ds.device_batches([[0, 1, 2], [3, 4]], 1 << 20):
            for t, idx in zip(b.tensors(), b.indices):
                assert bytes(t.cpu().numpy()) == blobs[idx]
                n += 1
        assert n == 5
        print("device copies: ok")
''', REAL_GPU)
    check(r.returncode == 0, "real libstoker_gpu: %s" % (r.stderr[-2000:],))
finally:
    daemon.terminate()
    try:
        daemon.wait(10)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()

if FAILS:
    print("%d check(s) failed" % len(FAILS))
    print(open(os.path.join(WORK, "stokerd.log")).read()[-3000:])
    sys.exit(1)
print("python gpu: all checks passed")
