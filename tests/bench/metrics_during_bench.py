#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""metrics_during_bench: /metrics scraped while stoker-bench trains through a
stokerd (issue 9).

Starts stokerd with --metrics 127.0.0.1:0 (the port it logs) and the emulated
slow backend, runs `stoker-bench --mode stoker --socket` against it on a
dataset made here, and scrapes /metrics every 0.3 s meanwhile. Checks:
- every scrape passes `promtool check metrics` (Debian's prometheus package);
- no counter (a *_total, or a histogram's _count, _sum or _bucket) decreases
  between scrapes;
- the run is visible in them (gets and stall grow);
- at the end, with the bench gone, the totals equal `stoker stats --json`;
- /healthz and /readyz answer 200.

Usage: metrics_during_bench.py STOKER_BENCH STOKERD STOKER_CLI WORKDIR
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.request


def fail(msg):
    print(f"metrics_during_bench: FAIL: {msg}", flush=True)
    sys.exit(1)


def scrape(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, r.read().decode()


def samples(text):
    """{series: value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


def is_counter(series):
    base = series.split("{")[0]
    return base.endswith(("_total", "_count", "_sum", "_bucket"))


def main():
    bench, stokerd, cli, work = sys.argv[1:5]
    promtool = shutil.which("promtool")
    if not promtool:
        fail("promtool is not installed: scripts/deps.sh installs Debian's prometheus package")
    shutil.rmtree(work, ignore_errors=True)
    data = os.path.join(work, "data")
    os.makedirs(data)
    rng = random.Random(9)
    for i in range(96):
        with open(os.path.join(data, f"f{i:03d}"), "wb") as f:
            f.write(rng.randbytes(rng.randint(16 << 10, 512 << 10)))
    sock = os.path.join(work, "stoker.sock")
    log = open(os.path.join(work, "stokerd.log"), "w+")
    d = subprocess.Popen([stokerd, "-f", "--socket", sock, "--ram", "32M", "--allow-root", work,
                          "--metrics", "127.0.0.1:0", "--emulate-latency", "10",
                          "--emulate-bandwidth", "100",
                          "--metrics-dataset", f"bench=file://{data}"],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        port = None
        for _ in range(100):
            time.sleep(0.05)
            log.seek(0)
            m = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", log.read())
            if m:
                port = int(m.group(1))
                break
        if not port:
            fail("stokerd never logged its metrics address")
        b = subprocess.Popen([bench, "--dataset", data, "--socket", sock, "--mode", "stoker",
                              "--steps", "48", "--batch", "8", "--compute-ms", "20"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        scrapes = []
        while b.poll() is None:
            status, text = scrape(port)
            if status != 200:
                fail(f"/metrics answered {status}")
            scrapes.append(text)
            time.sleep(0.3)
        out = b.stdout.read()
        if b.returncode != 0:
            print(out)
            fail(f"stoker-bench exited {b.returncode}")
        time.sleep(0.2)  # the bench's disconnect reaches the daemon
        status, final = scrape(port)
        scrapes.append(final)
        print(f"metrics_during_bench: {len(scrapes)} scrapes", flush=True)
        if len(scrapes) < 4:
            fail("the bench ran too briefly to be scraped during it")
        for i, text in enumerate(scrapes):
            p = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                               capture_output=True)
            if p.returncode != 0:
                fail(f"promtool rejected scrape {i}:\n{p.stdout}{p.stderr}")
        prev = samples(scrapes[0])
        for i, text in enumerate(scrapes[1:], 1):
            cur = samples(text)
            for k, v in prev.items():
                if is_counter(k) and k in cur and cur[k] < v:
                    fail(f"{k} went from {v} to {cur[k]} between scrapes {i - 1} and {i}")
            prev = cur
        last = samples(final)
        if last.get("stoker_gets_total", 0) < 48 * 8:
            fail(f"stoker_gets_total is {last.get('stoker_gets_total')}, want >= 384")
        if samples(scrapes[0]).get("stoker_gets_total", 0) >= last["stoker_gets_total"]:
            fail("no scrape saw the run in progress")
        st = json.loads(subprocess.run([cli, "stats", "--json"], capture_output=True, text=True,
                                       env=dict(os.environ, STOKER_SOCKET=sock),
                                       check=True).stdout)
        status, final = scrape(port)
        last = samples(final)
        pairs = [("stoker_gets_total", st["gets"]),
                 ("stoker_misses_total", st["misses"]),
                 ("stoker_fetches_total", st["fetches"]),
                 ('stoker_bytes_total{tier="ram",direction="out"}', st["delivered_bytes"]),
                 ('stoker_bytes_total{tier="ram",direction="in"}', st["fetch_bytes"]),
                 ("stoker_stall_seconds_total", st["stall_ns"] / 1e9),
                 ("stoker_stall_avoided_seconds_total", st["stall_avoided_ns"] / 1e9),
                 ('stoker_dataset_stall_seconds_total{dataset="bench"}', st["stall_ns"] / 1e9)]
        for series, want in pairs:
            got = last.get(series)
            if got is None or abs(got - want) > 1e-6 * max(1.0, abs(want)):
                fail(f"{series} = {got}, stoker stats --json says {want}")
            print(f"metrics_during_bench: {series} = {got} (stats: {want})")
        for path in ("/healthz", "/readyz"):
            status, body = scrape(port, path)
            if status != 200:
                fail(f"{path} answered {status}: {body}")
        print("metrics_during_bench: ok")
    finally:
        d.terminate()
        d.wait(timeout=30)


if __name__ == "__main__":
    main()
