"""MinIO's Python SDK (PyPI ``minio``) end-to-end against the real binary.

One scenario per feature group, all on the module's shared server: bucket life cycle,
small put_object and a ~70 MiB fput_object (multipart, 5 MiB parts), byte-exact
get_object/fget_object (also ranged), list_objects with prefix and recursive=False
(delimiter "/"), copy_object/compose_object (CopyObject / UploadPartCopy), stat_object
metadata, object tags, versioning, presigned GET/PUT URLs used with urllib, and
remove_object/remove_objects/remove_bucket.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import datetime, timezone
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import REGION, ROOT_PASSWORD, ROOT_USER

minio = pytest.importorskip("minio", reason="pip install -r compat-tests/requirements.txt")
from minio import Minio  # noqa: E402
from minio.commonconfig import ENABLED, REPLACE, ComposeSource, CopySource, Tags  # noqa: E402
from minio.datatypes import PostPolicy  # noqa: E402
from minio.deleteobjects import DeleteObject  # noqa: E402
from minio.error import S3Error  # noqa: E402
from minio.versioningconfig import SUSPENDED, VersioningConfig  # noqa: E402

KiB = 1024
MiB = 1024 * 1024

pytestmark = pytest.mark.timeout(120)

# urllib without any proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def get_bytes(mc: Minio, bucket: str, key: str, **kwargs) -> bytes:
    resp = mc.get_object(bucket, key, **kwargs)
    try:
        return resp.read()
    finally:
        resp.close()
        resp.release_conn()


def put_bytes(mc: Minio, bucket: str, key: str, data: bytes, **kwargs):
    return mc.put_object(bucket, key, io.BytesIO(data), len(data), **kwargs)


@pytest.fixture(scope="module")
def mc(server) -> Minio:
    return Minio(
        f"127.0.0.1:{server.port}",
        access_key=ROOT_USER,
        secret_key=ROOT_PASSWORD,
        secure=False,
        region=REGION,
    )


@pytest.fixture
def mbucket(mc, bucket_name):
    """A fresh bucket made with make_bucket; emptied (all versions) and removed afterwards."""
    mc.make_bucket(bucket_name)
    yield bucket_name
    try:
        leftovers = [
            DeleteObject(o.object_name, o.version_id)
            for o in mc.list_objects(bucket_name, recursive=True, include_version=True)
        ]
        if leftovers:
            errors = list(mc.remove_objects(bucket_name, leftovers))
            assert not errors, errors
        mc.remove_bucket(bucket_name)
    except S3Error:
        pass


def test_bucket_lifecycle(mc, bucket_name):
    assert not mc.bucket_exists(bucket_name)
    mc.make_bucket(bucket_name)
    assert mc.bucket_exists(bucket_name)
    assert bucket_name in {b.name for b in mc.list_buckets()}
    with pytest.raises(S3Error) as exc:
        mc.make_bucket(bucket_name)
    assert exc.value.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")

    put_bytes(mc, bucket_name, "k", b"x")
    with pytest.raises(S3Error) as exc:
        mc.remove_bucket(bucket_name)
    assert exc.value.code == "BucketNotEmpty"
    mc.remove_object(bucket_name, "k")
    mc.remove_bucket(bucket_name)
    assert not mc.bucket_exists(bucket_name)
    with pytest.raises(S3Error) as exc:
        mc.remove_bucket(bucket_name)
    assert exc.value.code == "NoSuchBucket"


def test_small_and_multipart_roundtrip(mc, mbucket, tmp_path, random_bytes):
    small = random_bytes(100 * KiB + 7, "minio-small")
    res = put_bytes(mc, mbucket, "dir/small.bin", small, content_type="application/x-test")
    assert res.etag == hashlib.md5(small).hexdigest()
    assert get_bytes(mc, mbucket, "dir/small.bin") == small
    st = mc.stat_object(mbucket, "dir/small.bin")
    assert st.size == len(small)
    assert st.content_type == "application/x-test"

    # ~70 MiB file: fput_object splits it into 5 MiB parts (minio's minimum part size)
    # uploaded 3 at a time.
    big = random_bytes(70 * MiB + 12345, "minio-big")
    src = tmp_path / "big.bin"
    src.write_bytes(big)
    res = mc.fput_object(mbucket, "dir/big.bin", str(src), part_size=5 * MiB)
    parts = -(-len(big) // (5 * MiB))
    assert res.etag.endswith(f"-{parts}"), res.etag  # multipart ETag: md5-of-md5s + "-N"

    st = mc.stat_object(mbucket, "dir/big.bin")
    assert st.size == len(big)
    assert st.etag == res.etag

    dst = tmp_path / "big.down"
    mc.fget_object(mbucket, "dir/big.bin", str(dst))
    assert dst.stat().st_size == len(big)
    assert file_sha256(dst) == sha256(big)
    del big
    dst.unlink()

    # Ranged reads across a part boundary (offset/length -> Range header).
    big = src.read_bytes()
    off = 5 * MiB - 100
    assert get_bytes(mc, mbucket, "dir/big.bin", offset=off, length=300) == big[off : off + 300]
    assert get_bytes(mc, mbucket, "dir/big.bin", offset=len(big) - 10) == big[-10:]
    assert get_bytes(mc, mbucket, "dir/small.bin", offset=1, length=5) == small[1:6]

    # Unknown length (length=-1): minio streams 5 MiB parts until EOF.
    stream = big[: 12 * MiB + 1]
    res = mc.put_object(mbucket, "dir/stream.bin", io.BytesIO(stream), length=-1, part_size=5 * MiB)
    assert res.etag.endswith("-3"), res.etag
    assert sha256(get_bytes(mc, mbucket, "dir/stream.bin")) == sha256(stream)

    # compose_object: server-side multipart assembly via UploadPartCopy.
    res = mc.compose_object(
        mbucket,
        "composed.bin",
        [
            ComposeSource(mbucket, "dir/big.bin", offset=0, length=6 * MiB),
            ComposeSource(mbucket, "dir/small.bin"),
        ],
    )
    composed = big[: 6 * MiB] + small
    st = mc.stat_object(mbucket, "composed.bin")
    assert st.size == len(composed)
    assert sha256(get_bytes(mc, mbucket, "composed.bin")) == sha256(composed)


def test_list_objects_prefix_and_delimiter(mc, mbucket):
    keys = ["a.txt", "b/1.txt", "b/2.txt", "b/c/3.txt", "b/c/4.txt", "bz.txt", "d/e/f.txt"]
    for i, k in enumerate(keys):
        put_bytes(mc, mbucket, k, f"body-{i}".encode())

    def listing(**kw):
        # minio yields a page's objects first and its common prefixes after them: sort.
        out = list(mc.list_objects(mbucket, **kw))
        return sorted((o.object_name, o.is_dir, o.size) for o in out)

    # recursive=False -> delimiter "/": objects at the top and "dir/" entries.
    assert listing() == [
        ("a.txt", False, 6),
        ("b/", True, None),
        ("bz.txt", False, 6),
        ("d/", True, None),
    ]
    assert listing(prefix="b/") == [
        ("b/1.txt", False, 6),
        ("b/2.txt", False, 6),
        ("b/c/", True, None),
    ]
    assert listing(prefix="b") == [("b/", True, None), ("bz.txt", False, 6)]
    assert [n for n, _, _ in listing(prefix="b/", recursive=True)] == [
        "b/1.txt",
        "b/2.txt",
        "b/c/3.txt",
        "b/c/4.txt",
    ]
    assert [n for n, _, _ in listing(recursive=True)] == sorted(keys)
    # ListObjects v1 and start_after.
    assert [n for n, _, _ in listing(recursive=True, use_api_v1=True)] == sorted(keys)
    assert [n for n, _, _ in listing(recursive=True, start_after="b/c/3.txt")] == [
        "b/c/4.txt",
        "bz.txt",
        "d/e/f.txt",
    ]
    assert listing(prefix="nothing/") == []


def test_metadata_copy_and_tags(mc, mbucket):
    body = b"metadata body\n" * 100
    put_bytes(
        mc,
        mbucket,
        "src.txt",
        body,
        content_type="text/plain",
        metadata={"x-amz-meta-color": "blue", "Project": "tessera"},
    )
    st = mc.stat_object(mbucket, "src.txt")
    assert st.content_type == "text/plain"
    assert st.metadata["x-amz-meta-color"] == "blue"
    assert st.metadata["x-amz-meta-project"] == "tessera"

    # copy_object with the default (COPY) directive keeps the metadata.
    mc.copy_object(mbucket, "copy1.txt", CopySource(mbucket, "src.txt"))
    st1 = mc.stat_object(mbucket, "copy1.txt")
    assert st1.metadata["x-amz-meta-color"] == "blue"
    assert st1.content_type == "text/plain"
    assert st1.etag == st.etag
    assert get_bytes(mc, mbucket, "copy1.txt") == body

    # REPLACE directive: new metadata only.
    mc.copy_object(
        mbucket,
        "copy2.txt",
        CopySource(mbucket, "src.txt"),
        metadata={"x-amz-meta-color": "red", "Content-Type": "application/x-copied"},
        metadata_directive=REPLACE,
    )
    st2 = mc.stat_object(mbucket, "copy2.txt")
    assert st2.metadata["x-amz-meta-color"] == "red"
    assert "x-amz-meta-project" not in st2.metadata
    assert st2.content_type == "application/x-copied"
    assert get_bytes(mc, mbucket, "copy2.txt") == body

    # Conditional copy source (x-amz-copy-source-if-match).
    mc.copy_object(mbucket, "copy3.txt", CopySource(mbucket, "src.txt", match_etag=st.etag))
    with pytest.raises(S3Error) as exc:
        mc.copy_object(mbucket, "copy4.txt", CopySource(mbucket, "src.txt", match_etag='"0000"'))
    assert exc.value.code == "PreconditionFailed"

    # Object tags.
    assert mc.get_object_tags(mbucket, "src.txt") is None
    tags = Tags.new_object_tags()
    tags["env"] = "test"
    tags["owner"] = "compat suite"
    mc.set_object_tags(mbucket, "src.txt", tags)
    got = mc.get_object_tags(mbucket, "src.txt")
    assert dict(got) == {"env": "test", "owner": "compat suite"}
    # Like S3, GET (not HEAD) reports the tag count.
    resp = mc.get_object(mbucket, "src.txt")
    try:
        assert resp.headers.get("x-amz-tagging-count") == "2"
        assert resp.read() == body
    finally:
        resp.close()
        resp.release_conn()

    # Tags given at upload time, and copied with tagging_directive COPY (the default).
    t2 = Tags.new_object_tags()
    t2["k"] = "v"
    put_bytes(mc, mbucket, "tagged.txt", b"t", tags=t2)
    assert dict(mc.get_object_tags(mbucket, "tagged.txt")) == {"k": "v"}
    mc.copy_object(mbucket, "tagged-copy.txt", CopySource(mbucket, "tagged.txt"))
    assert dict(mc.get_object_tags(mbucket, "tagged-copy.txt")) == {"k": "v"}
    t3 = Tags.new_object_tags()
    t3["k"] = "replaced"
    mc.copy_object(mbucket, "tagged-copy2.txt", CopySource(mbucket, "tagged.txt"), tags=t3, tagging_directive=REPLACE)
    assert dict(mc.get_object_tags(mbucket, "tagged-copy2.txt")) == {"k": "replaced"}

    mc.delete_object_tags(mbucket, "src.txt")
    assert mc.get_object_tags(mbucket, "src.txt") is None


def test_versioning(mc, mbucket):
    # Never-versioned bucket: an empty <VersioningConfiguration/> (minio reports None,
    # older releases "Off").
    assert mc.get_bucket_versioning(mbucket).status in (None, "Off")
    mc.set_bucket_versioning(mbucket, VersioningConfig(ENABLED))
    assert mc.get_bucket_versioning(mbucket).status == ENABLED

    v1 = put_bytes(mc, mbucket, "doc.txt", b"version one").version_id
    v2 = put_bytes(mc, mbucket, "doc.txt", b"version two!").version_id
    assert v1 and v2 and v1 != v2
    assert get_bytes(mc, mbucket, "doc.txt") == b"version two!"
    assert get_bytes(mc, mbucket, "doc.txt", version_id=v1) == b"version one"
    assert mc.stat_object(mbucket, "doc.txt", version_id=v1).size == len(b"version one")

    # Plain delete -> a delete marker; the versions remain readable by id.
    mc.remove_object(mbucket, "doc.txt")
    with pytest.raises(S3Error) as exc:
        mc.stat_object(mbucket, "doc.txt")
    assert exc.value.code == "NoSuchKey"
    assert exc.value.response.status == 404
    assert exc.value.response.headers.get("x-amz-delete-marker") == "true"

    versions = list(mc.list_objects(mbucket, include_version=True, recursive=True))
    assert [o.object_name for o in versions] == ["doc.txt"] * 3
    markers = [o for o in versions if o.is_delete_marker]
    assert len(markers) == 1 and markers[0].is_latest == "true"
    data_versions = {o.version_id: o.size for o in versions if not o.is_delete_marker}
    assert data_versions == {v1: len(b"version one"), v2: len(b"version two!")}
    # The non-versioned listing hides the deleted key.
    assert list(mc.list_objects(mbucket, recursive=True)) == []

    # Removing the marker restores the latest version.
    mc.remove_object(mbucket, "doc.txt", version_id=markers[0].version_id)
    assert get_bytes(mc, mbucket, "doc.txt") == b"version two!"
    # Removing a specific version permanently.
    mc.remove_object(mbucket, "doc.txt", version_id=v2)
    assert get_bytes(mc, mbucket, "doc.txt") == b"version one"
    versions = list(mc.list_objects(mbucket, include_version=True, recursive=True))
    assert [(o.version_id, o.is_latest) for o in versions] == [(v1, "true")]

    # Copy from a specific source version.
    v3 = put_bytes(mc, mbucket, "doc.txt", b"three").version_id
    mc.copy_object(mbucket, "old.txt", CopySource(mbucket, "doc.txt", version_id=v1))
    assert get_bytes(mc, mbucket, "old.txt") == b"version one"
    assert get_bytes(mc, mbucket, "doc.txt") == b"three" and v3 not in (v1, v2)

    # Versions listing with a delimiter (recursive=False) and a prefix.
    put_bytes(mc, mbucket, "dir/a", b"a1")
    put_bytes(mc, mbucket, "dir/a", b"a2")
    put_bytes(mc, mbucket, "dir/sub/b", b"b")
    top = sorted((o.object_name, o.is_dir) for o in mc.list_objects(mbucket, include_version=True))
    assert top == [("dir/", True), ("doc.txt", False), ("doc.txt", False), ("old.txt", False)]
    inner = list(mc.list_objects(mbucket, prefix="dir/", include_version=True))
    assert sorted((o.object_name, o.size, o.is_dir) for o in inner) == [
        ("dir/a", 2, False),
        ("dir/a", 2, False),
        ("dir/sub/", None, True),
    ]
    assert sorted(o.is_latest for o in inner if not o.is_dir) == ["false", "true"]

    mc.set_bucket_versioning(mbucket, VersioningConfig(SUSPENDED))
    assert mc.get_bucket_versioning(mbucket).status == SUSPENDED
    res = put_bytes(mc, mbucket, "doc.txt", b"null version")
    assert res.version_id in (None, "null")
    assert get_bytes(mc, mbucket, "doc.txt", version_id="null") == b"null version"


def test_presigned_urls(mc, mbucket, random_bytes):
    body = random_bytes(300 * KiB + 1, "minio-presign")
    url = mc.presigned_put_object(mbucket, "pre/up.bin", expires=timedelta(minutes=5))
    assert "X-Amz-Signature=" in url and url.startswith("http://127.0.0.1:")
    req = urllib.request.Request(url, data=body, method="PUT")
    with _OPENER.open(req, timeout=30) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    assert get_bytes(mc, mbucket, "pre/up.bin") == body

    url = mc.presigned_get_object(mbucket, "pre/up.bin", expires=timedelta(minutes=5))
    with _OPENER.open(url, timeout=30) as resp:
        assert resp.status == 200
        assert resp.read() == body

    # Response header overrides are signed into the URL.
    url = mc.presigned_get_object(
        mbucket,
        "pre/up.bin",
        expires=timedelta(minutes=5),
        response_headers={"response-content-type": "text/csv", "response-content-disposition": "attachment"},
    )
    with _OPENER.open(url, timeout=30) as resp:
        assert resp.headers["Content-Type"] == "text/csv"
        assert resp.headers["Content-Disposition"] == "attachment"
        assert resp.read() == body

    # A range on a presigned GET.
    req = urllib.request.Request(url, headers={"Range": "bytes=10-19"})
    with _OPENER.open(req, timeout=30) as resp:
        assert resp.status == 206
        assert resp.read() == body[10:20]

    # Tampering with the signed URL is rejected.
    bad = url.replace("pre/up.bin", "pre/other.bin")
    with pytest.raises(urllib.error.HTTPError) as exc:
        _OPENER.open(bad, timeout=30)
    assert exc.value.code == 403
    assert b"SignatureDoesNotMatch" in exc.value.read()


def multipart_form(fields: dict[str, str], data: bytes) -> tuple[bytes, str]:
    boundary = "----minio" + uuid.uuid4().hex
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'.encode()
    out += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def test_presigned_post_policy(mc, mbucket, server, random_bytes):
    policy = PostPolicy(mbucket, datetime.now(timezone.utc) + timedelta(minutes=5))
    policy.add_starts_with_condition("key", "uploads/")
    policy.add_content_length_range_condition(1, 64 * KiB)
    form = mc.presigned_post_policy(policy)
    assert form["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    url = f"{server.url}/{mbucket}"

    def post(key: str, data: bytes) -> int:
        body, ctype = multipart_form({**form, "key": key}, data)
        req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype})
        try:
            with _OPENER.open(req, timeout=30) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            assert b"<Code>" in exc.read()
            return exc.code

    data = random_bytes(10 * KiB + 3, "minio-post")
    assert post("uploads/a.bin", data) == 204
    assert get_bytes(mc, mbucket, "uploads/a.bin") == data
    assert post("elsewhere/a.bin", data) == 403  # key outside the policy
    assert post("uploads/big.bin", random_bytes(64 * KiB + 1, "x")) == 400  # EntityTooLarge
    assert [o.object_name for o in mc.list_objects(mbucket, recursive=True)] == ["uploads/a.bin"]


def test_bad_credentials(server, bucket_name):
    for access, secret, code in [
        ("nobody", ROOT_PASSWORD, "InvalidAccessKeyId"),
        (ROOT_USER, "wrong-secret", "SignatureDoesNotMatch"),
    ]:
        bad = Minio(f"127.0.0.1:{server.port}", access_key=access, secret_key=secret, secure=False, region=REGION)
        with pytest.raises(S3Error) as exc:
            bad.make_bucket(bucket_name)
        assert exc.value.code == code
        assert exc.value.response.status == 403
    anon = Minio(f"127.0.0.1:{server.port}", secure=False, region=REGION)
    with pytest.raises(S3Error) as exc:
        list(anon.list_buckets())
    assert exc.value.response.status == 403


def test_remove_objects(mc, mbucket):
    keys = [f"rm/{i:03d}" for i in range(25)] + ["keep"]
    for k in keys:
        put_bytes(mc, mbucket, k, k.encode())
    mc.remove_object(mbucket, "rm/000")
    mc.remove_object(mbucket, "does/not/exist")  # S3 semantics: deleting a missing key succeeds
    errors = list(mc.remove_objects(mbucket, [DeleteObject(k) for k in keys[1:25]] + [DeleteObject("missing")]))
    assert errors == []
    assert [o.object_name for o in mc.list_objects(mbucket, recursive=True)] == ["keep"]
    mc.remove_object(mbucket, "keep")
    mc.remove_bucket(mbucket)
    assert not mc.bucket_exists(mbucket)
