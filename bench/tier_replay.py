#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tier_replay.py: one tier_replay run against a fresh stokerd.

Writes the trace's dataset into a temp dir (under $TMPDIR or /var/tmp),
starts `stokerd --foreground --ram RAM [--nvme-dir D --nvme NVME]
--allow-root DATASET` on a private socket, runs `tier_replay --socket ...`
with the same budgets (so the offline policies get what the daemon got),
stops the daemon with SIGTERM (it must exit 0) and removes the temp dir.
Prints tier_replay's table; --json FILE keeps its JSON.

Usage: tier_replay.py [--build DIR | --tool T --stokerd S] --ram SIZE
       [--nvme SIZE] [--emulate-latency MS] [--emulate-bandwidth MBPS]
       [--json FILE] [-- more tier_replay options]

Importable: run(tool, stokerd, ram, nvme, args, daemon_args) returns
(exit status, stdout, the parsed JSON or None).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def stokerd_has_nvme(stokerd):
    """True when this stokerd has tier 1 (--nvme in its --help)."""
    p = subprocess.run([stokerd, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=20)
    return "--nvme-dir" in p.stdout


def run(tool, stokerd, ram, nvme=None, args=(), daemon_args=(), timeout=600, quiet=False):
    base = os.environ.get("TMPDIR") or "/var/tmp"
    tmp = tempfile.mkdtemp(prefix="tier-replay.", dir=base)
    sock_dir = tempfile.mkdtemp(prefix="trs.", dir="/tmp")  # sun_path is short
    data = os.path.join(tmp, "data")
    sock = os.path.join(sock_dir, "s.sock")
    jpath = os.path.join(tmp, "out.json")
    common = ["--ram", ram] + (["--nvme", nvme] if nvme else []) + list(args)
    daemon = None
    try:
        w = subprocess.run([tool, "--dir", data, "--write"] + common, stdout=subprocess.DEVNULL,
                           timeout=timeout)
        if w.returncode != 0:
            return w.returncode, "", None
        cmd = [stokerd, "--foreground", "--socket", sock, "--ram", ram, "--allow-root", data,
               "--log-level", "warn", "--metrics", "off"] + list(daemon_args)
        if nvme:
            nvdir = os.path.join(tmp, "nvme")
            os.mkdir(nvdir)
            cmd += ["--nvme-dir", nvdir, "--nvme", nvme]
        if not quiet:
            print("tier_replay.py: " + " ".join(cmd), flush=True)
        daemon = subprocess.Popen(cmd, stdout=sys.stderr)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if daemon.poll() is not None or time.monotonic() > deadline:
                print(f"tier_replay.py: stokerd did not start (status {daemon.poll()})",
                      file=sys.stderr)
                return 1, "", None
            time.sleep(0.02)
        rcmd = [tool, "--dir", data, "--socket", sock, "--json", jpath] + common
        if not quiet:
            print("tier_replay.py: " + " ".join(rcmd), flush=True)
        p = subprocess.run(rcmd, stdout=subprocess.PIPE, text=True, timeout=timeout)
        daemon.send_signal(signal.SIGTERM)
        rc_d = daemon.wait(timeout=30)
        daemon = None
        if rc_d != 0:
            print(f"tier_replay.py: stokerd exited {rc_d}", file=sys.stderr)
        doc = None
        if p.returncode == 0:
            with open(jpath) as f:
                doc = json.load(f)
        return (p.returncode or (1 if rc_d else 0)), p.stdout, doc
    finally:
        if daemon is not None:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(sock_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--tool")
    ap.add_argument("--stokerd")
    ap.add_argument("--ram", required=True)
    ap.add_argument("--nvme")
    ap.add_argument("--emulate-latency")
    ap.add_argument("--emulate-bandwidth")
    ap.add_argument("--json")
    ap.add_argument("rest", nargs="*", help="more tier_replay options, after --")
    a = ap.parse_args()
    tool = a.tool or os.path.join(a.build, "bench", "tier_replay")
    stokerd = a.stokerd or os.path.join(a.build, "prefetch", "stokerd")
    if a.nvme and not stokerd_has_nvme(stokerd):
        sys.exit(f"tier_replay.py: {stokerd} has no --nvme-dir (tier 1)")
    extra, dargs = list(a.rest), []
    for flag, val in (("--emulate-latency", a.emulate_latency),
                      ("--emulate-bandwidth", a.emulate_bandwidth)):
        if val:
            extra += [flag, val]
            dargs += [flag, val]
    rc, out, doc = run(tool, stokerd, a.ram, a.nvme, extra, dargs)
    sys.stdout.write(out)
    if a.json and doc is not None:
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)
    sys.exit(rc)


if __name__ == "__main__":
    main()
