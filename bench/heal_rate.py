#!/usr/bin/env python3
"""Heal benchmark: how fast a full pass verifies a healthy store, and how fast it refills a
replaced (empty) disk.

Usage: python3 bench/heal_rate.py [--mib 512] [--object-mib 16] [--disks 4]

It starts `tessera serve` (binary from $TESSERA_BIN or the default cargo target dir) on
127.0.0.1 with fresh temporary disks, writes --mib MiB of unique data, then:
1. runs `tessera admin heal` on the healthy store: every shard is read and verified
   (the scan rate);
2. stops the server, wipes the last disk, puts an empty directory in its place and restarts:
   the disk is adopted and a full pass rebuilds its shards (the rebuild rate);
3. runs `tessera admin check` and requires it to be clean, and reads every object back.
Figures are printed, never checked; the exit code is 1 if the store is not whole afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

from benchlib import binary, free_port

MiB = 1 << 20
USER, PASSWORD = "benchadmin", "benchadmin-secret"
BUCKET = "bench"


BASE = hashlib.shake_256(b"tessera-heal-bench").digest(MiB)


def obj_data(i: int, mib: int) -> bytes:
    return b"".join(f"{i}:{n}:".encode() + BASE[32:] + BASE[:32 - len(f"{i}:{n}:")] for n in range(mib))


class Server:
    def __init__(self, dirs: list[Path], env: dict) -> None:
        self.dirs, self.env, self.port, self.proc = dirs, env, free_port(), None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [binary(), "serve", "--address", f"127.0.0.1:{self.port}", "--disk-check-secs", "1",
               *map(str, self.dirs)]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                urllib.request.urlopen(self.url + "/.tessera/health/live", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def admin(self, *args: str) -> dict:
        out = subprocess.run([binary(), "admin", "--endpoint", self.url, "--json", *args],
                             env=self.env, capture_output=True, text=True, check=False)
        return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--object-mib", type=int, default=16)
    ap.add_argument("--disks", type=int, default=4)
    args = ap.parse_args()
    env = dict(os.environ, TESSERA_ROOT_USER=USER, TESSERA_ROOT_PASSWORD=PASSWORD)
    tmp = Path(tempfile.mkdtemp(prefix="tessera-heal-bench-"))
    dirs = [tmp / f"d{i}" for i in range(args.disks)]
    srv = Server(dirs, env)
    try:
        srv.start()
        s3 = boto3.client("s3", endpoint_url=srv.url, aws_access_key_id=USER, aws_secret_access_key=PASSWORD,
                          region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket=BUCKET)
        count = max(1, args.mib // args.object_mib)
        digests = {}
        for i in range(count):
            data = obj_data(i, args.object_mib)
            digests[f"o{i}"] = hashlib.sha256(data).hexdigest()
            s3.put_object(Bucket=BUCKET, Key=f"o{i}", Body=data)

        t = time.monotonic()
        scan = srv.admin("heal")
        scan_s = time.monotonic() - t
        print(f"scan pass (healthy): {scan['chunks_checked']} chunks, {scan['bytes_read'] / MiB:.0f} MiB of shards "
              f"verified in {scan_s:.2f} s = {scan['bytes_read'] / MiB / scan_s:.0f} MiB/s")

        srv.stop()
        shutil.rmtree(dirs[-1])
        dirs[-1].mkdir()
        t = time.monotonic()
        srv.start()
        while True:
            p = srv.admin("info")["heal"]["pass"]
            if p["passes_finished"] >= 1 and not p["running"]:
                break
            time.sleep(0.1)
        rebuild_s = time.monotonic() - t
        print(f"rebuild of a replaced disk: {p['shards_rewritten']} shards rewritten "
              f"({p['chunks_checked']} chunks, {p['bytes_read'] / MiB:.0f} MiB read) in {rebuild_s:.2f} s "
              f"(including the restart) = {p['chunks_checked'] / rebuild_s:.0f} chunks/s")

        check = srv.admin("check")
        ok = check["clean"]
        for key, digest in digests.items():
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            ok &= hashlib.sha256(body).hexdigest() == digest
        print(f"after rebuild: check clean={check['clean']}, all {len(digests)} objects exact={ok}")
        return 0 if ok else 1
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
