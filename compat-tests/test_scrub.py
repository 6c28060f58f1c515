"""Continuous scrub: scheduled scanner passes verify parity shards too, so rot in parity is
repaired before it can meet lost disks; `admin info` shows since when each erasure set is known
verified; a GET that meets a bad data shard verifies and repairs that stripe's parity as well.

Four disks, EC 2+2. The scanner runs back to back (`--scan-interval-secs 1`) and unthrottled
(`--scan-bandwidth-mib 0`) so that a pass takes a moment here.
"""

from __future__ import annotations

import random
import shutil
import time

from conftest import poll
from test_durability import (
    K,
    M,
    NDISKS,
    SHARD_RE,
    chunk_hashes,
    expected_chunk_count,
    info,
    shard_inventory,
    verify_all,
    write_mixed,
)

FAST_SCAN = ["--scan-interval-secs", "1", "--scan-bandwidth-mib", "0"]


def flip(path, rng) -> None:
    data = bytearray(path.read_bytes())
    data[rng.randrange(len(data))] ^= 0xFF
    path.write_bytes(bytes(data))


def by_chunk(inv) -> dict[str, dict[int, tuple[int, object]]]:
    """chunk -> {shard index: (disk, path)}"""
    out: dict[str, dict[int, tuple[int, object]]] = {}
    for disk, shards in inv.items():
        for (h, idx), path in shards.items():
            out.setdefault(h, {})[idx] = (disk, path)
    return out


def test_rotten_parity_is_scrubbed_before_m_disks_are_lost(make_server, s3, random_bytes, new_bucket_name):
    srv = make_server(NDISKS, extra_args=FAST_SCAN)
    c = s3(srv)
    bucket = new_bucket_name("scrub")
    c.create_bucket(Bucket=bucket)
    contents = {bucket: write_mixed(c, bucket, "scrub", random_bytes)}
    srv.stop()

    inv = shard_inventory(srv.dirs)
    chunks = by_chunk(inv)
    assert len(chunks) == expected_chunk_count()
    # Every parity shard of every chunk rots; data shards stay good, so reads alone would
    # never notice.
    rng = random.Random(7)
    for shards in chunks.values():
        for idx in range(K, K + M):
            flip(shards[idx][1], rng)
    flipped = len(chunks) * M

    srv.start()
    started = time.time() * 1000
    doc = poll(lambda: (d := info(srv))["heal"]["pass"]["passes_finished"] >= 1
               and not d["heal"]["pass"]["running"] and d, timeout=60, interval=0.5)
    assert doc, f"no scheduled pass finished: {info(srv)['heal']}"
    assert doc["counters"]["corrupt_found"] >= flipped, doc["counters"]
    assert doc["counters"]["shards_healed"] >= flipped, doc["counters"]
    (scrub,) = doc["scrub"]
    assert scrub["pool"] == 0 and scrub["set"] == 0
    assert scrub["verified_since_ms"] >= started - 5000, scrub
    assert scrub["oldest_unverified_secs"] < 60, scrub
    srv.stop()

    # Lose m disks. Some chunk must now be read from a parity shard, or the test proves
    # nothing: the placement rotates per chunk, so with this many chunks one always is.
    lost = (0, 1)
    survivors_have_parity = [
        h for h, shards in chunks.items()
        if any(shards[idx][0] not in lost for idx in range(K, K + M))
    ]
    assert survivors_have_parity, "every chunk kept its data shards: the wipe tests nothing"
    for i in lost:
        shutil.rmtree(srv.dirs[i])
    srv.start()
    verify_all(s3(srv), contents, "after the scrub and the loss of two disks")
    # The age is kept across restarts.
    assert info(srv)["scrub"][0]["verified_since_ms"] == scrub["verified_since_ms"]


def test_a_get_meeting_a_bad_data_shard_repairs_the_stripes_parity(make_server, s3, random_bytes, new_bucket_name):
    srv = make_server(NDISKS)  # the default schedule: no pass runs during this test
    c = s3(srv)
    bucket = new_bucket_name("getparity")
    c.create_bucket(Bucket=bucket)
    data = random_bytes(3 * 1024 * 1024 + 5, "getparity")
    c.put_object(Bucket=bucket, Key="obj", Body=data)
    srv.stop()
    inv = shard_inventory(srv.dirs)
    chunks = by_chunk(inv)
    rng = random.Random(11)
    # One chunk: a data shard and a parity shard rot (m = 2, so it still reads).
    target = sorted(chunks)[0]
    bad = [chunks[target][0][1], chunks[target][K][1]]
    originals = {p: p.read_bytes() for p in bad}
    for p in bad:
        flip(p, rng)
    srv.start()
    assert info(srv)["heal"]["pass"]["passes_finished"] == 0
    assert c.get_object(Bucket=bucket, Key="obj")["Body"].read() == data
    counters = info(srv)["counters"]
    assert counters["corrupt_found"] == 2 and counters["shards_healed"] == 2, counters
    for p in bad:
        assert p.read_bytes() == originals[p], f"{p.name} not rewritten by the GET"
    assert SHARD_RE.match(bad[1].name).group(2) == str(K)
    assert set(chunk_hashes(shard_inventory(srv.dirs))) == set(chunks)
