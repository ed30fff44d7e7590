#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""faultproxy: an HTTP/1.1 reverse proxy that injects faults, for stoker's tests.

Forwards every request on 127.0.0.1:PORT to an upstream host:port with its head
passed through byte for byte (so the Host header, and with it a SigV4
signature, still verifies at the upstream), keeps connections alive on both
sides, and faults chosen requests:

  503       answer 503 with an S3 SlowDown XML body, without asking upstream
  reset     reset the connection (RST) before any response byte
  midbody   send the upstream's head and part of its body, then reset (RST)
  truncate  send the upstream's head (the full Content-Length) and part of the
            body, then close cleanly (FIN): a short body
  long      answer a ranged GET's 2xx with more bytes than were asked for:
            the upstream's body plus 1-4096 junk bytes, Content-Length raised
            to match (a server that ignores the end of the Range); the
            connection stays usable.  Only requests with a Range header: a
            client cannot tell junk from data where it asked for everything

When a kind cannot apply (nothing to cut short or lengthen: a HEAD, an empty
body, an error answer, "long" without a Range), the request is reset instead
and counted as a reset.

A body longer than its own Content-Length cannot be sent on an HTTP/1.1
keep-alive connection (the extra bytes would be the next response), so that
fault is not offered; "long" is the form of it that HTTP allows.

Which requests are faulted:
  --fault-first N   the first N matching requests, kinds taken in turn from
                    --kinds (exact tests);
  --rate R          afterwards, each matching request with probability R, kind
                    drawn uniformly from --kinds;
  --match SUBSTR    only requests whose method + target contains SUBSTR
                    (repeatable; default: every request).
Decisions come from one random.Random(--seed) consumed in arrival order.

Readiness: with --port-file, the bound port is written there (atomically) once
the proxy listens; it is also printed as "faultproxy listening on HOST:PORT".
Counts: --stats-file is rewritten (JSON, atomically) after every request; on
SIGTERM or SIGINT the counts are printed to stderr and the proxy exits 0.
--log FILE appends one line per request: number, method, target, Range,
fault, upstream status.  Both are written before the response is finished,
so a client that has its response can read its request there.

Python 3 standard library only.
"""
import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import struct
import sys

KINDS = ("503", "reset", "midbody", "truncate", "long")
HEAD_MAX = 64 * 1024
CHUNK = 256 * 1024

SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    b"<RequestId>faultproxy</RequestId></Error>"
)


class Stats:
    def __init__(self, path):
        self.path = path
        self.requests = 0
        self.faults = {k: 0 for k in KINDS}
        self.upstream_errors = 0

    def as_dict(self):
        return {
            "requests": self.requests,
            "injected": sum(self.faults.values()),
            "faults": dict(self.faults),
            "upstream_errors": self.upstream_errors,
        }

    def save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.as_dict(), f)
            f.write("\n")
        os.replace(tmp, self.path)


class Head:
    """A parsed request or response head; raw keeps the bytes as received."""

    def __init__(self, raw):
        self.raw = raw
        lines = raw.split(b"\r\n")
        self.start = lines[0].decode("latin-1")
        self.headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(b":")
            if not sep:
                raise ValueError("malformed header line")
            self.headers.append((name.strip().lower().decode("latin-1"),
                                 value.strip().decode("latin-1")))

    def get(self, name, default=None):
        for n, v in self.headers:
            if n == name:
                return v
        return default

    def content_length(self):
        v = self.get("content-length")
        if v is None:
            return None
        n = int(v)
        if n < 0:
            raise ValueError("negative Content-Length")
        return n

    def chunked(self):
        return "chunked" in (self.get("transfer-encoding") or "").lower()

    def wants_close(self, version):
        conn = (self.get("connection") or "").lower()
        if "close" in conn:
            return True
        return version == "HTTP/1.0" and "keep-alive" not in conn


async def read_head(reader):
    """Returns the head's bytes (ending in CRLF CRLF), or None at a clean EOF."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise
    except asyncio.LimitOverrunError:
        raise ValueError("head too long")
    return raw


async def relay_exact(reader, writer, n):
    while n > 0:
        b = await reader.read(min(CHUNK, n))
        if not b:
            raise ConnectionError("upstream closed mid-body")
        writer.write(b)
        await writer.drain()
        n -= len(b)


async def relay_chunked(reader, writer):
    while True:
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:  # trailers, then the empty line
                t = await reader.readuntil(b"\r\n")
                writer.write(t)
                if t == b"\r\n":
                    break
            await writer.drain()
            return
        await relay_exact(reader, writer, size)
        writer.write(await reader.readexactly(2))


def reset(writer):
    """Closes with an RST: SO_LINGER on, timeout 0."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class Proxy:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.matched = 0
        self.stats = Stats(args.stats_file)
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.kinds = args.kinds

    def choose(self, method, target):
        """Returns the fault for this request, or None."""
        self.stats.requests += 1
        what = method + " " + target
        if self.args.match and not any(m in what for m in self.args.match):
            return None
        self.matched += 1
        r = self.rng.random()  # consumed for every matching request: deterministic
        k = self.rng.randrange(len(self.kinds))
        if self.matched <= self.args.fault_first:
            return self.kinds[(self.matched - 1) % len(self.kinds)]
        if r < self.args.rate:
            return self.kinds[k]
        return None

    def note(self, n, method, target, rng, fault, status):
        if fault:
            self.stats.faults[fault] += 1
        self.stats.save()
        if self.log:
            self.log.write(f"{n} {method} {target} range={rng or '-'} "
                           f"fault={fault or '-'} status={status}\n")

    async def handle(self, creader, cwriter):
        up = None  # (reader, writer) to the upstream, kept alive across requests
        try:
            while True:
                raw = await read_head(creader)
                if raw is None:
                    return
                head = Head(raw)
                parts = head.start.split(" ")
                if len(parts) != 3:
                    raise ValueError("malformed request line")
                method, target, version = parts
                if head.chunked():
                    cwriter.write(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n"
                                  b"Connection: close\r\n\r\n")
                    await cwriter.drain()
                    return
                body = b""
                cl = head.content_length()
                if cl:
                    body = await creader.readexactly(cl)
                fault = self.choose(method, target)
                n = self.stats.requests
                range_hdr = head.get("range")

                if fault == "503":
                    self.note(n, method, target, range_hdr, fault, 503)
                    cwriter.write(b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                                  b"Content-Length: %d\r\nRetry-After: 0\r\n\r\n" % len(SLOWDOWN)
                                  + (b"" if method == "HEAD" else SLOWDOWN))
                    await cwriter.drain()
                    if head.wants_close(version):
                        return
                    continue
                if fault == "reset":
                    self.note(n, method, target, range_hdr, fault, "-")
                    reset(cwriter)
                    return

                if up is None:
                    up = await asyncio.open_connection(self.args.upstream_host,
                                                       self.args.upstream_port,
                                                       limit=HEAD_MAX)
                ureader, uwriter = up
                uwriter.write(raw + body)
                await uwriter.drain()
                rraw = await read_head(ureader)
                if rraw is None:
                    raise ConnectionError("upstream closed before answering")
                rhead = Head(rraw)
                rver, status = rhead.start.split(" ")[0:2]
                status = int(status)
                bodyless = method == "HEAD" or status in (204, 304) or 100 <= status < 200
                rcl = None if bodyless else rhead.content_length()

                if fault in ("midbody", "truncate") and not bodyless and rcl:
                    # Part of the body: at least none, at most all but one byte.
                    keep = self.rng.randrange(rcl)
                    self.note(n, method, target, range_hdr, fault, status)
                    cwriter.write(rraw)
                    await relay_exact(ureader, cwriter, keep)
                    uwriter.close()  # its unread rest makes the upstream unusable
                    up = None
                    if fault == "midbody":
                        reset(cwriter)
                    else:
                        cwriter.close()
                    return
                if (fault == "long" and range_hdr and not bodyless and rcl is not None
                        and 200 <= status < 300):
                    extra = self.rng.randrange(1, 4097)
                    self.note(n, method, target, range_hdr, fault, status)
                    cwriter.write(re.sub(rb"(?im)^content-length:[ \t]*\d+",
                                         b"Content-Length: %d" % (rcl + extra), rraw, count=1))
                    await relay_exact(ureader, cwriter, rcl)
                    cwriter.write(bytes(self.rng.getrandbits(8) for _ in range(extra)))
                    await cwriter.drain()
                    if head.wants_close(version) or rhead.wants_close(rver):
                        return
                    continue
                if fault in ("midbody", "truncate", "long"):
                    # Nothing to cut short or lengthen (HEAD, an empty body, an
                    # error answer): reset instead.
                    fault = "reset"
                    self.note(n, method, target, range_hdr, fault, status)
                    reset(cwriter)
                    return

                # Logged before the client can see the end of the response, so a
                # test that reads the log after its request completes finds it.
                self.note(n, method, target, range_hdr, None, status)
                cwriter.write(rraw)
                close_after = head.wants_close(version) or rhead.wants_close(rver)
                if bodyless:
                    pass
                elif rcl is not None:
                    await relay_exact(ureader, cwriter, rcl)
                elif rhead.chunked():
                    await relay_chunked(ureader, cwriter)
                else:  # delimited by the upstream closing
                    while True:
                        b = await ureader.read(CHUNK)
                        if not b:
                            break
                        cwriter.write(b)
                        await cwriter.drain()
                    close_after = True
                await cwriter.drain()
                if rhead.wants_close(rver):
                    uwriter.close()
                    up = None
                if close_after:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError) as e:
            if not isinstance(e, (ConnectionResetError, BrokenPipeError)):
                self.stats.upstream_errors += 1
                self.stats.save()
                print(f"faultproxy: {type(e).__name__}: {e}", file=sys.stderr)
        finally:
            if up is not None:
                up[1].close()
            if not cwriter.is_closing():
                cwriter.close()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: pick one)")
    p.add_argument("--upstream", required=True, help="HOST:PORT to forward to")
    p.add_argument("--rate", type=float, default=0.0, help="fraction of requests to fault")
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated: " + ",".join(KINDS))
    p.add_argument("--fault-first", type=int, default=0, help="fault the first N requests")
    p.add_argument("--match", action="append", default=[], help="fault only these requests")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--port-file")
    p.add_argument("--stats-file")
    p.add_argument("--log")
    a = p.parse_args(argv)
    a.kinds = [k for k in a.kinds.split(",") if k]
    bad = [k for k in a.kinds if k not in KINDS]
    if bad or not a.kinds:
        p.error(f"unknown fault kind(s) {bad}; choose from {','.join(KINDS)}")
    if not 0.0 <= a.rate <= 1.0:
        p.error("--rate must be in [0, 1]")
    a.listen_host, _, lp = a.listen.rpartition(":")
    a.listen_port = int(lp)
    a.upstream_host, _, up = a.upstream.rpartition(":")
    a.upstream_port = int(up)
    return a


async def main(argv):
    args = parse_args(argv)
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.handle, args.listen_host, args.listen_port,
                                        limit=HEAD_MAX, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    proxy.stats.save()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"faultproxy listening on {args.listen_host}:{port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    server.close()
    proxy.stats.save()
    print("faultproxy: " + json.dumps(proxy.stats.as_dict()), file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
