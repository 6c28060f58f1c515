"""obstore (PyPI ``obstore``: Python bindings of the Rust ``object_store`` crate) end-to-end.

``S3Store`` in path style over plain http. Scenario: put (small, with attributes and tags),
multipart puts (a large bytes object, an iterator, a buffered writer), conditional puts
(mode="create" / update by ETag), byte-exact get, ranged gets (tuple, offset, suffix,
get_range, get_ranges), conditional gets, list with prefix/offset, list_with_delimiter,
copy (plain and copy-if-not-exists via a conditional multipart copy), rename, head,
delete (single and bulk), SHA256 flexible checksums on every upload, and presigned URLs.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.error
import urllib.request
from datetime import timedelta

import pytest

from conftest import REGION, ROOT_PASSWORD, ROOT_USER

obs = pytest.importorskip("obstore", reason="pip install -r compat-tests/requirements.txt")
from obstore.exceptions import (  # noqa: E402
    AlreadyExistsError,
    NotModifiedError,
    PreconditionError,
)
from obstore.store import S3Store  # noqa: E402

# obstore raises the builtin FileNotFoundError for a missing object (404).

KiB = 1024
MiB = 1024 * 1024

pytestmark = pytest.mark.timeout(120)

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sha256(data) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()


def make_store(server, bucket: str, **config) -> S3Store:
    return S3Store(
        bucket,
        endpoint=server.url,
        region=REGION,
        access_key_id=ROOT_USER,
        secret_access_key=ROOT_PASSWORD,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "timeout": "120s"},
        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=10)},
        **config,
    )


@pytest.fixture
def obucket(server, s3, bucket_name):
    s3(server).create_bucket(Bucket=bucket_name)
    return bucket_name


@pytest.fixture
def store(server, obucket):
    return make_store(server, obucket)


def test_put_get_head_small(store, server, s3, obucket):
    body = b"hello obstore\n" * 100
    res = obs.put(
        store,
        "docs/hello.txt",
        body,
        attributes={"Content-Type": "text/plain", "Cache-Control": "no-cache", "color": "blue"},
        tags={"team": "storage", "tier": "hot"},
    )
    assert res["e_tag"].strip('"') == hashlib.md5(body).hexdigest()

    got = obs.get(store, "docs/hello.txt")
    assert got.bytes().to_bytes() == body
    assert got.meta["size"] == len(body)
    assert got.meta["e_tag"] == res["e_tag"]
    attrs = got.attributes
    assert attrs["Content-Type"] == "text/plain"
    assert attrs["Cache-Control"] == "no-cache"
    assert attrs["color"] == "blue"

    meta = obs.head(store, "docs/hello.txt")
    assert meta["path"] == "docs/hello.txt" and meta["size"] == len(body)
    assert meta["e_tag"] == res["e_tag"]

    # Attributes and tags as any S3 client sees them.
    client = s3(server)
    head = client.head_object(Bucket=obucket, Key="docs/hello.txt")
    assert head["Metadata"] == {"color": "blue"}
    assert head["ContentType"] == "text/plain"
    tags = client.get_object_tagging(Bucket=obucket, Key="docs/hello.txt")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("team", "storage"), ("tier", "hot")]

    # Empty object and a missing one.
    obs.put(store, "empty", b"")
    assert obs.get(store, "empty").bytes().to_bytes() == b""
    assert obs.head(store, "empty")["size"] == 0
    with pytest.raises(FileNotFoundError):
        obs.get(store, "missing")
    with pytest.raises(FileNotFoundError):
        obs.head(store, "missing")


def test_multipart_puts_and_ranges(store, server, s3, obucket, random_bytes):
    big = random_bytes(23 * MiB + 321, "obstore-big")
    # A large bytes object, split into 5 MiB parts uploaded concurrently.
    obs.put(store, "big/bytes.bin", big, use_multipart=True, chunk_size=5 * MiB, max_concurrency=4)
    head = s3(server).head_object(Bucket=obucket, Key="big/bytes.bin")
    assert head["ContentLength"] == len(big)
    assert head["ETag"].strip('"').endswith("-5"), head["ETag"]
    assert sha256(obs.get(store, "big/bytes.bin").bytes()) == sha256(big)

    # An iterator of odd-sized buffers (always multipart).
    chunks = [big[i : i + 3 * MiB + 17] for i in range(0, 12 * MiB, 3 * MiB + 17)]
    iter_body = b"".join(chunks)
    obs.put(store, "big/iter.bin", iter(chunks), chunk_size=5 * MiB)
    assert s3(server).head_object(Bucket=obucket, Key="big/iter.bin")["ETag"].strip('"').endswith("-3")
    assert sha256(obs.get(store, "big/iter.bin").bytes()) == sha256(iter_body)

    # The buffered writer (multipart once the buffer fills).
    with obs.open_writer(store, "big/writer.bin", buffer_size=5 * MiB) as w:
        for i in range(0, 11 * MiB, 1 * MiB):
            w.write(big[i : i + 1 * MiB])
    assert sha256(obs.get(store, "big/writer.bin").bytes()) == sha256(big[: 11 * MiB])

    # Ranges across part boundaries.
    start = 5 * MiB - 1000
    assert obs.get_range(store, "big/bytes.bin", start=start, end=start + 3000).to_bytes() == big[start : start + 3000]
    assert obs.get_range(store, "big/bytes.bin", start=7, length=9).to_bytes() == big[7:16]
    got = obs.get(store, "big/bytes.bin", options={"range": (10 * MiB, 10 * MiB + 5)})
    assert got.range == (10 * MiB, 10 * MiB + 5)
    assert got.bytes().to_bytes() == big[10 * MiB : 10 * MiB + 5]
    got = obs.get(store, "big/bytes.bin", options={"range": {"offset": len(big) - 100}})
    assert got.bytes().to_bytes() == big[-100:]
    got = obs.get(store, "big/bytes.bin", options={"range": {"suffix": 64}})
    assert got.bytes().to_bytes() == big[-64:]
    ranges = obs.get_ranges(store, "big/bytes.bin", starts=[0, 6 * MiB, len(big) - 3], ends=[4, 6 * MiB + 4, len(big)])
    assert [r.to_bytes() for r in ranges] == [big[0:4], big[6 * MiB : 6 * MiB + 4], big[-3:]]


def test_conditional_put_and_get(store):
    res1 = obs.put(store, "cond.txt", b"first", mode="create")
    with pytest.raises(AlreadyExistsError):
        obs.put(store, "cond.txt", b"second", mode="create")
    assert obs.get(store, "cond.txt").bytes().to_bytes() == b"first"

    # Update only if the ETag still matches (If-Match on PUT).
    res2 = obs.put(store, "cond.txt", b"updated", mode={"e_tag": res1["e_tag"]})
    assert res2["e_tag"] != res1["e_tag"]
    with pytest.raises(PreconditionError):
        obs.put(store, "cond.txt", b"stale writer", mode={"e_tag": res1["e_tag"]})
    assert obs.get(store, "cond.txt").bytes().to_bytes() == b"updated"

    with pytest.raises(NotModifiedError):
        obs.get(store, "cond.txt", options={"if_none_match": res2["e_tag"]})
    with pytest.raises(PreconditionError):
        obs.get(store, "cond.txt", options={"if_match": res1["e_tag"]})
    got = obs.get(store, "cond.txt", options={"if_match": res2["e_tag"]})
    assert got.bytes().to_bytes() == b"updated"
    lm = got.meta["last_modified"]
    with pytest.raises(NotModifiedError):
        obs.get(store, "cond.txt", options={"if_modified_since": lm})
    with pytest.raises(PreconditionError):
        obs.get(store, "cond.txt", options={"if_unmodified_since": lm - timedelta(hours=1)})


def test_list_and_list_with_delimiter(store):
    keys = ["a.txt", "b/1.txt", "b/2.txt", "b/c/3.txt", "bz.txt", "d/e/f.txt"]
    for k in keys:
        obs.put(store, k, k.encode())

    everything = [m for chunk in obs.list(store, chunk_size=2) for m in chunk]
    assert sorted(m["path"] for m in everything) == sorted(keys)
    assert {m["path"]: m["size"] for m in everything} == {k: len(k) for k in keys}
    under_b = obs.list(store, prefix="b").collect()
    # object_store prefixes are path segments: "b" means "b/...", not "bz.txt".
    assert sorted(m["path"] for m in under_b) == ["b/1.txt", "b/2.txt", "b/c/3.txt"]
    after = obs.list(store, offset="b/2.txt").collect()
    assert sorted(m["path"] for m in after) == ["b/c/3.txt", "bz.txt", "d/e/f.txt"]

    top = obs.list_with_delimiter(store)
    assert sorted(top["common_prefixes"]) == ["b", "d"]
    assert sorted(m["path"] for m in top["objects"]) == ["a.txt", "bz.txt"]
    inner = obs.list_with_delimiter(store, prefix="b")
    assert inner["common_prefixes"] == ["b/c"]
    assert sorted(m["path"] for m in inner["objects"]) == ["b/1.txt", "b/2.txt"]
    assert obs.list_with_delimiter(store, prefix="nothing") == {"common_prefixes": [], "objects": []}


def test_copy_rename_delete(store, server, obucket, random_bytes):
    body = random_bytes(200 * KiB + 1, "obstore-copy")
    obs.put(store, "src/obj.bin", body, attributes={"Content-Type": "application/x-src", "k": "v"})
    obs.copy(store, "src/obj.bin", "dst/copy.bin")
    got = obs.get(store, "dst/copy.bin")
    assert got.bytes().to_bytes() == body
    assert got.attributes["Content-Type"] == "application/x-src" and got.attributes["k"] == "v"

    # copy(overwrite=False) needs a "copy if not exists" strategy on S3: the multipart one
    # copies with UploadPartCopy and completes with If-None-Match: *.
    nx = make_store(server, obucket, copy_if_not_exists="multipart")
    obs.copy(nx, "src/obj.bin", "dst/nx.bin", overwrite=False)
    assert obs.get(store, "dst/nx.bin").bytes().to_bytes() == body
    with pytest.raises(AlreadyExistsError):
        obs.copy(nx, "src/obj.bin", "dst/copy.bin", overwrite=False)
    with pytest.raises(FileNotFoundError):
        obs.copy(store, "src/missing", "dst/x")

    obs.rename(store, "dst/copy.bin", "dst/renamed.bin")
    with pytest.raises(FileNotFoundError):
        obs.head(store, "dst/copy.bin")
    assert obs.get(store, "dst/renamed.bin").bytes().to_bytes() == body

    obs.delete(store, "src/obj.bin")
    with pytest.raises(FileNotFoundError):
        obs.head(store, "src/obj.bin")
    obs.delete(store, "src/obj.bin")  # deleting a missing key is not an error on S3
    for i in range(30):
        obs.put(store, f"bulk/{i:02d}", b"x")
    obs.delete(store, [f"bulk/{i:02d}" for i in range(30)])  # DeleteObjects
    assert obs.list(store, prefix="bulk").collect() == []
    assert sorted(m["path"] for m in obs.list(store).collect()) == ["dst/nx.bin", "dst/renamed.bin"]


def test_checksums_and_presigned_urls(server, s3, obucket, random_bytes):
    store = make_store(server, obucket, checksum_algorithm="SHA256")
    small = random_bytes(1000, "obstore-ck")
    obs.put(store, "ck/small", small)
    big = random_bytes(11 * MiB, "obstore-ck-big")
    obs.put(store, "ck/big", big, use_multipart=True, chunk_size=5 * MiB)
    client = s3(server)
    head = client.head_object(Bucket=obucket, Key="ck/small", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(small).digest()).decode()
    head = client.head_object(Bucket=obucket, Key="ck/big", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"].endswith("-3"), head  # composite checksum of 3 parts
    assert sha256(obs.get(store, "ck/big").bytes()) == sha256(big)

    plain = make_store(server, obucket)
    url = obs.sign(plain, "PUT", "pre/up.bin", timedelta(minutes=5))
    assert "X-Amz-Signature=" in url and "/" + obucket + "/pre/up.bin" in url
    req = urllib.request.Request(url, data=small, method="PUT")
    with _OPENER.open(req, timeout=30) as resp:
        assert resp.status == 200
    url = obs.sign(plain, "GET", "pre/up.bin", timedelta(minutes=5))
    with _OPENER.open(url, timeout=30) as resp:
        assert resp.read() == small
    with pytest.raises(urllib.error.HTTPError) as exc:
        _OPENER.open(url.replace("pre/up.bin", "pre/other.bin"), timeout=30)
    assert exc.value.code == 403
