"""ListObjectVersions against the real binary, with AWS S3 as the spec: the full order of a
known version history (versions and delete markers, newest first per key, keys in byte
order), pagination at every page size, prefix and delimiter, the boto3 fields, resuming from
key-marker + version-id-marker, and 1,000 versions of one key written concurrently listed in
write order. (Split from test_versioning.py, whose helpers it shares.)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from test_versioning import (  # noqa: F401 (c is a fixture)
    c,
    check_real_time_order,
    check_vid,
    enable,
    get_body,
    put,
    raw_versions,
    raw_versions_all,
    timed_put,
)


@pytest.fixture(scope="module")
def version_tree(server, c, new_bucket_name):
    """Bucket with a known version history, written sequentially so the order is known.

    Returns (bucket, expected) where expected is the full listing as
    [(kind, key, version_id, is_latest, size)] in S3 order."""
    bucket = new_bucket_name("vtree")
    c.create_bucket(Bucket=bucket)
    enable(c, bucket)
    history: dict[str, list[tuple]] = {}  # key -> entries, newest first

    def write(key, n):
        for i in range(n):
            body = f"{key}#{i}".encode() * (i + 1)
            vid = put(c, bucket, key, body)
            history.setdefault(key, []).insert(0, ("Version", key, vid, len(body)))

    def mark(key):
        d = c.delete_object(Bucket=bucket, Key=key)
        assert d.get("DeleteMarker") is True
        history.setdefault(key, []).insert(0, ("DeleteMarker", key, check_vid(d.get("VersionId")), None))

    def drop(key, index):
        kind, _, vid, _ = history[key].pop(index)
        c.delete_object(Bucket=bucket, Key=key, VersionId=vid)

    write("a/1", 3)
    write("a/2", 1)
    mark("a/2")
    write("a/3/deep", 2)
    write("b", 3)
    drop("b", 0)  # delete the latest version of b by id
    write("c", 4)
    write("c/x", 1)
    write("d", 1)
    mark("d")
    drop("d", 1)  # d: only a delete marker is left
    write("a/1", 1)  # a/1 gets a newer version after other keys were written

    expected = []
    for key in sorted(history, key=lambda k: k.encode()):
        for i, (kind, k, vid, size) in enumerate(history[key]):
            expected.append((kind, k, vid, i == 0, size))
    return bucket, expected


def test_list_versions_full_order(server, raw_s3_request, version_tree):
    bucket, expected = version_tree
    page = raw_versions(server, raw_s3_request, bucket)
    assert not page["truncated"]
    assert page["entries"] == expected
    assert page["prefixes"] == []


@pytest.mark.parametrize("max_keys", [1, 2, 3, 5, 7])
def test_list_versions_pagination(server, raw_s3_request, version_tree, max_keys):
    bucket, expected = version_tree
    entries, prefixes, pages = raw_versions_all(server, raw_s3_request, bucket, max_keys=max_keys)
    assert entries == expected, "pages do not concatenate to the full listing"
    assert prefixes == []
    assert pages >= -(-len(expected) // max_keys)


def test_list_versions_prefix(server, raw_s3_request, version_tree):
    bucket, expected = version_tree
    page = raw_versions(server, raw_s3_request, bucket, prefix="a/")
    assert page["entries"] == [e for e in expected if e[1].startswith("a/")]
    page = raw_versions(server, raw_s3_request, bucket, prefix="c")
    assert page["entries"] == [e for e in expected if e[1].startswith("c")]
    page = raw_versions(server, raw_s3_request, bucket, prefix="zzz")
    assert page["entries"] == [] and not page["truncated"]
    entries, _, _ = raw_versions_all(server, raw_s3_request, bucket, prefix="a/", max_keys=2)
    assert entries == [e for e in expected if e[1].startswith("a/")]


def test_list_versions_delimiter(server, raw_s3_request, version_tree):
    bucket, expected = version_tree
    page = raw_versions(server, raw_s3_request, bucket, delimiter="/")
    assert page["prefixes"] == ["a/", "c/"]
    assert page["entries"] == [e for e in expected if "/" not in e[1]]
    page = raw_versions(server, raw_s3_request, bucket, prefix="a/", delimiter="/")
    assert page["prefixes"] == ["a/3/"]
    assert page["entries"] == [e for e in expected if e[1] in ("a/1", "a/2")]
    # Paged with a delimiter: every entry and prefix exactly once.
    for max_keys in (1, 2, 4):
        entries, prefixes, _ = raw_versions_all(server, raw_s3_request, bucket, delimiter="/", max_keys=max_keys)
        assert entries == [e for e in expected if "/" not in e[1]], max_keys
        assert prefixes == ["a/", "c/"], max_keys


def test_list_versions_boto3_fields(c, version_tree):
    bucket, expected = version_tree
    resp = c.list_object_versions(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [p["Prefix"] for p in resp.get("CommonPrefixes", [])] == ["a/3/"]
    got_v = [(v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in resp.get("Versions", [])]
    got_m = [(m["Key"], m["VersionId"], m["IsLatest"]) for m in resp.get("DeleteMarkers", [])]
    assert got_v == [(e[1], e[2], e[3], e[4]) for e in expected if e[0] == "Version" and e[1] in ("a/1", "a/2")]
    assert got_m == [(e[1], e[2], e[3]) for e in expected if e[0] == "DeleteMarker" and e[1] in ("a/1", "a/2")]
    for v in resp["Versions"]:
        assert v["ETag"].startswith('"') and v["LastModified"]
        assert "Owner" not in v or v["Owner"].get("ID")
    for m in resp.get("DeleteMarkers", []):
        assert "Size" not in m and "ETag" not in m
        assert m["LastModified"]
    assert resp.get("Prefix") == "a/"
    assert resp.get("Delimiter") == "/"
    assert resp.get("IsTruncated") is False


def test_list_versions_key_marker_and_version_id_marker(server, raw_s3_request, version_tree):
    bucket, expected = version_tree
    # key-marker alone: keys strictly after it.
    page = raw_versions(server, raw_s3_request, bucket, key_marker="a/2")
    assert page["entries"] == [e for e in expected if e[1].encode() > b"a/2"]
    # key-marker + version-id-marker: the versions of that key older than the marker, then later keys.
    c_versions = [e for e in expected if e[1] == "c"]
    assert len(c_versions) == 4
    page = raw_versions(server, raw_s3_request, bucket, key_marker="c", version_id_marker=c_versions[1][2])
    start = expected.index(c_versions[1]) + 1
    assert page["entries"] == expected[start:]
    # Marker on the oldest version of a key: continue with the next key.
    page = raw_versions(server, raw_s3_request, bucket, key_marker="c", version_id_marker=c_versions[-1][2])
    assert page["entries"] == [e for e in expected if e[1].encode() > b"c"]
    # Marker on a delete marker works the same way.
    a2 = [e for e in expected if e[1] == "a/2"]
    assert a2[0][0] == "DeleteMarker"
    page = raw_versions(server, raw_s3_request, bucket, key_marker="a/2", version_id_marker=a2[0][2], max_keys=1)
    assert page["entries"] == [a2[1]]
    assert page["truncated"]


def test_list_1000_versions_of_one_key(server, c, raw_s3_request, bucket_name):
    c.create_bucket(Bucket=bucket_name)
    enable(c, bucket_name)
    put(c, bucket_name, "k-before", b"before")

    def write(i):
        body = f"version {i:04d}".encode()
        vid, start, end = timed_put(c, bucket_name, "k", body)
        return vid, body, (start, end)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(write, range(1000)))
    bodies = {vid: body for vid, body, _ in results}
    timings = {vid: t for vid, _, t in results}
    assert len(bodies) == 1000, f"only {len(bodies)} distinct version ids for 1000 PUTs"
    put(c, bucket_name, "k-tail", b"after")

    seen = []
    pages = 0
    kw = {"Bucket": bucket_name, "MaxKeys": 100}
    while True:
        resp = c.list_object_versions(**kw)
        pages += 1
        assert pages <= 12, "too many pages"
        page = resp.get("Versions", [])
        assert not resp.get("DeleteMarkers")
        assert len(page) <= 100
        seen += page
        if not resp["IsTruncated"]:
            break
        assert len(page) == 100, f"truncated page {pages} holds {len(page)} versions"
        assert resp["NextKeyMarker"] == page[-1]["Key"]
        assert resp["NextVersionIdMarker"] == page[-1]["VersionId"]
        kw["KeyMarker"] = resp["NextKeyMarker"]
        kw["VersionIdMarker"] = resp["NextVersionIdMarker"]

    ids = [(v["Key"], v["VersionId"]) for v in seen]
    assert len(ids) == len(set(ids)), "a version was listed twice"
    assert len(seen) == 1002
    assert [v["Key"] for v in seen] == ["k"] * 1000 + ["k-before", "k-tail"]
    assert pages in (11, 12)  # 1002 entries at 100 per page (a final empty page is tolerated)
    k_versions = seen[:1000]
    assert {v["VersionId"] for v in k_versions} == set(bodies)
    assert [v["IsLatest"] for v in k_versions] == [True] + [False] * 999
    check_real_time_order([v["VersionId"] for v in k_versions], timings)
    latest = k_versions[0]["VersionId"]
    got = c.get_object(Bucket=bucket_name, Key="k")
    assert got.get("VersionId") == latest
    assert got["Body"].read() == bodies[latest]
    # Spot-check old versions by id.
    for vid in list(bodies)[::97]:
        assert get_body(c, bucket_name, "k", vid) == bodies[vid]
