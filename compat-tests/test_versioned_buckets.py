"""Versioned buckets in use, with AWS S3 as the spec: DeleteObjects with and without version
ids, ListObjects showing only current versions, concurrent writers to one key, garbage
collection of shards once every version is gone (and not before), and DeleteBucket on a
bucket holding only old versions or delete markers. (Split from test_versioning.py, whose
helpers it shares.)
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from test_versioning import (  # noqa: F401 (c and vbucket are fixtures)
    MiB,
    c,
    check_real_time_order,
    check_vid,
    code_of,
    enable,
    get_body,
    md5_etag,
    put,
    sha256,
    shard_bytes,
    status_of,
    suspend,
    timed_put,
    vbucket,
    versions_of,
    wait_until,
)


# ----------------------------------------------------------- DeleteObjects ---
def test_delete_objects_with_and_without_version_ids(c, vbucket):
    a = [put(c, vbucket, "bulk/a", f"a{i}".encode()) for i in range(3)]
    b = [put(c, vbucket, "bulk/b", f"b{i}".encode()) for i in range(2)]

    resp = c.delete_objects(
        Bucket=vbucket,
        Delete={
            "Objects": [
                {"Key": "bulk/a", "VersionId": a[0]},
                {"Key": "bulk/a", "VersionId": a[2]},
                {"Key": "bulk/b", "VersionId": b[0]},
            ]
        },
    )
    assert not resp.get("Errors"), resp.get("Errors")
    deleted = sorted((d["Key"], d.get("VersionId")) for d in resp["Deleted"])
    assert deleted == sorted([("bulk/a", a[0]), ("bulk/a", a[2]), ("bulk/b", b[0])])
    assert not any(d.get("DeleteMarker") for d in resp["Deleted"]), resp["Deleted"]
    versions, markers = versions_of(c, vbucket, prefix="bulk/")
    assert markers == []
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions] == [
        ("bulk/a", a[1], True),
        ("bulk/b", b[1], True),
    ]
    assert get_body(c, vbucket, "bulk/a") == b"a1"

    # Without version ids: delete markers in bulk (also for a key that never existed).
    resp = c.delete_objects(
        Bucket=vbucket, Delete={"Objects": [{"Key": "bulk/a"}, {"Key": "bulk/b"}, {"Key": "bulk/never-existed"}]}
    )
    assert not resp.get("Errors"), resp.get("Errors")
    by_key = {d["Key"]: d for d in resp["Deleted"]}
    assert sorted(by_key) == ["bulk/a", "bulk/b", "bulk/never-existed"]
    marker_ids = {}
    for key, d in by_key.items():
        assert d.get("DeleteMarker") is True, d
        marker_ids[key] = check_vid(d.get("DeleteMarkerVersionId"))
    assert len(set(marker_ids.values())) == 3
    assert c.list_objects_v2(Bucket=vbucket, Prefix="bulk/").get("KeyCount") == 0
    versions, markers = versions_of(c, vbucket, prefix="bulk/")
    assert sorted((m["Key"], m["VersionId"], m["IsLatest"]) for m in markers) == sorted(
        (k, v, True) for k, v in marker_ids.items()
    )
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions] == [
        ("bulk/a", a[1], False),
        ("bulk/b", b[1], False),
    ]

    # Deleting the markers by version id in bulk restores the objects.
    resp = c.delete_objects(
        Bucket=vbucket, Delete={"Objects": [{"Key": k, "VersionId": v} for k, v in marker_ids.items()]}
    )
    assert not resp.get("Errors"), resp.get("Errors")
    for d in resp["Deleted"]:
        assert d.get("VersionId") == marker_ids[d["Key"]]
        assert d.get("DeleteMarker") is True, d
        assert d.get("DeleteMarkerVersionId") == marker_ids[d["Key"]], d
    assert len(resp["Deleted"]) == 3
    assert [o["Key"] for o in c.list_objects_v2(Bucket=vbucket, Prefix="bulk/")["Contents"]] == ["bulk/a", "bulk/b"]
    assert get_body(c, vbucket, "bulk/b") == b"b1"


# ------------------------------------------------- ListObjects on versions ---
def test_list_objects_shows_only_current_versions(c, vbucket):
    nkeys, nversions = 10, 50

    def body(k, i):
        return bytes([65 + k]) * (k * 100 + i + 1)

    def write_key(k):
        for i in range(nversions):
            put(c, vbucket, f"lo/key-{k:02d}", body(k, i))

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(write_key, range(nkeys)))
    # Hidden behind a delete marker, and a key whose latest version was deleted by id.
    for i in range(5):
        put(c, vbucket, "lo/hidden", b"h" * (i + 1))
    c.delete_object(Bucket=vbucket, Key="lo/hidden")
    r1 = put(c, vbucket, "lo/rolled-back", b"older")
    r2 = put(c, vbucket, "lo/rolled-back", b"newer but deleted")
    c.delete_object(Bucket=vbucket, Key="lo/rolled-back", VersionId=r2)
    assert get_body(c, vbucket, "lo/rolled-back") == b"older"

    want = {f"lo/key-{k:02d}": body(k, nversions - 1) for k in range(nkeys)}
    want["lo/rolled-back"] = b"older"
    want_list = [(k, len(v), md5_etag(v)) for k, v in sorted(want.items())]

    v2 = c.list_objects_v2(Bucket=vbucket, Prefix="lo/")
    assert v2["KeyCount"] == len(want)
    assert [(o["Key"], o["Size"], o["ETag"]) for o in v2["Contents"]] == want_list
    v1 = c.list_objects(Bucket=vbucket, Prefix="lo/")
    assert [(o["Key"], o["Size"], o["ETag"]) for o in v1["Contents"]] == want_list

    # Small pages: old versions must neither fill pages nor repeat keys.
    got, token = [], None
    for _ in range(100):
        kw = {"Bucket": vbucket, "Prefix": "lo/", "MaxKeys": 3}
        if token:
            kw["ContinuationToken"] = token
        resp = c.list_objects_v2(**kw)
        got += [(o["Key"], o["Size"], o["ETag"]) for o in resp.get("Contents", [])]
        if not resp["IsTruncated"]:
            break
        assert resp["KeyCount"] == 3
        token = resp["NextContinuationToken"]
    assert got == want_list
    got, marker = [], None
    for _ in range(100):
        kw = {"Bucket": vbucket, "Prefix": "lo/", "MaxKeys": 4}
        if marker:
            kw["Marker"] = marker
        resp = c.list_objects(**kw)
        page = resp.get("Contents", [])
        got += [(o["Key"], o["Size"], o["ETag"]) for o in page]
        if not resp["IsTruncated"]:
            break
        assert len(page) == 4
        marker = resp.get("NextMarker") or page[-1]["Key"]
    assert got == want_list
    # Delimiter roll-up ignores old versions and markers too.
    resp = c.list_objects_v2(Bucket=vbucket, Delimiter="/")
    assert [p["Prefix"] for p in resp.get("CommonPrefixes", [])] == ["lo/"]

    versions, markers = versions_of(c, vbucket, prefix="lo/")
    assert len(versions) == nkeys * nversions + 5 + 1
    assert len(markers) == 1


# ------------------------------------------------------------ concurrency ---
def test_concurrent_puts_to_one_key(c, vbucket):
    nthreads, nputs = 8, 5
    barrier = threading.Barrier(nthreads)

    def writer(t):
        barrier.wait()
        out = []
        for i in range(nputs):
            body = f"writer {t} put {i} ".encode() * (t + i + 1)
            vid, start, end = timed_put(c, vbucket, "hot", body)
            out.append((vid, body, (start, end)))
        return out

    with ThreadPoolExecutor(max_workers=nthreads) as pool:
        results = [r for rs in pool.map(writer, range(nthreads)) for r in rs]
    bodies = {vid: body for vid, body, _ in results}
    assert len(bodies) == nthreads * nputs, "version ids were reused across concurrent PUTs"

    versions, markers = versions_of(c, vbucket, prefix="hot")
    assert markers == []
    assert len(versions) == nthreads * nputs
    assert {v["VersionId"] for v in versions} == set(bodies)
    latest = [v for v in versions if v["IsLatest"]]
    assert len(latest) == 1, f"{len(latest)} versions claim IsLatest"
    assert versions[0]["IsLatest"], "the latest version is not listed first"
    current = latest[0]["VersionId"]
    got = c.get_object(Bucket=vbucket, Key="hot")
    assert got.get("VersionId") == current
    assert got["Body"].read() == bodies[current]
    # Each writer's own puts are ordered: its later put is newer than its earlier one.
    position = {v["VersionId"]: i for i, v in enumerate(versions)}
    for t in range(nthreads):
        mine = [vid for vid, _, _ in results[t * nputs : (t + 1) * nputs]]
        assert [position[v] for v in mine] == sorted((position[v] for v in mine), reverse=True), (
            f"writer {t}'s versions are not listed newest first"
        )
    check_real_time_order([v["VersionId"] for v in versions], {vid: t for vid, _, t in results})
    for vid, body in list(bodies.items())[::7]:
        assert get_body(c, vbucket, "hot", vid) == body


# ------------------------------------------------------------ GC of chunks ---
def _write_three_big_versions(c, bucket, random_bytes, tag):
    datas = [random_bytes(3 * MiB, f"versioning-gc-{tag}-{i}") for i in range(3)]
    vids = [put(c, bucket, "big", d) for d in datas]
    return datas, vids


def test_deleting_all_versions_frees_chunks(make_server, s3, random_bytes):
    srv = make_server(4)
    c = s3(srv)
    c.create_bucket(Bucket="vgc")
    enable(c, "vgc")
    before = shard_bytes(srv.dirs)

    datas, vids = _write_three_big_versions(c, "vgc", random_bytes, "all")
    written = shard_bytes(srv.dirs)
    # Every version keeps its own chunks: overwriting did not free the older ones.
    assert written - before >= 3 * 3 * MiB, f"3 versions of 3 MiB grew shards by only {written - before} bytes"
    time.sleep(2.5)  # > gc grace: nothing referenced may be collected
    assert shard_bytes(srv.dirs) == written
    for vid, data in zip(vids, datas):
        assert sha256(get_body(c, "vgc", "big", vid)) == sha256(data)

    c.delete_object(Bucket="vgc", Key="big")  # a marker on top
    versions, markers = versions_of(c, "vgc")
    assert len(versions) == 3 and len(markers) == 1
    for entry in versions + markers:
        c.delete_object(Bucket="vgc", Key=entry["Key"], VersionId=entry["VersionId"])
    assert versions_of(c, "vgc") == ([], [])

    freed = wait_until(lambda: shard_bytes(srv.dirs) <= before, timeout=20)
    assert freed, f"{shard_bytes(srv.dirs) - before} shard bytes left 20 s after deleting every version"
    assert shard_bytes(srv.dirs) == before
    c.delete_bucket(Bucket="vgc")


def test_delete_marker_does_not_free_chunks(make_server, s3, random_bytes):
    srv = make_server(4)
    c = s3(srv)
    c.create_bucket(Bucket="vkeep")
    enable(c, "vkeep")
    before = shard_bytes(srv.dirs)
    datas, vids = _write_three_big_versions(c, "vkeep", random_bytes, "keep")
    written = shard_bytes(srv.dirs)

    d = c.delete_object(Bucket="vkeep", Key="big")
    assert d.get("DeleteMarker") is True
    time.sleep(3.5)  # several gc-grace periods
    assert shard_bytes(srv.dirs) == written, "a delete marker freed chunks of versions that still exist"
    for vid, data in zip(vids, datas):
        assert sha256(get_body(c, "vkeep", "big", vid)) == sha256(data)

    # Deleting one old version frees only that version's chunks.
    c.delete_object(Bucket="vkeep", Key="big", VersionId=vids[0])
    per_version = (written - before) // 3  # same-sized unique data: equal shard bytes per version
    assert wait_until(lambda: shard_bytes(srv.dirs) <= written - per_version, timeout=20), (
        f"deleting one 3 MiB version left {shard_bytes(srv.dirs)} of {written} shard bytes"
    )
    assert shard_bytes(srv.dirs) == written - per_version
    assert sha256(get_body(c, "vkeep", "big", vids[1])) == sha256(datas[1])
    assert sha256(get_body(c, "vkeep", "big", vids[2])) == sha256(datas[2])


def test_suspended_overwrite_frees_replaced_null_version(make_server, s3, random_bytes):
    srv = make_server(4)
    c = s3(srv)
    c.create_bucket(Bucket="vnull")
    enable(c, "vnull")
    suspend(c, "vnull")
    before = shard_bytes(srv.dirs)
    c.put_object(Bucket="vnull", Key="big", Body=random_bytes(3 * MiB, "null-a"))
    one = shard_bytes(srv.dirs) - before
    assert one >= 3 * MiB
    data_b = random_bytes(3 * MiB, "null-b")
    c.put_object(Bucket="vnull", Key="big", Body=data_b)
    # The first null version was replaced, so its chunks are garbage.
    assert wait_until(lambda: shard_bytes(srv.dirs) - before <= one, timeout=20), (
        f"replaced null version not collected: {shard_bytes(srv.dirs) - before} bytes for one 3 MiB object"
    )
    assert sha256(get_body(c, "vnull", "big")) == sha256(data_b)


# ------------------------------------------------------------ DeleteBucket ---
def test_delete_bucket_with_only_old_versions_or_markers(c, vbucket):
    v1 = put(c, vbucket, "k", b"1")
    v2 = put(c, vbucket, "k", b"2")
    d = c.delete_object(Bucket=vbucket, Key="k")
    marker = d["VersionId"]
    assert c.list_objects_v2(Bucket=vbucket).get("KeyCount") == 0

    # Old versions under a marker.
    with pytest.raises(ClientError) as exc:
        c.delete_bucket(Bucket=vbucket)
    assert (status_of(exc), code_of(exc)) == (409, "BucketNotEmpty")

    # Only a delete marker.
    c.delete_object(Bucket=vbucket, Key="k", VersionId=v1)
    c.delete_object(Bucket=vbucket, Key="k", VersionId=v2)
    versions, markers = versions_of(c, vbucket)
    assert versions == [] and [m["VersionId"] for m in markers] == [marker]
    with pytest.raises(ClientError) as exc:
        c.delete_bucket(Bucket=vbucket)
    assert (status_of(exc), code_of(exc)) == (409, "BucketNotEmpty")

    c.delete_object(Bucket=vbucket, Key="k", VersionId=marker)
    resp = c.delete_bucket(Bucket=vbucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        c.head_bucket(Bucket=vbucket)
    assert status_of(exc) == 404
