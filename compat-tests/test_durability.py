"""Durability with 4 data dirs (EC 2+2): whole disks lost and replaced, bit rot,
loss of the primary metadata replica, writes while a disk is offline, and the
admin API (``tessera admin info|heal|check``) that reports and repairs all that.

Layout relied on (documented): objects up to 128 KiB are inline in the metadata;
bigger ones are cut in 1 MiB chunks, each stored as 4 shard files (one per dir)
at ``DIR/shards/ab/cd/<sha256-hex>.<index>`` (index 0..1 data, 2..3 parity);
metadata is mirrored in ``DIR/.tessera/meta`` on the first 3 dirs; corrupt
shards are moved to ``DIR/.tessera/quarantine/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import ROOT_PASSWORD, ROOT_USER, poll, tessera_binary

KiB = 1024
MiB = 1024 * 1024
NDISKS = 4
K, M = 2, 2
DISK_CHECK = ["--disk-check-secs", "1"]
SHARD_RE = re.compile(r"^([0-9a-f]{64})\.(\d+)$")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


# ================================================================ helpers ===
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def admin(srv, *args: str, user: str = ROOT_USER, password: str = ROOT_PASSWORD, timeout: float = 90):
    """Runs ``tessera admin --endpoint URL ARGS`` and returns the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["TESSERA_ROOT_USER"] = user
    env["TESSERA_ROOT_PASSWORD"] = password
    cmd = [str(tessera_binary()), "admin", "--endpoint", srv.url, *args]
    try:
        return subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`{' '.join(cmd)}` timed out after {timeout}s\n{exc.stderr}\n{srv.log_tail()}", pytrace=False)


def admin_json(srv, *args: str, expect_rc: int | None = 0, timeout: float = 90) -> tuple[int, dict]:
    proc = admin(srv, "--json", *args, timeout=timeout)
    where = f"`tessera admin --json {' '.join(args)}` exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    if expect_rc is not None:
        assert proc.returncode == expect_rc, where
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"admin output is not JSON: {where}", pytrace=False)
    return proc.returncode, doc


def info(srv) -> dict:
    return admin_json(srv, "info")[1]


def disk_states(doc: dict) -> list[str]:
    return [d["state"] for d in sorted(doc["disks"], key=lambda d: d["index"])]


def heal(srv) -> dict:
    """``admin heal`` (waits for the pass to end); must exit 0. Returns info afterwards."""
    proc = admin(srv, "heal", timeout=120)
    assert proc.returncode == 0, f"admin heal exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return info(srv)


def check_clean(srv) -> dict:
    proc = admin(srv, "check", "--json", timeout=120)  # --json after the subcommand works too
    rc = proc.returncode
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"admin check --json exit {rc}, not JSON:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    assert rc == 0 and doc["clean"] is True, f"admin check exit {rc}: {json.dumps(doc, indent=1)}"
    assert doc["refcounts"]["mismatched"] == [], doc
    assert doc["shards"]["chunks_unrecoverable"] == [], doc
    return doc


def info_when(srv, condition):
    """info(srv) if it satisfies condition, else None (for poll)."""
    doc = info(srv)
    return doc if condition(doc) else None


def log_text(srv) -> str:
    return ANSI_RE.sub("", srv.log_path.read_text(errors="replace"))


def log_of_current_start(srv) -> str:
    """Server log since the latest ``start`` (conftest writes a marker per start)."""
    text = log_text(srv)
    marker = f"===== start #{srv.starts}:"
    assert marker in text, f"no start marker {marker!r} in {srv.log_path}"
    return text.split(marker, 1)[1]


def shard_inventory(dirs) -> dict[int, dict[tuple[str, int], Path]]:
    """disk index -> {(chunk hex, shard index): path} for every shard file under DIR/shards."""
    inv: dict[int, dict[tuple[str, int], Path]] = {}
    for i, d in enumerate(dirs):
        inv[i] = {}
        root = Path(d) / "shards"
        if not root.exists():
            continue
        for dirpath, _dirnames, filenames in os.walk(root):
            for fn in filenames:
                m = SHARD_RE.match(fn)
                assert m, f"unexpected file in the shard tree: {Path(dirpath) / fn}"
                inv[i][(m.group(1), int(m.group(2)))] = Path(dirpath) / fn
    return inv


def chunk_hashes(inv) -> set[str]:
    return {h for shards in inv.values() for (h, _idx) in shards}


def assert_complete_layout(inv, expected_chunks: set[str]) -> None:
    """Every chunk has exactly K+M shard files, indexes 0..K+M-1, one on every disk."""
    assert chunk_hashes(inv) == expected_chunks, (
        f"chunks on disk differ from the expected ones: missing {sorted(expected_chunks - chunk_hashes(inv))[:5]}, "
        f"unexpected {sorted(chunk_hashes(inv) - expected_chunks)[:5]}"
    )
    for disk, shards in inv.items():
        hashes = [h for (h, _idx) in shards]
        assert sorted(hashes) == sorted(expected_chunks), (
            f"disk {disk} holds {len(hashes)} shard files for {len(set(hashes))} chunks; "
            f"expected exactly one shard of each of the {len(expected_chunks)} chunks; "
            f"missing: {sorted(expected_chunks - set(hashes))[:5]}"
        )
    for h in expected_chunks:
        indexes = sorted(idx for shards in inv.values() for (hh, idx) in shards if hh == h)
        assert indexes == list(range(K + M)), f"chunk {h}: shard indexes {indexes} across the disks"


def quarantined(dirs) -> list[Path]:
    out = []
    for d in dirs:
        q = Path(d) / ".tessera" / "quarantine"
        if q.exists():
            out += [p for p in q.rglob("*") if p.is_file()]
    return out


# ----------------------------------------------------------- object sets ---
MIXED_SIZES = {
    "inline/1kib": 1 * KiB,
    "inline/100kib": 100 * KiB,
    "one-chunk/300kib": 300 * KiB,
    "multi/3.5mib": 3 * MiB + 512 * KiB,
}
MULTIPART_PARTS = (5 * MiB, 1 * MiB)


def expected_chunk_count() -> int:
    """1 MiB chunks of the mixed set (multipart parts are chunked per part)."""
    n = sum(-(-size // MiB) for size in MIXED_SIZES.values() if size > 128 * KiB)
    return n + sum(-(-size // MiB) for size in MULTIPART_PARTS)


def write_mixed(c, bucket: str, tag: str, random_bytes) -> dict[str, bytes]:
    """Writes inline, single-chunk, multi-chunk and a 2-part multipart object; returns key -> bytes."""
    objects: dict[str, bytes] = {}
    for key, size in MIXED_SIZES.items():
        data = random_bytes(size, f"{tag}:{key}")
        c.put_object(Bucket=bucket, Key=key, Body=data)
        objects[key] = data
    key = "multipart/6mib"
    parts = [random_bytes(size, f"{tag}:{key}:{n}") for n, size in enumerate(MULTIPART_PARTS, 1)]
    upload = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags = []
    for n, part in enumerate(parts, 1):
        etags.append(c.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=part)["ETag"])
    c.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    objects[key] = b"".join(parts)
    return objects


def verify_bucket(c, bucket: str, objects: dict[str, bytes], context: str = "") -> None:
    """Every object reads back byte-exact and the listing shows exactly these keys."""
    listed = []
    token = None
    while True:
        kw = {"Bucket": bucket, **({"ContinuationToken": token} if token else {})}
        page = c.list_objects_v2(**kw)
        listed += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            break
        token = page["NextContinuationToken"]
    assert sorted(listed) == sorted((k, len(v)) for k, v in objects.items()), f"{context}: listing of {bucket}"
    for key, data in objects.items():
        got = c.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert len(got) == len(data), f"{context}: {bucket}/{key}: {len(got)} bytes, expected {len(data)}"
        assert sha256(got) == sha256(data), f"{context}: {bucket}/{key} content differs"


def verify_all(c, contents: dict[str, dict[str, bytes]], context: str = "") -> None:
    names = {b["Name"] for b in c.list_buckets()["Buckets"]}
    assert names == set(contents), f"{context}: buckets {sorted(names)}, expected {sorted(contents)}"
    for bucket, objects in contents.items():
        verify_bucket(c, bucket, objects, context)


# ================================================================= tests ===
def test_wipe_two_disks_read_degraded_replace_and_heal(make_server, s3, random_bytes, new_bucket_name):
    srv = make_server(NDISKS, extra_args=DISK_CHECK)
    c = s3(srv)
    b1, b2 = new_bucket_name("wipe-mixed"), new_bucket_name("wipe-small")
    c.create_bucket(Bucket=b1)
    c.create_bucket(Bucket=b2)
    contents = {b1: write_mixed(c, b1, "wipe", random_bytes), b2: {}}
    contents[b2]["note.txt"] = random_bytes(2 * KiB, "wipe-note")
    c.put_object(Bucket=b2, Key="note.txt", Body=contents[b2]["note.txt"])
    verify_all(c, contents, "before the wipe")
    srv.stop()

    before = shard_inventory(srv.dirs)
    chunks = chunk_hashes(before)
    assert len(chunks) == expected_chunk_count(), f"{len(chunks)} chunks on disk"
    assert_complete_layout(before, chunks)

    lost = (0, 2)  # disk 0 holds the primary metadata replica, disk 2 another one
    for i in lost:
        shutil.rmtree(srv.dirs[i])
    srv.start()
    log = log_of_current_start(srv)
    assert "DISK OFFLINE" in log, "starting with two dirs missing should log DISK OFFLINE"
    doc = info(srv)
    states = disk_states(doc)
    assert [states[i] for i in lost] == ["offline", "offline"], states
    assert [states[i] for i in (1, 3)] == ["online", "online"], states
    c = s3(srv)
    verify_all(c, contents, "degraded on 2 of 4 disks")

    # Replace both lost disks with empty dirs while the server runs.
    for i in lost:
        srv.dirs[i].mkdir()
    doc = poll(lambda: info_when(srv, lambda d: disk_states(d) == ["online"] * NDISKS), timeout=20)
    assert doc, f"replacement disks not online within 20 s: {disk_states(info(srv))}"
    assert "adopted an empty directory" in log_of_current_start(srv)
    for i in lost:
        assert (srv.dirs[i] / ".tessera" / "format.json").is_file(), f"adopted disk {i} has no format.json"

    doc = heal(srv)
    assert doc["heal"]["pass"]["passes_finished"] >= 1, doc["heal"]
    assert doc["heal"]["pass"]["chunks_unrecoverable"] == [], doc["heal"]
    assert doc["counters"]["shards_healed"] >= len(lost) * len(chunks), doc["counters"]
    check_clean(srv)

    after = shard_inventory(srv.dirs)
    assert_complete_layout(after, chunks)
    for i in (1, 3):
        assert set(after[i]) == set(before[i]), f"healthy disk {i}'s shards changed during the heal"
    for i in lost:
        assert set(after[i]) == set(before[i]), f"rebuilt disk {i} holds other shard indexes than before"

    # A write after the replacement must reach the rebuilt metadata replicas too.
    contents[b2]["after-replace"] = random_bytes(200 * KiB, "wipe-after")
    c.put_object(Bucket=b2, Key="after-replace", Body=contents[b2]["after-replace"])
    verify_all(c, contents, "after replacement and heal")

    srv.restart()
    log = log_of_current_start(srv)
    assert "DISK OFFLINE" not in log, "all disks are back: no disk may start offline"
    # The replicas on the adopted disks were rebuilt while running, so none is behind now.
    assert "metadata replica rejoined while running" in log_text(srv)
    assert "metadata replica is behind; rebuilding it" not in log, log[-3000:]
    assert disk_states(info(srv)) == ["online"] * NDISKS
    verify_all(s3(srv), contents, "after restart with the replaced disks")
    check_clean(srv)


def test_bit_rot_is_detected_quarantined_and_healed(make_server, s3, random_bytes, new_bucket_name):
    srv = make_server(NDISKS)
    c = s3(srv)
    bucket = new_bucket_name("bitrot")
    c.create_bucket(Bucket=bucket)
    contents = {bucket: write_mixed(c, bucket, "bitrot", random_bytes)}
    verify_all(c, contents, "before the damage")
    srv.stop()

    inv = shard_inventory(srv.dirs)
    chunks = sorted(chunk_hashes(inv))
    assert len(chunks) == expected_chunk_count()
    by_chunk = {h: {} for h in chunks}
    for shards in inv.values():
        for (h, idx), path in shards.items():
            by_chunk[h][idx] = path

    # Damage one shard in every other chunk (never more than m per chunk), alternating
    # data (0, 1) and parity (2, 3) shard indexes.
    rng = random.Random(20240611)
    damaged: dict[Path, tuple[bytes, bytes]] = {}  # path -> (original, damaged) bytes
    index_cycle = [0, 2, 1, 3]
    for n, h in enumerate(chunks[::2]):
        path = by_chunk[h][index_cycle[n % 4]]
        original = path.read_bytes()
        data = bytearray(original)
        pos = rng.randrange(len(data))
        data[pos] ^= 0xFF
        path.write_bytes(bytes(data))
        damaged[path] = (original, bytes(data))
    flipped = len(damaged)
    data_damaged = sum(1 for p in damaged if SHARD_RE.match(p.name).group(2) in ("0", "1"))
    parity_damaged = flipped - data_damaged
    assert flipped >= 4 and data_damaged >= 2 and parity_damaged >= 2, (flipped, data_damaged)
    assert quarantined(srv.dirs) == []

    srv.start()
    c = s3(srv)
    verify_all(c, contents, "with rotten shards")
    counters = info(srv)["counters"]
    assert counters["corrupt_found"] >= 1, f"reading every object found no corrupt data shard: {counters}"
    # A healthy GET reads the k data shards only (a parity shard just to replace a bad
    # one), so reading everything once finds exactly the rotten data shards.
    assert counters["corrupt_found"] == data_damaged, f"{data_damaged} data shards flipped: {counters}"
    assert counters["shards_healed"] == data_damaged, f"heal on read: {counters}"
    assert len(quarantined(srv.dirs)) == data_damaged, [p.name for p in quarantined(srv.dirs)]

    doc = heal(srv)
    counters = doc["counters"]
    assert counters["corrupt_found"] == flipped, f"{flipped} shards flipped: {counters}"
    assert counters["shards_healed"] == flipped, f"{flipped} shards flipped: {counters}"
    assert counters["heal_failures"] == 0, counters
    assert doc["heal"]["pass"]["chunks_unrecoverable"] == [], doc["heal"]
    # Only the rotten parity shards were left for the pass to find.
    assert doc["heal"]["pass"]["shards_corrupt"] == parity_damaged, doc["heal"]
    assert doc["heal"]["pass"]["shards_rewritten"] == parity_damaged, doc["heal"]
    q = quarantined(srv.dirs)
    assert len(q) == flipped, f"{len(q)} files in quarantine, {flipped} shards flipped: {[p.name for p in q]}"
    damaged_names = sorted(p.name for p in damaged)
    assert sorted(re.sub(r"\.\d+$", "", p.name) for p in q) == damaged_names, "quarantine holds other shards"
    for path in damaged:
        assert path.is_file(), f"{path} was not rewritten"
        now = path.read_bytes()
        original, rotten = damaged[path]
        assert now != rotten, f"{path} still holds the damaged bytes"
        assert now == original, f"{path} was rewritten with other bytes than the original shard"
    check_clean(srv)
    assert_complete_layout(shard_inventory(srv.dirs), set(chunks))
    verify_all(c, contents, "after the heal")


def test_primary_metadata_disk_lost(make_server, s3, random_bytes, new_bucket_name):
    srv = make_server(NDISKS)
    c = s3(srv)
    b1, b2, bv = new_bucket_name("meta-a"), new_bucket_name("meta-b"), new_bucket_name("meta-ver")
    for b in (b1, b2, bv):
        c.create_bucket(Bucket=b)
    contents = {b1: write_mixed(c, b1, "meta", random_bytes), b2: {}}
    for key, size in (("x/small", 3 * KiB), ("x/big", 2 * MiB + 17)):
        contents[b2][key] = random_bytes(size, f"meta:{key}")
        c.put_object(Bucket=b2, Key=key, Body=contents[b2][key])

    c.put_bucket_versioning(Bucket=bv, VersioningConfiguration={"Status": "Enabled"})
    v1 = random_bytes(50 * KiB, "meta-v1")
    v2 = random_bytes(1 * MiB + 300 * KiB, "meta-v2")
    vid1 = c.put_object(Bucket=bv, Key="doc", Body=v1)["VersionId"]
    vid2 = c.put_object(Bucket=bv, Key="doc", Body=v2)["VersionId"]
    dm = c.delete_object(Bucket=bv, Key="doc")
    assert dm.get("DeleteMarker") is True
    assert len({vid1, vid2, dm["VersionId"]}) == 3

    def versions_snapshot(client):
        r = client.list_object_versions(Bucket=bv)
        vs = sorted((v["Key"], v["VersionId"], v["IsLatest"], v["Size"], v["ETag"]) for v in r.get("Versions", []))
        dms = sorted((d["Key"], d["VersionId"], d["IsLatest"]) for d in r.get("DeleteMarkers", []))
        return vs, dms

    before_versions = versions_snapshot(c)
    assert [v[1] for v in before_versions[0]] == sorted([vid1, vid2])
    assert before_versions[1] == [("doc", dm["VersionId"], True)]
    all_buckets = sorted(b["Name"] for b in c.list_buckets()["Buckets"])
    assert all_buckets == sorted([b1, b2, bv])
    srv.stop()

    assert (srv.dirs[0] / ".tessera" / "meta").is_dir(), "disk 0 should hold a metadata replica"
    shutil.rmtree(srv.dirs[0])
    srv.start()
    assert "DISK OFFLINE" in log_of_current_start(srv)
    assert disk_states(info(srv))[0] != "online"
    c = s3(srv)

    def verify_everything(context):
        assert sorted(b["Name"] for b in c.list_buckets()["Buckets"]) == all_buckets, context
        for b, objects in contents.items():
            verify_bucket(c, b, objects, context)
        assert c.get_bucket_versioning(Bucket=bv).get("Status") == "Enabled", context
        assert versions_snapshot(c) == before_versions, context
        with pytest.raises(ClientError) as exc:
            c.get_object(Bucket=bv, Key="doc")
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404, context
        assert c.get_object(Bucket=bv, Key="doc", VersionId=vid1)["Body"].read() == v1, context
        assert c.get_object(Bucket=bv, Key="doc", VersionId=vid2)["Body"].read() == v2, context

    verify_everything("disk 0 lost")

    # Writes still work, and survive another restart without disk 0.
    contents[b2]["new/inline"] = random_bytes(10 * KiB, "meta-new-inline")
    contents[b2]["new/chunked"] = random_bytes(2 * MiB + 5, "meta-new-chunked")
    for key in ("new/inline", "new/chunked"):
        c.put_object(Bucket=b2, Key=key, Body=contents[b2][key])
        assert c.get_object(Bucket=b2, Key=key)["Body"].read() == contents[b2][key]
    verify_everything("after writes without disk 0")
    srv.restart()
    c = s3(srv)
    verify_everything("after a restart without disk 0")


def test_degraded_writes_are_queued_and_healed_when_the_disk_returns(
    make_server, s3, random_bytes, new_bucket_name
):
    srv = make_server(NDISKS, extra_args=DISK_CHECK)
    c = s3(srv)
    bucket = new_bucket_name("degraded")
    c.create_bucket(Bucket=bucket)
    contents = {bucket: write_mixed(c, bucket, "degraded", random_bytes)}
    srv.stop()
    old_chunks = chunk_hashes(shard_inventory(srv.dirs))
    assert len(old_chunks) == expected_chunk_count()

    away = srv.dirs[3].with_name(srv.dirs[3].name + "-away")
    os.rename(srv.dirs[3], away)
    srv.start()
    assert "DISK OFFLINE" in log_of_current_start(srv)
    assert disk_states(info(srv)) == ["online", "online", "online", "offline"]
    c = s3(srv)

    new_objects = {f"new/{n}": random_bytes(3 * MiB, f"degraded-new-{n}") for n in range(2)}
    new_objects["new/inline"] = random_bytes(5 * KiB, "degraded-new-inline")
    for key, data in new_objects.items():
        c.put_object(Bucket=bucket, Key=key, Body=data)
    contents[bucket].update(new_objects)
    new_chunk_count = 2 * 3
    verify_all(c, contents, "degraded, disk 3 away")

    doc = info(srv)
    assert disk_states(doc)[3] == "offline", disk_states(doc)
    assert doc["heal"]["queue"] > 0, f"degraded writes left no heal-queue entry: {doc['heal']}"
    # Each chunk written while disk 3 was away is queued (the start-up pass may have
    # queued the older, now incomplete chunks as well).
    assert new_chunk_count <= doc["heal"]["queue"] <= new_chunk_count + len(old_chunks), doc["heal"]
    inv = shard_inventory(srv.dirs[:3])
    new_chunks = chunk_hashes(inv) - old_chunks
    assert len(new_chunks) == new_chunk_count, f"{len(new_chunks)} new chunks on disks 0-2"

    os.rename(away, srv.dirs[3])
    doc = poll(
        lambda: info_when(srv, lambda d: disk_states(d)[3] == "online" and d["heal"]["queue"] == 0),
        timeout=20,
    )
    last = info(srv)
    assert doc, f"disk 3 not online with an empty heal queue within 20 s: {disk_states(last)} {last['heal']}"
    assert doc["heal"]["queue_healed"] >= new_chunk_count, doc["heal"]
    assert doc["counters"]["shards_healed"] >= new_chunk_count, doc["counters"]

    # The shards written while disk 3 was away are now on disk 3 too.
    assert_complete_layout(shard_inventory(srv.dirs), old_chunks | new_chunks)
    check_clean(srv)
    verify_all(c, contents, "after disk 3 returned")


def test_admin_api_requires_valid_signature(make_server):
    srv = make_server(NDISKS)
    ok = admin(srv, "info")
    assert ok.returncode == 0, f"correct credentials: exit {ok.returncode}\n{ok.stderr}"
    assert "EC 2+2" in ok.stdout, ok.stdout

    bad = admin(srv, "info", password=ROOT_PASSWORD + "-wrong")
    assert bad.returncode != 0, f"wrong password accepted:\n{bad.stdout}"
    assert "403" in bad.stderr, bad.stderr
    assert re.search(r"AccessDenied|SignatureDoesNotMatch", bad.stderr), bad.stderr
    assert "EC 2+2" not in bad.stdout

    bad_json = admin(srv, "--json", "heal", "--no-wait", password=ROOT_PASSWORD + "-wrong")
    assert bad_json.returncode != 0 and "403" in bad_json.stderr, bad_json.stderr

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as exc:
        opener.open(srv.url + "/tessera-admin/v1/info", timeout=10)
    assert exc.value.code == 403
    body = exc.value.read()
    assert b"deployment_id" not in body and b"AccessDenied" in body, body


def test_admin_bucket_name_is_reserved(make_server, s3):
    """The admin API owns the path /tessera-admin/v1/: a bucket of that name is refused."""
    srv = make_server(1)
    with pytest.raises(ClientError) as exc:
        s3(srv).create_bucket(Bucket="tessera-admin")
    assert exc.value.response["Error"]["Code"] == "InvalidBucketName"
    assert "tessera-admin" not in [b["Name"] for b in s3(srv).list_buckets()["Buckets"]]


def test_a_metadata_disk_swapped_while_running_is_rebuilt_and_can_be_the_only_survivor(
    make_server, s3, random_bytes, new_bucket_name
):
    srv = make_server(NDISKS, extra_args=DISK_CHECK)  # replicas on disks 0, 1, 2 (m + 1)
    c = s3(srv)
    bucket = new_bucket_name("metaswap")
    c.create_bucket(Bucket=bucket)
    contents = {bucket: write_mixed(c, bucket, "metaswap", random_bytes)}
    # Disk 0, holding a metadata replica, is swapped for an empty one while running.
    shutil.rmtree(srv.dirs[0])
    srv.dirs[0].mkdir()
    assert poll(lambda: "metadata replica rejoined while running" in log_of_current_start(srv), 30, 0.3), (
        log_of_current_start(srv)[-3000:]
    )
    # Writes after the rejoin reach it too.
    contents[bucket]["after-swap"] = random_bytes(300 * KiB, "after-swap")
    c.put_object(Bucket=bucket, Key="after-swap", Body=contents[bucket]["after-swap"])
    heal(srv)
    srv.stop()
    # The two other original replicas (and their data disks) are lost: the rebuilt replica is
    # the only metadata left, and with m = 2 the shards still suffice.
    for i in (1, 2):
        shutil.rmtree(srv.dirs[i])
    srv.start()
    verify_all(s3(srv), contents, "with only the rebuilt metadata replica")


def test_only_stale_metadata_replicas_present_refuses_to_start_until_the_newest_returns(
    make_server, s3, random_bytes, new_bucket_name
):
    srv = make_server(NDISKS)  # replicas on disks 0, 1, 2
    c = s3(srv)
    bucket = new_bucket_name("stale")
    c.create_bucket(Bucket=bucket)
    old = {"old": random_bytes(200 * KiB, "stale-old")}
    c.put_object(Bucket=bucket, Key="old", Body=old["old"])
    srv.stop()
    meta = [Path(srv.dirs[i]) / ".tessera" / "meta" for i in range(3)]
    backups = [srv.base / f"meta-backup-{i}" for i in range(2)]
    for i in range(2):
        shutil.copytree(meta[i], backups[i])
    srv.start()
    c = s3(srv)
    newer = {"new": random_bytes(300 * KiB, "stale-new")}
    c.put_object(Bucket=bucket, Key="new", Body=newer["new"])
    c.delete_object(Bucket=bucket, Key="old")
    srv.stop()

    # Old copies of two replicas come back, and the newest one is gone.
    newest = srv.base / "meta-newest"
    shutil.move(str(meta[2]), newest)
    for i in range(2):
        shutil.rmtree(meta[i])
        shutil.copytree(backups[i], meta[i])
    proc = subprocess.run(srv.command(), capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TESSERA_ROOT_USER": ROOT_USER, "TESSERA_ROOT_PASSWORD": ROOT_PASSWORD})
    assert proc.returncode != 0, proc.stdout[-2000:]
    err = proc.stderr
    assert "--accept-stale-metadata" in err and str(meta[2]) in err, err
    assert "reach commit" in err, err

    # The newest comes back: the start succeeds and the stale replicas are caught up.
    shutil.rmtree(meta[2], ignore_errors=True)
    shutil.move(str(newest), meta[2])
    srv.start()
    log = log_of_current_start(srv)
    assert "metadata replica is behind; rebuilding it" in log, log[-3000:]
    c = s3(srv)
    verify_bucket(c, bucket, newer, "with the newest replica back")
    # The caught-up replicas now hold everything: without the newest, they suffice.
    srv.stop()
    shutil.rmtree(meta[2])
    srv.start()
    verify_bucket(s3(srv), bucket, newer, "on the caught-up replicas alone")


def test_check_runs_while_writes_go_on_and_finds_them_exact(make_server, s3, random_bytes, new_bucket_name):
    """`admin check` holds no writer up, and writes made while it runs (overwrites and deletes
    of objects sharing chunks with the stored ones, so the counts it compares keep changing)
    are neither reported nor "repaired": it reads one snapshot and corrects by the error
    found. Afterwards every object reads back and a second check is clean."""
    srv = make_server(NDISKS)
    c = s3(srv)
    bucket = new_bucket_name("online")
    c.create_bucket(Bucket=bucket)
    shared = [random_bytes(MiB, f"online-shared:{i}") for i in range(4)]

    def body(key: str, n: int) -> bytes:
        # One shared 1 MiB chunk, then a tail of its own: many chunks for the shard pass,
        # and a few whose counts every write changes.
        return shared[n % len(shared)] + random_bytes(160 * KiB, f"{key}:{n}")

    expected: dict[str, bytes] = {}
    for i in range(120):
        key = f"base/{i:03d}"
        expected[key] = body(key, i)
        c.put_object(Bucket=bucket, Key=key, Body=expected[key])

    stop = threading.Event()
    done: list[float] = []
    failures: list[BaseException] = []

    def writer() -> None:
        w = s3(srv)
        n = 0
        try:
            while not stop.is_set():
                key = f"hot/{n % 8}"
                if n % 5 == 4:
                    w.delete_object(Bucket=bucket, Key=key)
                    expected.pop(key, None)
                else:
                    data = body(key, n)
                    w.put_object(Bucket=bucket, Key=key, Body=data)
                    expected[key] = data
                done.append(time.monotonic())
                n += 1
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    windows: list[tuple[float, float]] = []
    reports = []
    try:
        assert poll(lambda: len(done) >= 3 or failures, timeout=30) and not failures, failures
        # Checks back to back until writes have finished inside them at least 3 times (a fast
        # machine may finish one check between two writes).
        while len(reports) < 20 and not failures:
            started = time.monotonic()
            reports.append(check_clean(srv))
            windows.append((started, time.monotonic()))
            if sum(1 for t in done for a, b in windows if a <= t <= b) >= 3:
                break
        # A few more writes after them, so the checks did not end with the writer stalled.
        count_after = len(done)
        poll(lambda: len(done) >= count_after + 3 or failures, timeout=30)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failures, f"a write failed while the check ran: {failures[0]!r}"
    during = sum(1 for t in done for a, b in windows if a <= t <= b)
    assert during >= 3, f"{during} writes finished during {len(windows)} checks ({len(done)} in all)"
    for report in reports:
        assert report["refcounts"]["repaired"] is False, report
    assert report["refcounts"]["chunks_referenced"] >= 120, report
    verify_bucket(c, bucket, expected, "after the online check")
    again = admin_json(srv, "check", "--no-repair")[1]
    assert again["clean"] is True and again["refcounts"]["mismatched"] == [], again
