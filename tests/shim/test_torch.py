#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_torch: real Python data loading under the shim (issue 10).

The driver (no LD_PRELOAD) writes a dataset of PNG and JPEG images and raw
float32 arrays under ROOT/ds, starts stokerd over it, and runs this script
again as a child with LD_PRELOAD=libstoker_shim.so and a STOKER_SHIM_MAP from
a local prefix that does NOT exist to file://ROOT/ds/. The child checks,
against the originals (unmapped, so read directly):
- PIL.Image.open of every mapped image gives the same pixels;
- numpy.fromfile of every mapped array gives the same values;
- a map-style torch Dataset built with os.walk over the mapped directory,
  under a DataLoader with num_workers=2 and shuffle, 2 epochs with the fork
  start method and one each with spawn and forkserver: every sample's bytes
  are the original's, every file is seen once per epoch;
- a missing mapped file is FileNotFoundError.
Then the driver checks stokerd served the gets (stoker stats --json).

Usage: test_torch.py SHIM STOKERD STOKER_CLI WORKDIR
Uses Debian's python3-torch, python3-numpy, python3-pil (/usr/bin/python3).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

N_IMAGES = 48  # per format
N_ARRAYS = 16


def sha(b):
    return hashlib.sha256(b).hexdigest()


def fail(msg):
    print(f"test_torch: FAIL: {msg}", flush=True)
    sys.exit(1)


def make_dataset(ds):
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(10)
    for c in range(4):
        os.makedirs(os.path.join(ds, "train", f"class{c}"), exist_ok=True)
    for i in range(N_IMAGES):
        c = i % 4
        img = Image.fromarray(rng.integers(0, 255, (32 + i % 7, 40, 3), dtype=np.uint8))
        img.save(os.path.join(ds, "train", f"class{c}", f"img{i:03d}.png"))
        img.save(os.path.join(ds, "train", f"class{c}", f"img{i:03d}.jpg"), quality=90)
    os.makedirs(os.path.join(ds, "arrays"), exist_ok=True)
    for i in range(N_ARRAYS):
        rng.standard_normal(1000 + 37 * i).astype(np.float32).tofile(
            os.path.join(ds, "arrays", f"a{i:02d}.f32"))


# --- the child, under LD_PRELOAD ---

class Files:
    """A map-style dataset of every file below root, found with os.walk."""

    def __init__(self, root):
        self.paths = []
        for d, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                self.paths.append(os.path.join(d, f))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with open(self.paths[i], "rb") as f:
            data = f.read()
        return self.paths[i], sha(data), len(data)


def loader_epochs(mnt, orig, ctx, epochs):
    import torch
    from torch.utils.data import DataLoader
    ds = Files(os.path.join(mnt, "train"))
    want = {}
    for p in ds.paths:
        with open(orig + p[len(mnt):], "rb") as f:
            want[p] = sha(f.read())
    if len(ds) != 2 * N_IMAGES:
        fail(f"os.walk over the mapped train/ found {len(ds)} files, want {2 * N_IMAGES}")
    torch.manual_seed(1)
    dl = DataLoader(ds, batch_size=8, shuffle=True, num_workers=2, multiprocessing_context=ctx,
                    persistent_workers=False)
    for epoch in range(epochs):
        seen = []
        order = []
        for paths, digests, sizes in dl:
            for p, d in zip(paths, digests):
                if want[p] != d:
                    fail(f"{ctx} epoch {epoch}: {p} differs from {orig + p[len(mnt):]}")
                seen.append(p)
            order.extend(paths)
        if sorted(seen) != sorted(want):
            fail(f"{ctx} epoch {epoch}: saw {len(seen)} samples, {len(set(seen))} distinct, "
                 f"want each of {len(want)} once")
        print(f"test_torch: DataLoader ({ctx}) epoch {epoch}: {len(seen)} samples identical, "
              f"first {os.path.basename(order[0])}", flush=True)


def child(mnt, orig):
    import numpy as np
    from PIL import Image
    if os.path.exists(mnt) is False:
        fail(f"{mnt} does not exist under the shim")
    # PIL: pixels of every mapped image equal the original's.
    n = 0
    for d, _, files in os.walk(os.path.join(mnt, "train")):
        for f in files:
            p = os.path.join(d, f)
            with Image.open(p) as a, Image.open(orig + p[len(mnt):]) as b:
                if a.size != b.size or a.tobytes() != b.tobytes():
                    fail(f"PIL: {p} decodes differently from the original")
            n += 1
    if n != 2 * N_IMAGES:
        fail(f"PIL: {n} images under the mapping, want {2 * N_IMAGES}")
    print(f"test_torch: PIL.Image.open: {n} mapped images identical", flush=True)
    # numpy.fromfile
    names = sorted(e.name for e in os.scandir(os.path.join(mnt, "arrays")))
    if len(names) != N_ARRAYS:
        fail(f"os.scandir(arrays) gave {len(names)} entries, want {N_ARRAYS}")
    for name in names:
        a = np.fromfile(os.path.join(mnt, "arrays", name), dtype=np.float32)
        b = np.fromfile(os.path.join(orig, "arrays", name), dtype=np.float32)
        if not np.array_equal(a, b):
            fail(f"numpy.fromfile: {name} differs")
    print(f"test_torch: numpy.fromfile: {len(names)} mapped arrays identical", flush=True)
    try:
        open(os.path.join(mnt, "train", "class0", "nope.png"), "rb")
        fail("a missing mapped file opened")
    except FileNotFoundError:
        pass
    loader_epochs(mnt, orig, "fork", 2)
    loader_epochs(mnt, orig, "spawn", 1)
    loader_epochs(mnt, orig, "forkserver", 1)
    print("test_torch: child ok", flush=True)


# --- the driver ---

def driver(shim, stokerd, cli, work):
    try:
        import numpy  # noqa: F401
        import PIL  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        fail(f"{e}: scripts/deps.sh installs Debian's python3-torch, python3-numpy and "
             "python3-pil; run this with /usr/bin/python3")
    shutil.rmtree(work, ignore_errors=True)
    root = os.path.join(work, "root")
    ds = os.path.join(root, "ds")
    os.makedirs(ds)
    make_dataset(ds)
    mnt = os.path.join(work, "mnt", "ds")  # never created
    sock = os.path.join(work, "stoker.sock")
    log = open(os.path.join(work, "stokerd.log"), "w")
    d = subprocess.Popen([stokerd, "-f", "--socket", sock, "--allow-root", root, "--ram", "64M",
                          "--metrics", "off"], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.02)
        env = dict(os.environ, LD_PRELOAD=shim, STOKER_SOCKET=sock,
                   STOKER_SHIM_MAP=f"{mnt}=file://{ds}/")
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, __file__, "child", mnt, ds], env=env, timeout=240)
        if p.returncode != 0:
            fail(f"the child under the shim exited {p.returncode}")
        st = json.loads(subprocess.run([cli, "stats", "--json"], capture_output=True, text=True,
                                       env=dict(os.environ, STOKER_SOCKET=sock),
                                       check=True).stdout)
        # PIL and numpy read each file once, the DataLoader 4 epochs of the images.
        want = 2 * N_IMAGES + N_ARRAYS + 4 * 2 * N_IMAGES
        if st["gets"] < want:
            fail(f"stokerd served {st['gets']} gets, want at least {want}: the reads did not "
                 "go through it")
        print(f"test_torch: ok in {time.monotonic() - t0:.1f} s; stokerd served {st['gets']} "
              f"gets, {st['hits_ram']} hits, stall {st['stall_ns'] / 1e9:.3f} s", flush=True)
    finally:
        d.terminate()
        d.wait(timeout=30)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5:
        driver(*sys.argv[1:5])
    else:
        sys.exit(__doc__)
