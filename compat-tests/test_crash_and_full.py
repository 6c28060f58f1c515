"""Crash consistency (SIGKILL during concurrent writes) and a full disk.

1. ``test_kill9_during_concurrent_operations``: 50 concurrent PUTs, DELETEs and
   multipart uploads on 4 data dirs (EC 2+2); the server is SIGKILLed while they
   run. After a restart every acknowledged write reads back byte-exact, every
   acknowledged delete is gone, nothing half-written is visible, no temp shard
   file is left, ``admin check`` finds refcounts consistent, the orphan sweep
   leaves no stray shards, and every stored chunk has exactly its 4 shards.

2. ``test_disk_full_fails_with_507_and_recovers``: one of 4 data dirs is a
   tiny tmpfs; with ``--parity 1`` (EC 3+1, write quorum 4) big PUTs fail with
   HTTP 507 ``XTesseraStorageFull`` once it is full, leave no partial shards,
   reads and inline (metadata-only) writes keep working, and freeing space by
   deleting objects (plus GC) makes big writes succeed again.

These tests rely on the documented on-disk layout: ``DIR/shards/ab/cd/<hex>.<i>``
(one file per shard) and ``DIR/.tessera/tmp`` (in-progress shard writes).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import ROOT_PASSWORD, ROOT_USER, poll

KiB = 1024
MiB = 1024 * 1024
SHARD_NAME = re.compile(r"^([0-9a-f]{64})\.(\d+)$")


# ------------------------------------------------------------------ helpers ---
def admin(server, *args: str, timeout: float = 120) -> tuple[int, dict]:
    """Runs ``tessera admin --endpoint URL --json ARGS``; returns (exit code, parsed JSON)."""
    env = dict(os.environ)
    env["TESSERA_ROOT_USER"] = ROOT_USER
    env["TESSERA_ROOT_PASSWORD"] = ROOT_PASSWORD
    cmd = [str(server.binary), "admin", "--endpoint", server.url, "--json", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"`{' '.join(cmd[1:])}` printed no JSON (exit {proc.returncode})\n"
            f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}",
            pytrace=False,
        )
    return proc.returncode, doc


def files_under(root: Path) -> list[Path]:
    out = []
    if root.exists():
        for dirpath, _dirs, names in os.walk(root):
            out.extend(Path(dirpath) / n for n in names)
    return out


def shard_inventory(dirs) -> tuple[dict[str, list[tuple[int, int]]], list[Path]]:
    """{chunk hex: [(disk index, shard index), ...]} of every shard file, plus non-shard files."""
    chunks: dict[str, list[tuple[int, int]]] = defaultdict(list)
    strays = []
    for di, d in enumerate(dirs):
        for p in files_under(Path(d) / "shards"):
            m = SHARD_NAME.match(p.name)
            if m is None:
                strays.append(p)
            else:
                chunks[m.group(1)].append((di, int(m.group(2))))
    return chunks, strays


def shard_count(dirs) -> int:
    chunks, strays = shard_inventory(dirs)
    return sum(len(v) for v in chunks.values()) + len(strays)


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def http_status(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def list_keys(c, bucket) -> dict[str, int]:
    keys = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            keys[o["Key"]] = o["Size"]
    return keys


def describe(data: bytes | None) -> str:
    return "absent" if data is None else f"{len(data)} bytes"


# ================================================= 1. kill -9 under load ===
PUT_SIZES = [
    1 * KiB,
    100 * KiB,
    128 * KiB,  # the largest inline object
    128 * KiB + 1,  # the smallest chunked one
    300 * KiB,
    1 * MiB,
    1 * MiB + 512 * KiB,
    2 * MiB + 123,
    3 * MiB,
    4 * MiB,
]
VICTIM_SIZES = [1 * KiB, 300 * KiB, 2 * MiB + 512 * KiB]
MPU_PARTS = [5 * MiB, 5 * MiB, 100 * KiB + 7]


def test_kill9_during_concurrent_operations(make_server, s3, random_bytes, new_bucket_name):
    srv = make_server(4)  # EC 2+2, write quorum 3
    bucket = new_bucket_name("crash")
    setup = s3(srv)
    setup.create_bucket(Bucket=bucket)

    # ---- pre-existing objects that the workload deletes
    victims: dict[str, bytes] = {}
    for i in range(10):
        size = VICTIM_SIZES[i % len(VICTIM_SIZES)]
        key = f"victim/{i:02d}-{size}"
        victims[key] = random_bytes(size, f"victim-{i}")
        setup.put_object(Bucket=bucket, Key=key, Body=victims[key])

    # ---- the 50 operations: 30 PUTs, 10 DELETEs, 10 multipart uploads
    ops: list[tuple[str, str, object]] = []
    mpus: list[tuple[str, str, object]] = []
    intended: dict[str, bytes] = {}  # every key a PUT / multipart upload tries to create
    for i in range(30):
        size = PUT_SIZES[i % len(PUT_SIZES)]
        key = f"put/{i:02d}-{size}"
        intended[key] = random_bytes(size, f"put-{i}")
        ops.append(("put", key, intended[key]))
    for key in victims:
        ops.append(("delete", key, None))
    for i in range(10):
        key = f"mpu/{i:02d}"
        parts = [random_bytes(n, f"mpu-{i}-part-{p}") for p, n in enumerate(MPU_PARTS, 1)]
        intended[key] = b"".join(parts)
        mpus.append(("mpu", key, parts))
    # Random order, but the (slow) multipart uploads start early, among the first 25,
    # so that they run alongside the single PUTs and DELETEs.
    order_seed = random.randrange(1 << 30)
    rng = random.Random(order_seed)
    rng.shuffle(ops)
    for op in mpus:
        ops.insert(rng.randrange(0, 25), op)

    # One attempt per call, short timeouts: after the kill every worker fails fast.
    c = s3(srv, connect_timeout=2, read_timeout=30, max_pool_connections=16)
    lock = threading.Lock()
    acked: dict[str, str] = {}  # key -> op kind, only when the final call returned success
    failures: dict[str, str] = {}
    kill_at = len(ops) // 3
    enough_acked = threading.Event()

    def run(op):
        kind, key, payload = op
        try:
            if kind == "put":
                c.put_object(Bucket=bucket, Key=key, Body=payload)
            elif kind == "delete":
                c.delete_object(Bucket=bucket, Key=key)
            else:
                up = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
                done = []
                for n, part in enumerate(payload, 1):
                    r = c.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=part)
                    done.append({"ETag": r["ETag"], "PartNumber": n})
                c.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": done}
                )
        except Exception as exc:  # anything at all: not acknowledged
            with lock:
                failures[key] = f"{type(exc).__name__}: {exc}"[:200]
            return
        with lock:
            acked[key] = kind
            # About a third acknowledged, including a multipart upload (the slowest op),
            # so that every kind of operation is usually caught both done and in flight.
            if len(acked) >= kill_at and Counter(acked.values())["mpu"] >= 1:
                enough_acked.set()

    delay = random.uniform(0.0, 0.25)
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=12)
    try:
        futures = [pool.submit(run, op) for op in ops]
        # Kill once about a third is acknowledged (or everything ended, or a minute passed).
        while not enough_acked.wait(0.05):
            if all(f.done() for f in futures) or time.monotonic() - started > 60:
                break
        time.sleep(delay)
        with lock:
            acked_before_kill = len(acked)
        srv.kill()
        killed_after = time.monotonic() - started
        tmp_at_kill = sum(len(files_under(Path(d) / ".tessera" / "tmp")) for d in srv.dirs)
        wait(futures, timeout=90)
    finally:
        pool.shutdown(wait=True)  # no worker may touch the restarted server
    assert all(f.done() for f in futures)

    by_kind = Counter(kind for kind, _, _ in ops)
    acked_kind = Counter(acked.values())
    print(
        f"\nkill -9 after {killed_after:.2f}s (order seed {order_seed}, extra delay {delay:.3f}s, "
        f"{acked_before_kill} acked at kill time); acknowledged: "
        + ", ".join(f"{k} {acked_kind[k]}/{by_kind[k]}" for k in ("put", "delete", "mpu"))
        + f"; not acknowledged: {len(failures)}; {tmp_at_kill} temp shard files at the kill"
    )
    assert acked, f"no operation was acknowledged before the kill; failures: {list(failures.items())[:5]}"
    if not failures:
        print("note: every operation finished before the kill; crash recovery is still verified")

    # ---- restart: temp files of interrupted shard writes are gone at once
    srv.start()
    leftovers = [p for d in srv.dirs for p in files_under(Path(d) / ".tessera" / "tmp")]
    assert not leftovers, f"temp files left after restart: {leftovers[:10]}"

    v = s3(srv)
    listed = list_keys(v, bucket)

    def fetch(key: str) -> bytes | None:
        try:
            return v.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            assert error_code(exc) == "NoSuchKey", f"GET {key}: unexpected error {exc.response.get('Error')}"
            return None

    # Every listed key is a surviving victim or a fully written new object, nothing else.
    unexpected = sorted(set(listed) - set(victims) - set(intended))
    assert not unexpected, f"keys that no operation created: {unexpected}"
    contents = {key: fetch(key) for key in sorted(set(victims) | set(intended))}
    committed_unacked = []
    for key, got in contents.items():
        want = victims.get(key, intended.get(key))
        if key in listed:
            assert got is not None, f"{key} is listed but GET says NoSuchKey"
            assert listed[key] == len(want), f"{key} listed with size {listed[key]}, expected {len(want)}"
            assert got == want, f"{key}: content differs after the crash (got {describe(got)}, want {len(want)})"
        else:
            assert got is None, f"{key} is readable ({describe(got)}) but not listed"
            try:
                v.head_object(Bucket=bucket, Key=key)
                pytest.fail(f"HEAD {key} succeeds though the key is not listed")
            except ClientError as exc:
                assert http_status(exc) == 404, f"HEAD {key}: {exc.response.get('Error')}"
        kind = acked.get(key)
        if kind in ("put", "mpu"):
            assert got == want, f"acknowledged {kind} {key} lost or damaged by the crash (got {describe(got)})"
        elif kind == "delete":
            assert got is None, f"acknowledged DELETE of {key} undone by the crash"
        elif key in intended and got is not None:
            committed_unacked.append(key)
    print(
        f"after restart: {len(listed)} keys listed; {len(committed_unacked)} unacknowledged writes "
        f"turned out committed"
    )

    log_since_restart = srv.log_path.read_text(errors="replace").rsplit("===== start", 1)[-1]
    log_since_restart = re.sub(r"\x1b\[[0-9;]*m", "", log_since_restart)
    swept = re.findall(r"removed orphan shards of uncommitted writes shards=(\d+)", log_since_restart)
    print(f"start-up orphan sweep so far: {swept or 'nothing removed'}")

    # ---- consistency check with repair, then a read-only one that must find nothing
    rc, report = admin(srv, "check")
    assert report["refcounts"]["mismatched"] == [], f"refcount mismatch after crash: {report['refcounts']}"
    assert rc == 0, f"admin check (repair) exit {rc}: {json.dumps(report, indent=1)}"
    print(
        f"check (repair): clean={report['clean']} orphans removed={report['shards']['orphan_shards_removed']} "
        f"refcounts={report['refcounts']}"
    )
    rc, report = admin(srv, "check", "--no-repair")
    shards = report["shards"]
    gc_pending = report["refcounts"]["chunks_recorded"] - report["refcounts"]["chunks_referenced"]
    assert report["clean"] is True and rc == 0, (
        f"second check not clean (exit {rc}; {gc_pending} unreferenced chunks were still waiting for GC): "
        f"{json.dumps(report, indent=1)}"
    )
    assert shards["orphan_shards_removed"] == 0 and shards["shards_missing"] == 0, shards
    assert shards["chunks_unrecoverable"] == [], shards

    # ---- on disk: every stored chunk has its 4 shards (one per disk), nothing else.
    # Chunks of deleted objects may still be collected by GC: wait for disk and metadata to agree.
    def settled():
        _, info = admin(srv, "info")
        inventory, strays = shard_inventory(srv.dirs)
        n_files = sum(len(x) for x in inventory.values()) + len(strays)
        state = (info["usage"]["chunks"], n_files, inventory, strays)
        return state if n_files == 4 * info["usage"]["chunks"] and not strays else None

    state = poll(settled, timeout=15, interval=0.5)
    if state is None:
        _, info = admin(srv, "info")
        inventory, strays = shard_inventory(srv.dirs)
        pytest.fail(
            f"shard files on disk ({sum(len(x) for x in inventory.values())} + {len(strays)} strays) != "
            f"4 x usage.chunks ({info['usage']['chunks']}) after 15s; usage={info['usage']}; strays={strays[:5]}"
        )
    n_chunks, n_files, inventory, _ = state
    assert len(inventory) == n_chunks, f"{len(inventory)} distinct chunks on disk, usage says {n_chunks}"
    bad = {
        h: sorted(s)
        for h, s in inventory.items()
        if sorted(i for _, i in s) != [0, 1, 2, 3] or len({d for d, _ in s}) != 4
    }
    assert not bad, f"chunks without exactly shards 0..3 on 4 distinct disks: {list(bad.items())[:5]}"
    print(f"on disk: {n_chunks} chunks, {n_files} shard files")

    # Garbage of objects deleted before the crash is collected after it, too: once GC
    # is done, only chunks referenced by an object version or an uploaded part remain.
    def gc_done():
        _, r = admin(srv, "check", "--no-repair")
        rc_ = r["refcounts"]
        return rc_ if rc_["chunks_recorded"] == rc_["chunks_referenced"] else None

    refs = poll(gc_done, timeout=15, interval=0.5)
    assert refs is not None, (
        f"unreferenced chunks never collected after the crash: {admin(srv, 'check', '--no-repair')[1]['refcounts']}"
    )


# ================================================= 2. disk full (tmpfs) ===
def test_disk_full_fails_with_507_and_recovers(tmp_path, make_server, s3, random_bytes, new_bucket_name):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    dirs = [tmp_path / "disks" / f"d{i}" for i in range(4)]
    for d in dirs:
        d.mkdir(parents=True)
    small = dirs[3]
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot mount a tmpfs: {exc}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (exit {mounted.returncode}): {mounted.stderr.strip()}")

    srv = None
    try:
        # EC 3+1: write quorum 4, so one full disk fails writes; metadata on dirs 0 and 1 only.
        srv = make_server(4, dirs=dirs, parity=1)
        c = s3(srv)
        bucket = new_bucket_name("full")
        c.create_bucket(Bucket=bucket)

        stored: dict[str, bytes] = {}
        failed_key, failure = None, None
        for i in range(60):
            key = f"big/{i:02d}"
            data = random_bytes(3 * MiB, f"full-{i}")
            try:
                c.put_object(Bucket=bucket, Key=key, Body=data)
            except ClientError as exc:
                failed_key, failure = key, exc
                break
            stored[key] = data
        assert failure is not None, "60 PUTs of 3 MiB fit on an 8 MiB disk"
        print(f"\nPUT #{len(stored) + 1} failed after {len(stored)} objects: {failure.response.get('Error')}")
        assert len(stored) < 40, f"the 8 MiB disk took {len(stored)} objects of 3 MiB before a PUT failed"
        assert http_status(failure) == 507 and error_code(failure) == "XTesseraStorageFull", (
            f"expected HTTP 507 XTesseraStorageFull, got HTTP {http_status(failure)} "
            f"{failure.response.get('Error')}"
        )

        # The failed object does not exist.
        assert set(list_keys(c, bucket)) == set(stored), "listing after the failed PUT"
        with pytest.raises(ClientError) as info:
            c.head_object(Bucket=bucket, Key=failed_key)
        assert http_status(info.value) == 404, info.value.response

        # Reads keep working.
        for key, data in stored.items():
            assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data, f"{key} damaged"

        # Inline objects live in the metadata (dirs 0 and 1): still writable.
        tiny = random_bytes(1 * KiB, "tiny")
        c.put_object(Bucket=bucket, Key="tiny", Body=tiny)
        assert c.get_object(Bucket=bucket, Key="tiny")["Body"].read() == tiny

        # The failed write left no partial shards and no refcount damage.
        rc, report = admin(srv, "check", "--no-repair")
        print(f"check --no-repair: exit {rc} clean={report['clean']} shards={report['shards']}")
        assert report["shards"]["orphan_shards_removed"] == 0, f"failed PUT left orphan shards: {report['shards']}"
        assert report["refcounts"]["mismatched"] == [], report["refcounts"]
        assert report["shards"]["shards_missing"] == 0 and report["shards"]["chunks_unrecoverable"] == [], report
        assert rc == 0 and report["clean"] is True, f"check exit {rc}: {json.dumps(report, indent=1)}"
        _, inf = admin(srv, "info")
        assert inf["usage"]["chunks"] == 3 * len(stored), inf["usage"]
        assert shard_count(srv.dirs) == 4 * inf["usage"]["chunks"], "shard files besides the stored chunks'"
        print(f"disks: {[(d['index'], d['state'], d['space']) for d in inf['disks']]}")

        # Free space: delete half the big objects; GC (grace 1 s) removes their shards.
        victims = sorted(stored)[: max(3, len(stored) // 2)]
        for key in victims:
            c.delete_object(Bucket=bucket, Key=key)
            del stored[key]
        want_chunks = 3 * len(stored)
        collected = poll(lambda: admin(srv, "info")[1]["usage"]["chunks"] == want_chunks
                         and shard_count(srv.dirs) == 4 * want_chunks, timeout=20, interval=0.5)
        assert collected, (
            f"deleted objects' chunks not collected after 20s: usage={admin(srv, 'info')[1]['usage']}, "
            f"{shard_count(srv.dirs)} shard files, want {4 * want_chunks}"
        )

        again = random_bytes(3 * MiB, "full-again")
        c.put_object(Bucket=bucket, Key="big/again", Body=again)
        assert c.get_object(Bucket=bucket, Key="big/again")["Body"].read() == again
        for key, data in stored.items():
            assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data, f"{key} damaged"
    finally:
        if srv is not None:
            srv.stop()
        r = subprocess.run(["umount", str(small)], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(small)], capture_output=True, text=True, timeout=30)


def test_check_during_garbage_collection_reports_no_false_orphans(make_server, s3, random_bytes, new_bucket_name):
    """Regression: a check racing GC once counted the shards GC had just deleted as orphans.
    Checks run back to back while GC collects the chunks of deleted objects must stay clean."""
    srv = make_server(4)
    c = s3(srv)
    bucket = new_bucket_name("gcrace")
    c.create_bucket(Bucket=bucket)
    keys = [f"big-{i}" for i in range(24)]
    for i, key in enumerate(keys):
        c.put_object(Bucket=bucket, Key=key, Body=random_bytes(2 * MiB + 1000, seed=f"gc-{i}"))
    for key in keys:
        c.delete_object(Bucket=bucket, Key=key)
    runs = 0
    deadline = time.monotonic() + 4.0  # GC grace is 1 s: collection happens inside this window
    while time.monotonic() < deadline:
        rc, report = admin(srv, "check", "--no-repair")
        runs += 1
        shards = report["shards"]
        assert shards["orphan_shards_removed"] == 0, (runs, report)
        assert shards["chunks_unrecoverable"] == [], (runs, report)
        assert shards["shards_missing"] == 0 and shards["shards_corrupt"] == 0, (runs, report)
    assert runs >= 3
    # And GC did collect everything meanwhile (or soon after).
    poll(lambda: shard_count(srv.dirs) == 0, timeout=10)
