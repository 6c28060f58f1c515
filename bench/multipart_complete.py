#!/usr/bin/env python3
"""Multipart completion benchmark: how long CompleteMultipartUpload takes as the object grows.

Usage: python3 bench/multipart_complete.py [--sizes-mib 64,256,1024] [--part-mib 16]
                                           [--threads 4] [--disks 4] [--repeat 1] [--verify largest|all]

It starts `tessera serve` (binary from $TESSERA_BIN or the default cargo target dir) on
127.0.0.1 with fresh temporary disks, and for every size uploads one multipart object of
unique data (parts of --part-mib uploaded by --threads threads), timing the part uploads and,
separately, only the CompleteMultipartUpload call. Completion writes one manifest that
references the parts' chunks, so its time should not depend on the object size: the table
ends with the ratio complete(largest)/complete(smallest). Timings are printed, never checked.

The content of the largest object (or of every object with --verify all) is downloaded as a
stream and compared by SHA-256 with the data sent; the exit code is 1 on any mismatch or error.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

from benchlib import binary, free_port

MiB = 1 << 20
USER, PASSWORD = "benchadmin", "benchadmin-secret"
BUCKET = "bench"


BASE_BLOCK = hashlib.shake_256(b"tessera-multipart-bench").digest(MiB)


def block(obj: int, n: int) -> bytes:
    """MiB number n of object obj: a fixed random block with (obj, n) stamped in front, so
    every chunk on the server is new data (no dedup shortcut) while generation stays cheap."""
    return obj.to_bytes(8, "little") + n.to_bytes(8, "little") + BASE_BLOCK[16:]


def part_data(obj: int, part: int, part_mib: int, size_mib: int) -> bytes:
    first = part * part_mib
    return b"".join(block(obj, n) for n in range(first, min(first + part_mib, size_mib)))


def expected_sha256(obj: int, size_mib: int) -> str:
    h = hashlib.sha256()
    for n in range(size_mib):
        h.update(block(obj, n))
    return h.hexdigest()


def parse_sizes(text: str) -> list[int]:
    sizes = [int(x) for x in text.replace(" ", ",").split(",") if x]
    if not sizes or any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive integers (MiB)")
    return sizes


def wait_ready(proc: subprocess.Popen, url: str, log_path: Path) -> bool:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/.tessera/health/live", timeout=1)
            return True
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                print(log_path.read_text(), file=sys.stderr)
                return False
            time.sleep(0.1)


def upload(s3, pool, key: str, obj: int, size_mib: int, part_mib: int) -> tuple[float, float, str, int]:
    """Upload one multipart object; returns (upload seconds, complete seconds, ETag, parts)."""
    nparts = -(-size_mib // part_mib)
    t0 = time.perf_counter()
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]

    def send(i: int) -> dict:
        body = part_data(obj, i, part_mib, size_mib)
        r = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=i + 1, Body=body)
        return {"PartNumber": i + 1, "ETag": r["ETag"]}

    parts = list(pool.map(send, range(nparts)))
    upload_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    complete_s = time.perf_counter() - t0
    return upload_s, complete_s, r["ETag"], nparts


def verify(s3, key: str, obj: int, size_mib: int, nparts: int) -> bool:
    resp = s3.get_object(Bucket=BUCKET, Key=key)
    got = hashlib.sha256()
    n = 0
    for piece in resp["Body"].iter_chunks(4 * MiB):
        got.update(piece)
        n += len(piece)
    want = expected_sha256(obj, size_mib)
    ok = n == size_mib * MiB and got.hexdigest() == want and resp["ETag"].endswith(f'-{nparts}"')
    print(f"content check {key}: {n} bytes, sha256 {got.hexdigest()[:16]}..., "
          f"ETag {resp['ETag']}: {'byte-exact' if ok else 'MISMATCH (expected sha256 ' + want[:16] + '...)'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes-mib", type=parse_sizes, default=[64, 256, 1024],
                    help="object sizes in MiB, comma-separated (default 64,256,1024)")
    ap.add_argument("--part-mib", type=int, default=16, help="part size in MiB (default 16)")
    ap.add_argument("--threads", type=int, default=4, help="parallel part uploads (default 4)")
    ap.add_argument("--disks", type=int, default=4, help="data dirs of the server (default 4)")
    ap.add_argument("--repeat", type=int, default=1, help="objects per size; the median complete time is used")
    ap.add_argument("--verify", choices=["largest", "all"], default="largest",
                    help="which objects to download and compare (default largest)")
    args = ap.parse_args()
    if args.part_mib < 5 and any(s > args.part_mib for s in args.sizes_mib):
        ap.error("--part-mib must be >= 5 (S3's minimum size of a non-last part)")

    work = Path(tempfile.mkdtemp(prefix="tessera-bench-mpu-"))
    port = free_port()
    disks = [str(work / f"disk{i}") for i in range(args.disks)]
    env = dict(os.environ, TESSERA_ROOT_USER=USER, TESSERA_ROOT_PASSWORD=PASSWORD)
    log_path = work / "server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [binary(), "serve", "--address", f"127.0.0.1:{port}", *disks],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_ready(proc, url, log_path):
            print("server did not start", file=sys.stderr)
            return 1
        s3 = boto3.client(
            "s3", endpoint_url=url, aws_access_key_id=USER, aws_secret_access_key=PASSWORD,
            region_name="us-east-1",
            config=Config(
                signature_version="s3v4", s3={"addressing_style": "path"},
                retries={"max_attempts": 1, "mode": "standard"},
                max_pool_connections=max(10, args.threads + 2), read_timeout=600,
                # No client-side CRC32 per part: keeps the client's CPU use (2-core boxes) down.
                request_checksum_calculation="when_required",
            ),
        )
        s3.create_bucket(Bucket=BUCKET)

        rows = []  # (size_mib, parts, upload_s list, complete_s list, keys)
        obj = 0
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            for size_mib in args.sizes_mib:
                ups, comps, keys = [], [], []
                nparts = 0
                for r in range(args.repeat):
                    key = f"mpu-{size_mib}mib-{r}"
                    up_s, comp_s, _etag, nparts = upload(s3, pool, key, obj, size_mib, args.part_mib)
                    ups.append(up_s)
                    comps.append(comp_s)
                    keys.append((key, obj))
                    obj += 1
                rows.append((size_mib, nparts, ups, comps, keys))

        print(f"\nmultipart uploads: parts of {args.part_mib} MiB, {args.threads} upload threads, "
              f"{args.disks} disk(s), {args.repeat} object(s) per size")
        print(f"{'size MiB':>9} {'parts':>6} {'upload s':>9} {'MiB/s':>8} {'complete ms':>12}")
        for size_mib, nparts, ups, comps, _keys in rows:
            up = statistics.median(ups)
            print(f"{size_mib:>9} {nparts:>6} {up:>9.2f} {size_mib / up:>8.1f} {statistics.median(comps) * 1000:>12.1f}")
        smallest = min(rows, key=lambda row: row[0])
        largest = max(rows, key=lambda row: row[0])
        if largest[0] != smallest[0]:
            ratio = statistics.median(largest[3]) / statistics.median(smallest[3])
            print(f"complete({largest[0]} MiB) / complete({smallest[0]} MiB) = {ratio:.2f} "
                  f"(object {largest[0] / smallest[0]:.0f}x larger; ~1 means independent of size)")

        to_check = [k for row in rows for k in row[4]] if args.verify == "all" else largest[4][:1]
        sizes = {key: (row[0], row[1]) for row in rows for key, _ in row[4]}
        ok = True
        for key, o in to_check:
            size_mib, nparts = sizes[key]
            ok = verify(s3, key, o, size_mib, nparts) and ok
        return 0 if ok else 1
    except Exception as exc:  # any S3 error is a failed run
        print(f"error: {exc!r}", file=sys.stderr)
        print(log_path.read_text()[-4000:], file=sys.stderr)
        return 1
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
