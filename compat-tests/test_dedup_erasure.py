"""On-disk behaviour with 4 data dirs (default parity 2: k=2 data + m=2 parity
shards per 1 MiB chunk): content dedup, garbage collection of unreferenced
shards, erasure-coded layout, and reads after losing any two disks' shards.

These tests look inside the data dirs, relying on the documented layout:
``DIR/.tessera/`` (format.json, metadata replica on the first m+1 disks) and
``DIR/shards/`` (one file per shard). Objects up to 128 KiB are stored inline
in the metadata, so shard-level checks use bigger objects.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError

KiB = 1024
MiB = 1024 * 1024
INLINE_LIMIT = 128 * KiB
CHUNK = 1 * MiB
K, M = 2, 2  # default for 4 disks


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def regular_files(root: Path):
    if not root.exists():
        return
    for dirpath, _dirnames, filenames in os.walk(root):
        for fn in filenames:
            p = Path(dirpath) / fn
            if p.is_file() and not p.is_symlink():
                yield p


def total_bytes(dirs) -> int:
    return sum(p.lstat().st_size for d in dirs for p in regular_files(Path(d)))


def shard_files(dirs) -> list[Path]:
    return [p for d in dirs for p in regular_files(Path(d) / "shards")]


def shard_bytes(dirs) -> int:
    return sum(p.lstat().st_size for p in shard_files(dirs))


def wait_until(predicate, timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def read_back(c, bucket, key) -> bytes:
    return c.get_object(Bucket=bucket, Key=key)["Body"].read()


# =========================================================== dedup + GC ===
def test_dedup_identical_content_stored_once(server4, s3, random_bytes, bucket_name):
    # server4 is used by this test only, so the shard dirs start (and must end) empty.
    c = s3(server4)
    c.create_bucket(Bucket=bucket_name)
    data = random_bytes(20 * MiB, "dedup-20mib")

    base = total_bytes(server4.dirs)
    c.put_object(Bucket=bucket_name, Key="A", Body=data)
    after_a = total_bytes(server4.dirs)
    assert after_a - base >= len(data), f"first copy grew the data dirs by only {after_a - base} bytes"

    c.put_object(Bucket=bucket_name, Key="B", Body=data)
    after_b = total_bytes(server4.dirs)
    growth = after_b - after_a
    assert growth < 0.05 * len(data), (
        f"storing identical 20 MiB under a second key grew the data dirs by {growth} bytes "
        f"({growth / len(data):.1%}); dedup expected"
    )

    assert sha256(read_back(c, bucket_name, "A")) == sha256(data)
    assert sha256(read_back(c, bucket_name, "B")) == sha256(data)

    c.delete_object(Bucket=bucket_name, Key="A")
    c.delete_object(Bucket=bucket_name, Key="B")
    # gc grace is 1 s; give the collector up to 20 s.
    gone = wait_until(lambda: not shard_files(server4.dirs), timeout=20)
    left = shard_files(server4.dirs)
    assert gone, f"{len(left)} shard files ({shard_bytes(server4.dirs)} bytes) left 20 s after deleting all objects"
    assert shard_bytes(server4.dirs) == 0


def test_gc_keeps_shards_still_referenced(make_server, s3, random_bytes):
    srv = make_server(4)
    c = s3(srv)
    c.create_bucket(Bucket="gc-a")
    c.create_bucket(Bucket="gc-b")
    shared = random_bytes(3 * MiB + 5, "gc-shared")
    other = random_bytes(2 * MiB, "gc-other")
    c.put_object(Bucket="gc-a", Key="first", Body=shared)
    c.put_object(Bucket="gc-b", Key="second copy", Body=shared)  # deduped, other bucket
    c.put_object(Bucket="gc-a", Key="other", Body=other)
    files_before = sorted(shard_files(srv.dirs))

    c.delete_object(Bucket="gc-a", Key="first")
    time.sleep(4)  # several gc-grace periods
    assert sha256(read_back(c, "gc-b", "second copy")) == sha256(shared)
    assert sha256(read_back(c, "gc-a", "other")) == sha256(other)
    assert sorted(shard_files(srv.dirs)) == files_before, "GC removed shards that are still referenced"

    # Survives a restart too (GC state must not be lost or over-eager at startup).
    srv.restart()
    c = s3(srv)
    time.sleep(3)
    assert sha256(read_back(c, "gc-b", "second copy")) == sha256(shared)

    c.delete_object(Bucket="gc-b", Key="second copy")
    c.delete_object(Bucket="gc-a", Key="other")
    assert wait_until(lambda: not shard_files(srv.dirs), timeout=20), "shards left after deleting everything"

    # Re-uploading the same content after GC must not point at collected shards.
    c.put_object(Bucket="gc-a", Key="again", Body=shared)
    assert sha256(read_back(c, "gc-a", "again")) == sha256(shared)
    assert shard_files(srv.dirs), "re-uploaded object has no shards"
    time.sleep(3)
    assert sha256(read_back(c, "gc-a", "again")) == sha256(shared)


# ============================================================== erasure ===
EC_OBJECTS = {
    "ec/3mib": 3 * MiB,
    "ec/5mib-plus": 5 * MiB + 333,
    "ec/200kib": 200 * KiB,
    "ec/1.5mib": 3 * MiB // 2 + 7,
    "ec/inline-1kib": 1 * KiB,
    "ec/empty": 0,
}


def sharded(objects: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in objects.items() if len(v) > INLINE_LIMIT}


@pytest.fixture(scope="module")
def erasure_layout(server_factory, tmp_path_factory, s3, random_bytes):
    """4 data dirs holding EC_OBJECTS, written once; the server is stopped afterwards."""
    srv = server_factory(tmp_path_factory.mktemp("erasure-orig"), 4)
    c = s3(srv)
    bucket = "erasure"
    c.create_bucket(Bucket=bucket)
    objects = {key: random_bytes(size, f"ec:{key}") for key, size in EC_OBJECTS.items()}
    for key, data in objects.items():
        c.put_object(Bucket=bucket, Key=key, Body=data)
    for key, data in objects.items():
        assert sha256(read_back(c, bucket, key)) == sha256(data), key
    srv.stop()
    return SimpleNamespace(dirs=list(srv.dirs), bucket=bucket, objects=objects)


def test_every_disk_holds_shards(erasure_layout):
    n_chunks = sum(math.ceil(len(d) / CHUNK) for d in sharded(erasure_layout.objects).values())
    for d in erasure_layout.dirs:
        assert (d / ".tessera" / "format.json").is_file(), f"{d} has no .tessera/format.json"
        files = shard_files([d])
        # k+m = 4 shards per chunk on 4 distinct disks: every disk holds one shard of every chunk.
        assert len(files) >= n_chunks, f"{d}/shards holds {len(files)} files, expected >= {n_chunks}"


def test_shard_volume_matches_parity(erasure_layout):
    data_bytes = sum(len(d) for d in sharded(erasure_layout.objects).values())
    files = shard_files(erasure_layout.dirs)
    stored = shard_bytes(erasure_layout.dirs)
    expansion = (K + M) / K
    assert stored >= expansion * data_bytes * 0.99, f"{stored} shard bytes for {data_bytes} data bytes"
    # Headers and shard padding are small; full replication would be 4x.
    assert stored <= expansion * data_bytes * 1.05 + 16 * KiB * len(files), (
        f"{stored} shard bytes for {data_bytes} data bytes"
    )


def test_no_plain_copy_of_any_object(erasure_layout):
    big = sharded(erasure_layout.objects)
    needles = {key: data[: 2 * MiB] for key, data in big.items()}  # whole object if < 2 MiB
    for d in erasure_layout.dirs:
        for path in regular_files(d):
            content = path.read_bytes()
            for key, data in big.items():
                assert content != data, f"{path} is a plain copy of {key}"
                assert needles[key] not in content, f"{path} contains the first {len(needles[key])} bytes of {key}"


def test_data_shards_hold_object_slices(erasure_layout):
    # Systematic code (documented layout): the payload of a data shard is a
    # slice of the object, so each object's first 64 KiB sits in some shard file.
    contents = [p.read_bytes() for p in shard_files(erasure_layout.dirs)]
    for key, data in sharded(erasure_layout.objects).items():
        assert any(data[: 64 * KiB] in blob for blob in contents), f"first 64 KiB of {key} not found in any shard"


# Each pair of disks is wiped entirely (shards, format file and any metadata
# replica): the server starts degraded on the other two and every object reads
# back byte-exact, rebuilt from parity where its data shards were lost.
@pytest.mark.parametrize(
    "lost", list(itertools.combinations(range(4), 2)), ids=lambda p: f"lose-disk{p[0]}-disk{p[1]}"
)
def test_read_after_losing_two_whole_disks(erasure_layout, lost, tmp_path, make_server, s3):
    copies = []
    for i, src in enumerate(erasure_layout.dirs):
        dst = tmp_path / f"disk{i}"
        shutil.copytree(src, dst, symlinks=True)
        copies.append(dst)
    for i in lost:
        shutil.rmtree(copies[i])
        assert not copies[i].exists()
    try:
        srv = make_server(dirs=copies)
        c = s3(srv)
        bucket = erasure_layout.bucket
        for key, data in erasure_layout.objects.items():
            got = read_back(c, bucket, key)
            assert len(got) == len(data), key
            assert sha256(got) == sha256(data), f"{key} corrupted after losing disks {lost}"
        big = erasure_layout.objects["ec/5mib-plus"]
        first, last = CHUNK - 100, 3 * CHUNK + 100
        r = c.get_object(Bucket=bucket, Key="ec/5mib-plus", Range=f"bytes={first}-{last}")
        assert r["Body"].read() == big[first : last + 1]
        srv.stop()
    finally:
        for d in copies:
            shutil.rmtree(d, ignore_errors=True)


def test_losing_more_shards_than_parity_is_an_error_not_a_truncated_body(erasure_layout, tmp_path, make_server, s3):
    """With 3 of 4 disks' shards gone no chunk can be rebuilt: GET must fail with an S3 error
    status (503) before any body byte is sent, and inline objects still read."""
    copies = []
    for i, src in enumerate(erasure_layout.dirs):
        dst = tmp_path / f"disk{i}"
        shutil.copytree(src, dst, symlinks=True)
        copies.append(dst)
    for i in (0, 1, 2):
        shutil.rmtree(copies[i] / "shards")
    srv = make_server(dirs=copies)
    c = s3(srv)
    bucket = erasure_layout.bucket
    for key, data in erasure_layout.objects.items():
        if len(data) <= INLINE_LIMIT:
            assert read_back(c, bucket, key) == data
            continue
        with pytest.raises(ClientError) as exc:
            c.get_object(Bucket=bucket, Key=key)["Body"].read()
        err = exc.value.response
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 503, (key, err)
        assert err["Error"]["Code"] == "ServiceUnavailable", (key, err)
    srv.stop()
