"""S3 object versioning, with AWS S3 as the spec: Put/GetBucketVersioning
(Enabled / Suspended, never back to unversioned), version ids on PUT, copy,
multipart and delete, reads / HEAD / copy source / tagging by versionId,
permanent deletes of one version, delete markers, the "null" version of
suspended and pre-versioning writes. ListObjectVersions is in
test_version_listing.py; DeleteObjects, ListObjects, concurrent writers, garbage
collection and DeleteBucket on versioned buckets in test_versioned_buckets.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

KiB = 1024
MiB = 1024 * 1024

# Version ids must be usable verbatim in a query string: RFC 3986 unreserved characters only.
VERSION_ID_RE = re.compile(r"[A-Za-z0-9._~-]{1,1024}")
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


# ---------------------------------------------------------------- helpers ---
def status_of(exc_info) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def code_of(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def err_headers(exc_info) -> dict[str, str]:
    return exc_info.value.response["ResponseMetadata"]["HTTPHeaders"]


def headers_of(resp) -> dict[str, str]:
    return resp["ResponseMetadata"]["HTTPHeaders"]


def md5_etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_vid(vid) -> str:
    """A real (non-null) version id: present and URL-safe."""
    assert isinstance(vid, str), f"expected a version id, got {vid!r}"
    assert vid != "null", "a write on a versioning-enabled bucket returned the null version id"
    assert VERSION_ID_RE.fullmatch(vid), f"version id {vid!r} is not made of URL-safe characters"
    return vid


def is_null_vid(vid) -> bool:
    """Writes to unversioned / suspended buckets: header absent or 'null'."""
    return vid is None or vid == "null"


def put(c, bucket, key, body: bytes, **kwargs) -> str:
    resp = c.put_object(Bucket=bucket, Key=key, Body=body, **kwargs)
    return check_vid(resp.get("VersionId"))


def get_body(c, bucket, key, version_id=None) -> bytes:
    kw = {"VersionId": version_id} if version_id is not None else {}
    return c.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def enable(c, bucket) -> None:
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def suspend(c, bucket) -> None:
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


def versions_of(c, bucket, prefix: str = "") -> tuple[list[dict], list[dict]]:
    """Every (Version, DeleteMarker) entry under prefix via boto3, following all pages."""
    versions, markers = [], []
    kw = {"Bucket": bucket, "Prefix": prefix}
    for _ in range(10_000):
        resp = c.list_object_versions(**kw)
        versions += resp.get("Versions", [])
        markers += resp.get("DeleteMarkers", [])
        if not resp.get("IsTruncated"):
            return versions, markers
        kw["KeyMarker"] = resp["NextKeyMarker"]
        if resp.get("NextVersionIdMarker"):
            kw["VersionIdMarker"] = resp["NextVersionIdMarker"]
        else:
            kw.pop("VersionIdMarker", None)
    raise AssertionError("list_object_versions never stopped being truncated")


def raw_versions(server, raw_s3_request, bucket, **params) -> dict:
    """One ListObjectVersions page parsed from the raw XML, keeping the document order of
    <Version> and <DeleteMarker> (boto3 splits them into two lists).

    params: prefix, delimiter, key_marker, version_id_marker, max_keys.
    Returns {"entries": [(kind, key, version_id, is_latest, size)], "prefixes": [...],
    "truncated": bool, "next_key_marker", "next_version_id_marker"}."""
    names = {
        "prefix": "prefix",
        "delimiter": "delimiter",
        "key_marker": "key-marker",
        "version_id_marker": "version-id-marker",
        "max_keys": "max-keys",
    }
    query = [("versions", "")]
    for k, v in params.items():
        if v is not None:
            query.append((names[k], str(v)))
    resp = raw_s3_request(server, "GET", f"/{bucket}", query=query)
    assert resp.status == 200, (resp.status, resp.body[:500])
    root = ET.fromstring(resp.body)
    assert root.tag == S3_NS + "ListVersionsResult", root.tag

    def text(el, name):
        child = el.find(S3_NS + name)
        return None if child is None else (child.text or "")

    entries, prefixes = [], []
    for el in root:
        tag = el.tag[len(S3_NS) :] if el.tag.startswith(S3_NS) else el.tag
        if tag in ("Version", "DeleteMarker"):
            is_latest = text(el, "IsLatest")
            assert is_latest in ("true", "false"), f"IsLatest={is_latest!r}"
            size = text(el, "Size")
            entries.append(
                (tag, text(el, "Key"), text(el, "VersionId"), is_latest == "true", None if size is None else int(size))
            )
        elif tag == "CommonPrefixes":
            prefixes.append(text(el, "Prefix"))
    truncated = text(root, "IsTruncated")
    assert truncated in ("true", "false"), f"IsTruncated={truncated!r}"
    return {
        "entries": entries,
        "prefixes": prefixes,
        "truncated": truncated == "true",
        "next_key_marker": text(root, "NextKeyMarker"),
        "next_version_id_marker": text(root, "NextVersionIdMarker"),
    }


def raw_versions_all(server, raw_s3_request, bucket, *, max_keys=None, prefix=None, delimiter=None):
    """Follow NextKeyMarker / NextVersionIdMarker; returns (entries, prefixes, pages)."""
    entries, prefixes, pages = [], [], 0
    key_marker = vid_marker = None
    while True:
        page = raw_versions(
            server,
            raw_s3_request,
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            max_keys=max_keys,
            key_marker=key_marker,
            version_id_marker=vid_marker,
        )
        pages += 1
        assert pages < 5000, "ListObjectVersions pagination does not terminate"
        entries += page["entries"]
        prefixes += page["prefixes"]
        if max_keys is not None:
            assert len(page["entries"]) + len(page["prefixes"]) <= max_keys
        if not page["truncated"]:
            return entries, prefixes, pages
        if max_keys is not None:
            assert len(page["entries"]) + len(page["prefixes"]) == max_keys, (
                f"truncated page with {len(page['entries'])} entries + {len(page['prefixes'])} prefixes, "
                f"max-keys {max_keys}"
            )
        assert page["next_key_marker"], "truncated ListObjectVersions page without NextKeyMarker"
        if delimiter is None:
            last = page["entries"][-1]
            assert page["next_key_marker"] == last[1], (page["next_key_marker"], last)
            assert page["next_version_id_marker"] == last[2], (page["next_version_id_marker"], last)
        key_marker = page["next_key_marker"]
        vid_marker = page["next_version_id_marker"] or None


def timed_put(c, bucket, key, body: bytes) -> tuple[str, float, float]:
    """PUT and return (version id, monotonic start, monotonic end)."""
    start = time.monotonic()
    vid = put(c, bucket, key, body)
    return vid, start, time.monotonic()


def check_real_time_order(listed: list[str], timings: dict[str, tuple[float, float]]) -> None:
    """listed: version ids newest first. A PUT that started after another PUT had returned
    must be the newer version (listed before it)."""
    min_end_of_newer = float("inf")
    for pos, vid in enumerate(listed):
        start, end = timings[vid]
        assert start <= min_end_of_newer, (
            f"version {vid} (position {pos}) was written after a PUT that had already returned, "
            "yet is listed as older than that PUT's version"
        )
        min_end_of_newer = min(min_end_of_newer, end)


# -- on-disk measurement (layout documented in test_dedup_erasure.py) -------
def regular_files(root: Path):
    if not root.exists():
        return
    for dirpath, _dirnames, filenames in os.walk(root):
        for fn in filenames:
            p = Path(dirpath) / fn
            try:
                if p.is_file() and not p.is_symlink():
                    yield p
            except FileNotFoundError:  # removed by GC while walking
                continue


def shard_bytes(dirs) -> int:
    total = 0
    for d in dirs:
        for p in regular_files(Path(d) / "shards"):
            try:
                total += p.lstat().st_size
            except FileNotFoundError:
                pass
    return total


def wait_until(predicate, timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


# --------------------------------------------------------------- fixtures ---
@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server)


@pytest.fixture
def vbucket(c, bucket_name):
    """A fresh bucket with versioning Enabled."""
    c.create_bucket(Bucket=bucket_name)
    enable(c, bucket_name)
    return bucket_name


# ------------------------------------------------ bucket versioning state ---
def test_new_bucket_is_unversioned(c, bucket_name):
    c.create_bucket(Bucket=bucket_name)
    resp = c.get_bucket_versioning(Bucket=bucket_name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "Status" not in resp, resp
    assert "MFADelete" not in resp, resp

    # Writes to a never-versioned bucket carry no version id; ListObjectVersions lists
    # each object once, as the "null" version.
    r1 = c.put_object(Bucket=bucket_name, Key="plain", Body=b"one")
    assert is_null_vid(r1.get("VersionId")), r1.get("VersionId")
    c.put_object(Bucket=bucket_name, Key="plain", Body=b"two")
    versions, markers = versions_of(c, bucket_name)
    assert markers == []
    assert [(v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in versions] == [("plain", "null", True, 3)]
    # An unversioned DELETE removes the object; no marker appears.
    d = c.delete_object(Bucket=bucket_name, Key="plain")
    assert not d.get("DeleteMarker"), d
    assert versions_of(c, bucket_name) == ([], [])


def test_versioning_missing_bucket(c, new_bucket_name):
    missing = new_bucket_name("missing")
    with pytest.raises(ClientError) as exc:
        c.get_bucket_versioning(Bucket=missing)
    assert (status_of(exc), code_of(exc)) == (404, "NoSuchBucket")
    with pytest.raises(ClientError) as exc:
        enable(c, missing)
    assert (status_of(exc), code_of(exc)) == (404, "NoSuchBucket")


def test_enable_and_suspend(c, bucket_name):
    c.create_bucket(Bucket=bucket_name)
    enable(c, bucket_name)
    assert c.get_bucket_versioning(Bucket=bucket_name).get("Status") == "Enabled"
    suspend(c, bucket_name)
    # Suspended is not "unversioned": the status is reported.
    assert c.get_bucket_versioning(Bucket=bucket_name).get("Status") == "Suspended"
    enable(c, bucket_name)
    assert c.get_bucket_versioning(Bucket=bucket_name).get("Status") == "Enabled"
    # Idempotent.
    enable(c, bucket_name)
    assert c.get_bucket_versioning(Bucket=bucket_name).get("Status") == "Enabled"


@pytest.mark.parametrize("bad_status", ["Disabled", "Off"])
def test_no_way_back_to_unversioned(c, bucket_name, bad_status):
    c.create_bucket(Bucket=bucket_name)
    # Invalid status on a never-versioned bucket: rejected, still unversioned.
    with pytest.raises(ClientError) as exc:
        c.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": bad_status})
    assert status_of(exc) == 400
    assert code_of(exc) in ("MalformedXML", "IllegalVersioningConfigurationException"), code_of(exc)
    assert "Status" not in c.get_bucket_versioning(Bucket=bucket_name)

    enable(c, bucket_name)
    with pytest.raises(ClientError) as exc:
        c.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": bad_status})
    assert status_of(exc) == 400
    assert code_of(exc) in ("MalformedXML", "IllegalVersioningConfigurationException"), code_of(exc)
    assert c.get_bucket_versioning(Bucket=bucket_name).get("Status") == "Enabled"


# -------------------------------------------------------------- version ids ---
def test_every_put_gets_a_distinct_version_id(c, vbucket):
    bodies = {}
    order = []
    for i in range(8):
        body = f"body number {i}".encode()
        vid = put(c, vbucket, "vid/key", body)
        assert vid not in bodies, f"version id {vid} returned twice"
        bodies[vid] = body
        order.append(vid)
    # Other keys get their own distinct ids as well.
    others = {put(c, vbucket, f"vid/other-{i}", b"x") for i in range(4)}
    assert len(others) == 4 and not (others & set(bodies))

    # A plain GET / HEAD reads the newest version and names it.
    got = c.get_object(Bucket=vbucket, Key="vid/key")
    assert got["Body"].read() == bodies[order[-1]]
    assert got.get("VersionId") == order[-1]
    assert c.head_object(Bucket=vbucket, Key="vid/key").get("VersionId") == order[-1]

    # ListObjectVersions: newest first, only the newest IsLatest, sizes and ETags per version.
    versions, markers = versions_of(c, vbucket, prefix="vid/key")
    assert markers == []
    assert [v["VersionId"] for v in versions] == order[::-1]
    assert [v["IsLatest"] for v in versions] == [True] + [False] * 7
    for v in versions:
        assert v["Key"] == "vid/key"
        assert v["Size"] == len(bodies[v["VersionId"]])
        assert v["ETag"] == md5_etag(bodies[v["VersionId"]])
    stamps = [v["LastModified"] for v in versions]
    assert stamps == sorted(stamps, reverse=True), "versions not listed newest first"


def test_copy_delete_and_multipart_return_version_ids(c, vbucket):
    v_src = put(c, vbucket, "src", b"source data")

    cp = c.copy_object(Bucket=vbucket, Key="dst", CopySource={"Bucket": vbucket, "Key": "src"})
    v_copy = check_vid(cp.get("VersionId"))
    # Copying onto the same key creates a new version of it.
    cp2 = c.copy_object(
        Bucket=vbucket, Key="src", CopySource={"Bucket": vbucket, "Key": "src"}, MetadataDirective="REPLACE"
    )
    v_self = check_vid(cp2.get("VersionId"))

    mpu = c.create_multipart_upload(Bucket=vbucket, Key="mpu")
    part = c.upload_part(Bucket=vbucket, Key="mpu", UploadId=mpu["UploadId"], PartNumber=1, Body=b"m" * KiB)
    done = c.complete_multipart_upload(
        Bucket=vbucket,
        Key="mpu",
        UploadId=mpu["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    v_mpu = check_vid(done.get("VersionId"))
    assert get_body(c, vbucket, "mpu", v_mpu) == b"m" * KiB
    assert c.head_object(Bucket=vbucket, Key="mpu").get("VersionId") == v_mpu

    dm = c.delete_object(Bucket=vbucket, Key="dst")
    assert dm.get("DeleteMarker") is True, dm
    v_marker = check_vid(dm.get("VersionId"))

    ids = [v_src, v_copy, v_self, v_mpu, v_marker]
    assert len(set(ids)) == len(ids), ids

    versions, markers = versions_of(c, vbucket)
    assert {(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions} == {
        ("dst", v_copy, False),
        ("mpu", v_mpu, True),
        ("src", v_self, True),
        ("src", v_src, False),
    }
    assert [(m["Key"], m["VersionId"], m["IsLatest"]) for m in markers] == [("dst", v_marker, True)]


# ------------------------------------------------------ reads by version id ---
@pytest.fixture
def three_versions(c, vbucket):
    """Key 'doc' with three versions differing in body, metadata, content type and tags."""
    specs = [
        (b"first version", {"gen": "1"}, "text/plain", "v=1&a=x"),
        (b"second version, longer", {"gen": "2", "extra": "yes"}, "application/json", "v=2"),
        (b"third", {"gen": "3"}, "application/octet-stream", "v=3&c=z"),
    ]
    vids = []
    for body, meta, ctype, tags in specs:
        vids.append(put(c, vbucket, "doc", body, Metadata=meta, ContentType=ctype, Tagging=tags))
    return vbucket, vids, specs


def test_get_and_head_by_version_id(c, three_versions):
    bucket, vids, specs = three_versions
    for vid, (body, meta, ctype, _tags) in zip(vids, specs):
        got = c.get_object(Bucket=bucket, Key="doc", VersionId=vid)
        assert got["Body"].read() == body
        assert got.get("VersionId") == vid
        assert got["Metadata"] == meta
        assert got["ContentType"] == ctype
        assert got["ETag"] == md5_etag(body)
        head = c.head_object(Bucket=bucket, Key="doc", VersionId=vid)
        assert head.get("VersionId") == vid
        assert head["ContentLength"] == len(body)
        assert head["Metadata"] == meta
        assert head["ContentType"] == ctype
        assert head["ETag"] == md5_etag(body)
    # Ranged read of an old version.
    r = c.get_object(Bucket=bucket, Key="doc", VersionId=vids[1], Range="bytes=7-13")
    assert r["Body"].read() == specs[1][0][7:14]
    # The current version is still the newest.
    assert get_body(c, bucket, "doc") == specs[2][0]


def test_copy_from_a_specific_version(c, three_versions):
    bucket, vids, specs = three_versions
    cp = c.copy_object(Bucket=bucket, Key="doc-copy", CopySource={"Bucket": bucket, "Key": "doc", "VersionId": vids[0]})
    assert cp.get("CopySourceVersionId") == vids[0]
    v_copy = check_vid(cp.get("VersionId"))
    got = c.get_object(Bucket=bucket, Key="doc-copy")
    assert got["Body"].read() == specs[0][0]
    assert got["Metadata"] == specs[0][1]  # MetadataDirective COPY: that version's metadata
    assert got["ContentType"] == specs[0][2]
    assert got.get("VersionId") == v_copy

    # Restoring an old version by copying it over the key makes it current (a new version).
    cp = c.copy_object(Bucket=bucket, Key="doc", CopySource={"Bucket": bucket, "Key": "doc", "VersionId": vids[1]})
    assert cp.get("CopySourceVersionId") == vids[1]
    v_restored = check_vid(cp.get("VersionId"))
    assert v_restored not in vids
    assert get_body(c, bucket, "doc") == specs[1][0]
    versions, _ = versions_of(c, bucket, prefix="doc")
    assert [v["VersionId"] for v in versions if v["Key"] == "doc"] == [v_restored] + vids[::-1]


def tags(resp) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resp["TagSet"]}


def test_tagging_by_version_id(c, three_versions):
    bucket, vids, _specs = three_versions
    want = [{"v": "1", "a": "x"}, {"v": "2"}, {"v": "3", "c": "z"}]
    for vid, expected in zip(vids, want):
        resp = c.get_object_tagging(Bucket=bucket, Key="doc", VersionId=vid)
        assert tags(resp) == expected
        assert resp.get("VersionId") == vid
    cur = c.get_object_tagging(Bucket=bucket, Key="doc")
    assert tags(cur) == want[2]
    assert cur.get("VersionId") == vids[2]

    resp = c.put_object_tagging(
        Bucket=bucket, Key="doc", VersionId=vids[0], Tagging={"TagSet": [{"Key": "retagged", "Value": "old"}]}
    )
    assert resp.get("VersionId") == vids[0]
    assert tags(c.get_object_tagging(Bucket=bucket, Key="doc", VersionId=vids[0])) == {"retagged": "old"}
    # Other versions untouched.
    assert tags(c.get_object_tagging(Bucket=bucket, Key="doc", VersionId=vids[1])) == want[1]
    assert tags(c.get_object_tagging(Bucket=bucket, Key="doc")) == want[2]
    assert c.get_object(Bucket=bucket, Key="doc", VersionId=vids[0]).get("TagCount") == 1

    # Tagging without a version id targets the current version only.
    c.put_object_tagging(Bucket=bucket, Key="doc", Tagging={"TagSet": [{"Key": "now", "Value": "current"}]})
    assert tags(c.get_object_tagging(Bucket=bucket, Key="doc", VersionId=vids[2])) == {"now": "current"}
    assert tags(c.get_object_tagging(Bucket=bucket, Key="doc", VersionId=vids[0])) == {"retagged": "old"}


def test_unknown_version_id_is_no_such_version(c, vbucket):
    put(c, vbucket, "known", b"k")
    foreign = put(c, vbucket, "other-key", b"o")  # a well-formed id that is not a version of "known"
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=vbucket, Key="known", VersionId=foreign)
    assert (status_of(exc), code_of(exc)) == (404, "NoSuchVersion")
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=vbucket, Key="known", VersionId=foreign)
    assert status_of(exc) == 404
    with pytest.raises(ClientError) as exc:
        c.get_object_tagging(Bucket=vbucket, Key="known", VersionId=foreign)
    assert (status_of(exc), code_of(exc)) == (404, "NoSuchVersion")
    with pytest.raises(ClientError) as exc:
        c.put_object_tagging(
            Bucket=vbucket, Key="known", VersionId=foreign, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}
        )
    assert (status_of(exc), code_of(exc)) == (404, "NoSuchVersion")
    with pytest.raises(ClientError) as exc:
        c.copy_object(Bucket=vbucket, Key="dst", CopySource={"Bucket": vbucket, "Key": "known", "VersionId": foreign})
    assert (status_of(exc), code_of(exc)) == (404, "NoSuchVersion")
    # "null" names the null version, which this key (written while Enabled) does not have.
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=vbucket, Key="known", VersionId="null")
    assert (status_of(exc), code_of(exc)) == (404, "NoSuchVersion")
    # Versioned read of a key that does not exist at all.
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=vbucket, Key="never-written", VersionId=foreign)
    assert status_of(exc) == 404
    assert code_of(exc) in ("NoSuchVersion", "NoSuchKey")


@pytest.mark.parametrize("bad", ["not a version id!", "%%%", "x" * 2000])
def test_malformed_version_id(c, vbucket, bad):
    put(c, vbucket, "known", b"k")
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=vbucket, Key="known", VersionId=bad)
    assert (status_of(exc), code_of(exc)) in ((400, "InvalidArgument"), (404, "NoSuchVersion")), (
        status_of(exc),
        code_of(exc),
    )


# ----------------------------------------------------- permanent deletes ---
def test_delete_specific_version_is_permanent(c, vbucket):
    v1 = put(c, vbucket, "k", b"one")
    v2 = put(c, vbucket, "k", b"two")
    v3 = put(c, vbucket, "k", b"three")

    # A non-current version: gone for good, current unchanged, no marker created.
    d = c.delete_object(Bucket=vbucket, Key="k", VersionId=v2)
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert d.get("VersionId") == v2
    assert not d.get("DeleteMarker"), d
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=vbucket, Key="k", VersionId=v2)
    assert (status_of(exc), code_of(exc)) == (404, "NoSuchVersion")
    assert get_body(c, vbucket, "k") == b"three"
    versions, markers = versions_of(c, vbucket)
    assert markers == []
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v3, True), (v1, False)]

    # The current version: the previous one becomes current.
    d = c.delete_object(Bucket=vbucket, Key="k", VersionId=v3)
    assert d.get("VersionId") == v3
    assert not d.get("DeleteMarker"), d
    got = c.get_object(Bucket=vbucket, Key="k")
    assert got["Body"].read() == b"one"
    assert got.get("VersionId") == v1
    versions, markers = versions_of(c, vbucket)
    assert markers == []
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v1, True)]
    assert [o["Key"] for o in c.list_objects_v2(Bucket=vbucket).get("Contents", [])] == ["k"]

    # The last version: the key is gone entirely (no delete marker).
    c.delete_object(Bucket=vbucket, Key="k", VersionId=v1)
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=vbucket, Key="k")
    assert (status_of(exc), code_of(exc)) == (404, "NoSuchKey")
    assert err_headers(exc).get("x-amz-delete-marker") != "true"
    assert versions_of(c, vbucket) == ([], [])
    assert c.list_objects_v2(Bucket=vbucket).get("KeyCount") == 0


# ------------------------------------------------------- delete markers ---
def test_delete_marker_lifecycle(c, vbucket):
    v1 = put(c, vbucket, "dm/key", b"version one")
    v2 = put(c, vbucket, "dm/key", b"version two")
    put(c, vbucket, "dm/neighbour", b"n")

    d = c.delete_object(Bucket=vbucket, Key="dm/key")
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert d.get("DeleteMarker") is True, d
    marker = check_vid(d.get("VersionId"))
    assert marker not in (v1, v2)

    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=vbucket, Key="dm/key")
    assert (status_of(exc), code_of(exc)) == (404, "NoSuchKey")
    assert err_headers(exc).get("x-amz-delete-marker") == "true"
    if "x-amz-version-id" in err_headers(exc):
        assert err_headers(exc)["x-amz-version-id"] == marker
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=vbucket, Key="dm/key")
    assert status_of(exc) == 404

    # The marker itself cannot be read: 405 with x-amz-delete-marker (GET and HEAD).
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=vbucket, Key="dm/key", VersionId=marker)
    assert (status_of(exc), code_of(exc)) == (405, "MethodNotAllowed")
    assert err_headers(exc).get("x-amz-delete-marker") == "true"
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=vbucket, Key="dm/key", VersionId=marker)
    assert status_of(exc) == 405
    assert err_headers(exc).get("x-amz-delete-marker") == "true"

    # Older versions stay readable by id.
    assert get_body(c, vbucket, "dm/key", v1) == b"version one"
    assert get_body(c, vbucket, "dm/key", v2) == b"version two"

    # Listing: the key is hidden, but its versions and the marker are listed.
    assert [o["Key"] for o in c.list_objects_v2(Bucket=vbucket, Prefix="dm/").get("Contents", [])] == ["dm/neighbour"]
    assert [o["Key"] for o in c.list_objects(Bucket=vbucket, Prefix="dm/").get("Contents", [])] == ["dm/neighbour"]
    versions, markers = versions_of(c, vbucket, prefix="dm/key")
    assert [(m["Key"], m["VersionId"], m["IsLatest"]) for m in markers] == [("dm/key", marker, True)]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v2, False), (v1, False)]

    # A second DELETE stacks a second marker.
    d2 = c.delete_object(Bucket=vbucket, Key="dm/key")
    assert d2.get("DeleteMarker") is True
    marker2 = check_vid(d2.get("VersionId"))
    assert marker2 != marker
    _, markers = versions_of(c, vbucket, prefix="dm/key")
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [(marker2, True), (marker, False)]

    # Deleting the markers by version id restores v2 as current.
    for m in (marker2, marker):
        r = c.delete_object(Bucket=vbucket, Key="dm/key", VersionId=m)
        assert r.get("VersionId") == m
        assert r.get("DeleteMarker") is True, r  # the deleted version was a delete marker
    got = c.get_object(Bucket=vbucket, Key="dm/key")
    assert got["Body"].read() == b"version two"
    assert got.get("VersionId") == v2
    versions, markers = versions_of(c, vbucket, prefix="dm/key")
    assert markers == []
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v2, True), (v1, False)]
    assert [o["Key"] for o in c.list_objects_v2(Bucket=vbucket, Prefix="dm/")["Contents"]] == [
        "dm/key",
        "dm/neighbour",
    ]


# ---------------------------------------------------------- null versions ---
def test_suspended_bucket_writes_null_versions(server, raw_s3_request, c, vbucket):
    v1 = put(c, vbucket, "s", b"real one")
    v2 = put(c, vbucket, "s", b"real two")
    suspend(c, vbucket)

    r = c.put_object(Bucket=vbucket, Key="s", Body=b"null A")
    assert is_null_vid(r.get("VersionId")), r.get("VersionId")
    assert get_body(c, vbucket, "s") == b"null A"
    versions, markers = versions_of(c, vbucket)
    assert markers == []
    assert [(v["VersionId"], v["IsLatest"], v["Size"]) for v in versions] == [
        ("null", True, 6),
        (v2, False, 8),
        (v1, False, 8),
    ]

    # A second suspended write replaces the null version; real versions stay.
    r = c.put_object(Bucket=vbucket, Key="s", Body=b"null B, longer")
    assert is_null_vid(r.get("VersionId")), r.get("VersionId")
    versions, markers = versions_of(c, vbucket)
    assert markers == []
    assert [(v["VersionId"], v["IsLatest"], v["Size"]) for v in versions] == [
        ("null", True, 14),
        (v2, False, 8),
        (v1, False, 8),
    ]
    assert get_body(c, vbucket, "s", "null") == b"null B, longer"
    assert get_body(c, vbucket, "s", v1) == b"real one"
    assert get_body(c, vbucket, "s", v2) == b"real two"

    # DELETE without a version id: a null delete marker replaces the null version.
    d = c.delete_object(Bucket=vbucket, Key="s")
    assert d.get("DeleteMarker") is True, d
    assert is_null_vid(d.get("VersionId")), d.get("VersionId")
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=vbucket, Key="s")
    assert (status_of(exc), code_of(exc)) == (404, "NoSuchKey")
    assert err_headers(exc).get("x-amz-delete-marker") == "true"
    versions, markers = versions_of(c, vbucket)
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [("null", True)]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v2, False), (v1, False)]
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=vbucket, Key="s", VersionId="null")
    assert status_of(exc) == 405

    # Re-enabled: real version ids again; the null marker stays in the history.
    enable(c, vbucket)
    v3 = put(c, vbucket, "s", b"real three")
    assert v3 not in (v1, v2)
    versions, markers = versions_of(c, vbucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v3, True), (v2, False), (v1, False)]
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [("null", False)]
    entries, _, _ = raw_versions_all(server, raw_s3_request, vbucket)
    assert [(e[0], e[2]) for e in entries] == [("Version", v3), ("DeleteMarker", "null"), ("Version", v2), ("Version", v1)]


def test_suspended_bucket_delete_creates_null_marker_without_null_version(c, vbucket):
    v1 = put(c, vbucket, "only-real", b"real")
    suspend(c, vbucket)
    d = c.delete_object(Bucket=vbucket, Key="only-real")
    assert d.get("DeleteMarker") is True, d
    assert is_null_vid(d.get("VersionId")), d.get("VersionId")
    versions, markers = versions_of(c, vbucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v1, False)]
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [("null", True)]
    # A suspended PUT replaces the null marker with a null object version.
    c.put_object(Bucket=vbucket, Key="only-real", Body=b"back")
    versions, markers = versions_of(c, vbucket)
    assert markers == []
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [("null", True), (v1, False)]
    assert get_body(c, vbucket, "only-real") == b"back"


def test_objects_written_before_versioning_are_null_versions(c, bucket_name):
    c.create_bucket(Bucket=bucket_name)
    c.put_object(Bucket=bucket_name, Key="old", Body=b"pre-versioning")
    c.put_object(Bucket=bucket_name, Key="untouched", Body=b"stays null")
    enable(c, bucket_name)

    versions, markers = versions_of(c, bucket_name)
    assert markers == []
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions] == [
        ("old", "null", True),
        ("untouched", "null", True),
    ]
    assert get_body(c, bucket_name, "old", "null") == b"pre-versioning"
    assert c.head_object(Bucket=bucket_name, Key="untouched", VersionId="null")["ContentLength"] == 10

    v1 = put(c, bucket_name, "old", b"first real version")
    versions, _ = versions_of(c, bucket_name)
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions] == [
        ("old", v1, True),
        ("old", "null", False),
        ("untouched", "null", True),
    ]
    assert get_body(c, bucket_name, "old") == b"first real version"
    assert get_body(c, bucket_name, "old", "null") == b"pre-versioning"
    assert get_body(c, bucket_name, "untouched") == b"stays null"

    # The null version can be deleted permanently like any other.
    d = c.delete_object(Bucket=bucket_name, Key="old", VersionId="null")
    assert d.get("VersionId") == "null"
    assert not d.get("DeleteMarker")
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket_name, Key="old", VersionId="null")
    assert (status_of(exc), code_of(exc)) == (404, "NoSuchVersion")
    versions, _ = versions_of(c, bucket_name)
    assert [(v["Key"], v["VersionId"]) for v in versions] == [("old", v1), ("untouched", "null")]
