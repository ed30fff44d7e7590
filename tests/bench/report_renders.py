#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report_renders: stoker-bench --report writes a self-contained page that
headless Chromium renders as charts.

Runs a short A/B (--demo, 24 steps, 20 ms compute: ~10 s) with --report and
--json, its dataset under a $TMPDIR whose name holds < & ' " > so the
page must escape it; checks the page (no network references but the SVG
namespace, no script, the escaped path, the avoided stall it prints matches
the JSON), then screenshots it with headless Chromium and decodes the PNG
(8-bit RGB/RGBA, non-interlaced, here and with zlib alone: Debian's base
Python has no PIL) to require that much of it is not white, that it has many
colours, and that the timeline's wait and compute colours are on it.

Missing Chromium is a failure, not a skip: scripts/deps.sh installs it.

Usage: report_renders.py STOKER_BENCH STOKERD WORKDIR
WORKDIR keeps report.html, shot.png and the bench's output for a look after
a failure.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

# The timeline's colours in bench/html.c (C_WAIT, C_COMPUTE).
WAIT_RGB = (0xE4, 0x57, 0x2E)
COMPUTE_RGB = (0x76, 0xB7, 0xE5)
ODD = "h3 <a&b'c\">"  # a directory name every HTML writer must escape
ODD_ESCAPED = "h3 &lt;a&amp;b&#39;c&quot;&gt;"


def fail(msg):
    print("report_renders: FAIL: " + msg, flush=True)
    sys.exit(1)


def decode_png(path):
    """Returns (width, height, channels, rows): rows[y] a bytearray of
    width * channels bytes.  Only what Chromium writes: 8-bit RGB or RGBA,
    not interlaced."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path} is not a PNG")
    pos, idat, hdr = 8, [], None
    while pos + 8 <= len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if not hdr:
        fail(f"{path} has no IHDR")
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        fail(f"{path}: depth {depth}, colour type {ctype}, interlace {interlace}: "
             "this decoder reads 8-bit RGB/RGBA, not interlaced")
    bpp = 3 if ctype == 2 else 4
    stride = w * bpp
    raw = zlib.decompress(b"".join(idat))
    if len(raw) != h * (stride + 1):
        fail(f"{path}: {len(raw)} bytes of image data, expected {h * (stride + 1)}")
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if ft == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif ft == 2:  # Up
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ft == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ft == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        elif ft != 0:
            fail(f"{path}: row {y} has filter type {ft}")
        rows.append(line)
        prev = line
    return w, h, bpp, rows


def check_html(page, dataset, measured):
    if not page.lstrip().lower().startswith("<!doctype html>"):
        fail("the report does not start with <!DOCTYPE html>")
    svgs = page.count("<svg")
    if svgs < 5:
        fail(f"the report holds {svgs} <svg> elements; expected the stall split, the "
             "timeline strip, per-step bars of both modes and the throughput chart")
    # Nothing a browser would fetch: the only URL is the SVG namespace.
    ns = ("xmlns='http://www.w3.org/2000/svg'", 'xmlns="http://www.w3.org/2000/svg"')
    for m in re.finditer(r"https?://", page):
        at = m.start() - len("xmlns='")
        if at < 0 or page[at : at + len(ns[0])] not in ns:
            fail(f"the report refers to a URL: ...{page[max(0, m.start() - 40):m.end() + 60]}...")
    for bad in ("<script", "<link", "<img", "<iframe", "@import", "url("):
        if bad in page.lower():
            fail(f"the report is not self-contained: it holds {bad!r}")
    if ODD in page:
        fail(f"the dataset path appears unescaped in the report ({ODD!r})")
    esc_ds = (dataset.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
              .replace('"', "&quot;").replace("'", "&#39;"))
    if ODD_ESCAPED not in esc_ds or esc_ds not in page:
        fail(f"the report does not name the dataset, escaped: {esc_ds!r}")
    m = re.search(r"<b>(-?[0-9.]+) s</b> measured", page)
    if not m:
        fail("the report does not state the measured stall avoided")
    if abs(float(m.group(1)) - measured) > 0.006:
        fail(f"the report says {m.group(1)} s measured stall avoided, the JSON "
             f"{measured:.3f} s")
    for want in ("reported by stokerd", "reported / measured", "EMULATED slow backend",
                 "Per-step timeline", "Throughput over time", "Parameters"):
        if want not in page:
            fail(f"the report lacks {want!r}")


def check_png(path):
    w, h, bpp, rows = decode_png(path)
    if (w, h) != (1200, 1600):
        fail(f"the screenshot is {w}x{h}, asked for 1200x1600")
    nonwhite, colours, wait_px, compute_px = 0, set(), 0, 0

    def near(px, ref):
        return all(abs(a - b) <= 6 for a, b in zip(px, ref))

    for line in rows:
        for i in range(0, w * bpp, bpp):
            px = (line[i], line[i + 1], line[i + 2])
            if px[0] < 240 or px[1] < 240 or px[2] < 240:
                nonwhite += 1
                colours.add((px[0] >> 4, px[1] >> 4, px[2] >> 4))
                if near(px, WAIT_RGB):
                    wait_px += 1
                elif near(px, COMPUTE_RGB):
                    compute_px += 1
    share = nonwhite / (w * h)
    print(f"report_renders: screenshot {w}x{h}: {100 * share:.1f}% non-white, "
          f"{len(colours)} distinct colours (4 bits a channel), {wait_px} wait-coloured "
          f"and {compute_px} compute-coloured pixels", flush=True)
    # A blank page is 0% white-free; a line of text is ~0.01% in ~15 greys.
    if share < 0.05:
        fail(f"the screenshot is nearly blank: {100 * share:.2f}% non-white pixels")
    if len(colours) < 40:
        fail(f"the screenshot has {len(colours)} distinct colours; charts have more")
    if wait_px < 5000 or compute_px < 1000:
        fail(f"the charts did not render: {wait_px} pixels of the wait colour and "
             f"{compute_px} of the compute colour")


def main():
    if len(sys.argv) != 4:
        fail("usage: report_renders.py STOKER_BENCH STOKERD WORKDIR")
    bench, stokerd, work = sys.argv[1:]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        fail("chromium is not installed, so the report cannot be rendered; "
             "scripts/deps.sh installs it (apt-get install chromium)")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    html, png = os.path.join(work, "report.html"), os.path.join(work, "shot.png")

    # The dataset goes under $TMPDIR (bench_mkdtemp): on /var/tmp, a disk,
    # so the page cache drops mean something.
    with tempfile.TemporaryDirectory(prefix="stoker-report.", dir="/var/tmp") as tmp:
        odd = os.path.join(tmp, ODD)
        os.mkdir(odd)
        env = dict(os.environ, TMPDIR=odd)
        cmd = [bench, "--demo", "--steps", "24", "--compute-ms", "20", "--stokerd", stokerd,
               "--report", html, "--json"]
        print("report_renders: " + " ".join(cmd), flush=True)
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=240)
        with open(os.path.join(work, "bench.out"), "w") as f:
            f.write(p.stdout + "\n--- stderr ---\n" + p.stderr)
        if p.returncode != 0:
            sys.stderr.write(p.stderr)
            fail(f"stoker-bench exited {p.returncode}")
    try:
        j = json.loads(p.stdout)
    except ValueError as e:
        fail(f"stoker-bench --json printed no JSON: {e}")
    if "stall_avoided_reported_s" not in j or "stall_avoided_ratio" not in j:
        fail("the JSON lacks stall_avoided_reported_s or stall_avoided_ratio")
    if not os.path.exists(html):
        fail(f"stoker-bench wrote no {html}")
    with open(html, encoding="utf-8") as f:
        page = f.read()
    check_html(page, j["config"]["dataset"], j["stall_avoided_measured_s"])
    print(f"report_renders: {html}: {len(page)} bytes, self-contained", flush=True)

    with tempfile.TemporaryDirectory(prefix="stoker-chromium.") as prof:
        cmd = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
               f"--user-data-dir={prof}", "--hide-scrollbars", f"--screenshot={png}",
               "--window-size=1200,1600", "file://" + os.path.abspath(html)]
        print("report_renders: " + " ".join(cmd), flush=True)
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=120)
        except subprocess.TimeoutExpired:
            fail("chromium did not finish the screenshot in 120 s")
    if r.returncode != 0 or not os.path.exists(png):
        sys.stderr.write(r.stdout[-4000:])
        fail(f"chromium exited {r.returncode} without a screenshot")
    check_png(png)
    print("report_renders: PASS", flush=True)


if __name__ == "__main__":
    main()
