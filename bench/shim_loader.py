#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An unmodified-style PyTorch training loop over a directory of files, for
bench/shim_dataloader.sh: a map-style Dataset found with os.walk, each sample
read with open().read(), a DataLoader (batch, workers, shuffle), and a fixed
compute time per batch. Prints one JSON line: per-epoch seconds, samples,
bytes, and the compute alone.

Usage: shim_loader.py ROOT [--epochs 2] [--batch 32] [--workers 2]
                           [--compute-ms 20] [--seed 1]
       shim_loader.py LOCAL_COPY --write-plan FILE --as ROOT [--seed 1]
The second form writes the first epoch's sampler order (the same seed, the
same listing order) as paths under ROOT, one per line: a STOKER_SHIM_PLAN
as a sampler could write it, made from a local copy of the listing so it
exists before the loader's first read.
"""
import argparse
import json
import os
import time

import torch
from torch.utils.data import DataLoader, RandomSampler


class Files:
    def __init__(self, root):
        self.paths = []
        for d, dirs, files in os.walk(root):
            dirs.sort()
            self.paths += [os.path.join(d, f) for f in sorted(files)]

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with open(self.paths[i], "rb") as f:
            return len(f.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--compute-ms", type=float, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write-plan")
    ap.add_argument("--as", dest="as_root")
    a = ap.parse_args()
    t0 = time.monotonic()
    ds = Files(a.root)
    list_s = time.monotonic() - t0
    # The shuffle's generator is seeded here, so its order can be known ahead.
    sampler = RandomSampler(ds, generator=torch.Generator().manual_seed(a.seed))
    if a.write_plan:
        with open(a.write_plan, "w") as f:
            for i in sampler:
                f.write(a.as_root + ds.paths[i][len(a.root):] + "\n")
        return
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
    print(json.dumps({"files": len(ds), "list_s": list_s, "epochs": epochs}))


if __name__ == "__main__":
    main()
