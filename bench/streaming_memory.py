#!/usr/bin/env python3
"""Streaming benchmark: one large single-request PUT and GET through a real tessera server,
printing throughput and the server's peak resident memory.

Usage: python3 bench/streaming_memory.py [--size-mib 2048] [--disks 4] [--max-rss-mib 200]

It starts `tessera serve` (binary from $TESSERA_BIN or the default cargo target dir) on
127.0.0.1 with fresh temporary disks, uploads SIZE of unique data in ONE PutObject (presigned,
streamed from a generator: the client never holds the object either), downloads it, checks
the SHA-256, and reads the server's peak RSS (VmHWM). Exits 1 when the check fails or the
peak RSS exceeds --max-rss-mib.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

from benchlib import binary, free_port

MiB = 1 << 20
USER, PASSWORD = "benchadmin", "benchadmin-secret"


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def blocks(size: int, seed: bytes):
    """Unique 1 MiB blocks: a random block with the block number stamped in front, so every
    server chunk is new data (no dedup shortcut) while generation stays cheap."""
    base = bytearray(hashlib.shake_256(seed).digest(MiB))
    sent = 0
    n = 0
    while sent < size:
        base[:8] = n.to_bytes(8, "little")
        piece = bytes(base[: min(MiB, size - sent)])
        sent += len(piece)
        n += 1
        yield piece


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--disks", type=int, default=4)
    ap.add_argument("--max-rss-mib", type=float, default=200)
    args = ap.parse_args()
    size = args.size_mib * MiB

    work = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    port = free_port()
    disks = [str(work / f"disk{i}") for i in range(args.disks)]
    env = dict(os.environ, TESSERA_ROOT_USER=USER, TESSERA_ROOT_PASSWORD=PASSWORD)
    log = open(work / "server.log", "w")
    proc = subprocess.Popen(
        [binary(), "serve", "--address", f"127.0.0.1:{port}", *disks],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/.tessera/health/live", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    print((work / "server.log").read_text(), file=sys.stderr)
                    return 1
                time.sleep(0.1)
        s3 = boto3.client(
            "s3", endpoint_url=url, aws_access_key_id=USER, aws_secret_access_key=PASSWORD,
            region_name="us-east-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        s3.create_bucket(Bucket="bench")
        rss_idle = peak_rss_mib(proc.pid)

        put_url = urllib.parse.urlsplit(
            s3.generate_presigned_url("put_object", Params={"Bucket": "bench", "Key": "big"}, ExpiresIn=3600)
        )
        sha = hashlib.sha256()

        def body():
            for b in blocks(size, b"tessera-bench"):
                sha.update(b)
                yield b

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        t0 = time.monotonic()
        conn.request("PUT", f"{put_url.path}?{put_url.query}", body=body(),
                     headers={"Content-Length": str(size)})
        resp = conn.getresponse()
        resp.read()
        put_s = time.monotonic() - t0
        if resp.status != 200:
            print(f"PUT failed: {resp.status}", file=sys.stderr)
            return 1
        rss_after_put = peak_rss_mib(proc.pid)

        get_url = urllib.parse.urlsplit(
            s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "big"}, ExpiresIn=3600)
        )
        got = hashlib.sha256()
        n = 0
        t0 = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        conn.request("GET", f"{get_url.path}?{get_url.query}")
        resp = conn.getresponse()
        while chunk := resp.read(4 * MiB):
            got.update(chunk)
            n += len(chunk)
        get_s = time.monotonic() - t0
        rss_peak = peak_rss_mib(proc.pid)
        ok = resp.status == 200 and n == size and got.digest() == sha.digest()

        print(f"object size:        {args.size_mib} MiB, {args.disks} disk(s), one PutObject + one GetObject")
        print(f"PUT:                {put_s:6.2f} s  {args.size_mib / put_s:7.1f} MiB/s")
        print(f"GET:                {get_s:6.2f} s  {args.size_mib / get_s:7.1f} MiB/s")
        print(f"server RSS peak:    idle {rss_idle:.1f} MiB, after PUT {rss_after_put:.1f} MiB, after GET {rss_peak:.1f} MiB (limit {args.max_rss_mib:.0f})")
        print(f"content check:      {'byte-exact' if ok else 'MISMATCH'}")
        if not ok or rss_peak > args.max_rss_mib:
            return 1
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
