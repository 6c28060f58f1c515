"""Multipart uploads, with AWS S3 as the spec: aws-cli and boto3 transfer-manager round trips,
the CompleteMultipartUpload / UploadPart error rules, ListParts and ListMultipartUploads
pagination, UploadPartCopy, GetObject/HeadObject with partNumber, composite checksums,
chunk dedup across upload methods, concurrent part uploads, abort releasing data, and the
server's expiry of abandoned uploads (``--multipart-expiry-secs``).

Shard-level checks use their own 4-disk server (``make_server(4)``) so that no other
test's objects or pending garbage collection can move the numbers; they measure the
bytes of the files under ``DIR/shards/`` as test_dedup_erasure.py does.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

KiB = 1024
MiB = 1024 * 1024
MIN_PART = 5 * MiB


# ---------------------------------------------------------------- helpers ---
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(4 * MiB), b""):
            h.update(block)
    return h.hexdigest()


def md5_etag(data: bytes) -> str:
    return '"%s"' % hashlib.md5(data).hexdigest()


def multipart_etag(parts: list[bytes]) -> str:
    """S3's multipart ETag: md5 of the concatenated binary part md5s, then -N."""
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return '"%s-%d"' % (digest, len(parts))


def status_of(resp) -> int:
    return resp["ResponseMetadata"]["HTTPStatusCode"]


def client_error(exc_info) -> tuple[str, int]:
    err = exc_info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def stamped_blocks(size: int, seed: str):
    """Unique 1 MiB blocks, cheap to make: one pseudo-random block with the block number
    stamped into its first 8 bytes (every block differs, so nothing dedups)."""
    base = bytearray(hashlib.shake_256(seed.encode()).digest(MiB))
    done = n = 0
    while done < size:
        base[:8] = n.to_bytes(8, "little")
        piece = bytes(base[: min(MiB, size - done)])
        done += len(piece)
        n += 1
        yield piece


def write_stamped_file(path: Path, size: int, seed: str) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        for block in stamped_blocks(size, seed):
            h.update(block)
            fh.write(block)
    return h.hexdigest()


def regular_files(root: Path):
    if not root.exists():
        return
    for dirpath, _dirnames, filenames in os.walk(root):
        for fn in filenames:
            p = Path(dirpath) / fn
            try:
                if p.is_file() and not p.is_symlink():
                    yield p
            except FileNotFoundError:  # removed by the GC while walking
                continue


def shard_bytes(dirs) -> int:
    total = 0
    for d in dirs:
        for p in regular_files(Path(d) / "shards"):
            try:
                total += p.lstat().st_size
            except FileNotFoundError:
                continue
    return total


def wait_until(predicate, timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def read_back(c, bucket, key, **kwargs) -> bytes:
    return c.get_object(Bucket=bucket, Key=key, **kwargs)["Body"].read()


def upload_parts(c, bucket, key, upload_id, parts: list[bytes], **kwargs) -> list[dict]:
    """Upload parts 1..N in order; returns the CompleteMultipartUpload parts list."""
    done = []
    for n, data in enumerate(parts, start=1):
        resp = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data, **kwargs)
        done.append({"PartNumber": n, "ETag": resp["ETag"]})
    return done


def complete(c, bucket, key, upload_id, parts: list[dict], **kwargs):
    return c.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **kwargs
    )


def multipart_object(c, bucket, key, parts: list[bytes], **create_kwargs) -> dict:
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key, **create_kwargs)["UploadId"]
    done = upload_parts(c, bucket, key, upload_id, parts)
    return complete(c, bucket, key, upload_id, done)


@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server)


@pytest.fixture(scope="module")
def bucket(c, new_bucket_name):
    name = new_bucket_name("multipart")
    c.create_bucket(Bucket=name)
    return name


# ============================================== 1. aws-cli 200 MiB cp ===
def test_awscli_cp_200mib_roundtrip(server, awscli, c, bucket, tmp_path):
    size = 200 * MiB
    src = tmp_path / "up.bin"
    dst = tmp_path / "down.bin"
    want = write_stamped_file(src, size, "awscli-200mib")
    key = "cli/200mib.bin"
    try:
        awscli(server, "s3", "cp", str(src), f"s3://{bucket}/{key}", "--only-show-errors")
        head = c.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == size
        # aws-cli's default multipart_threshold / multipart_chunksize is 8 MiB: 25 parts.
        assert re.fullmatch(r'"[0-9a-f]{32}-25"', head["ETag"]), head["ETag"]
        awscli(server, "s3", "cp", f"s3://{bucket}/{key}", str(dst), "--only-show-errors")
        assert dst.stat().st_size == size
        assert file_sha256(dst) == want
    finally:
        src.unlink(missing_ok=True)
        dst.unlink(missing_ok=True)


# ======================================= 2. boto3 transfer manager ===
TRANSFER = TransferConfig(multipart_threshold=16 * MiB, multipart_chunksize=16 * MiB, max_concurrency=8)


def test_transfer_manager_upload_file_roundtrip(c, bucket, tmp_path):
    size = 100 * MiB + 12345  # 7 parts, the last one partial
    src = tmp_path / "tm.bin"
    want = write_stamped_file(src, size, "transfer-100mib")
    key = "tm/upload_file.bin"
    try:
        c.upload_file(str(src), bucket, key, Config=TRANSFER)
    finally:
        src.unlink(missing_ok=True)
    head = c.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == size
    assert re.fullmatch(r'"[0-9a-f]{32}-7"', head["ETag"]), head["ETag"]
    out = io.BytesIO()
    c.download_fileobj(bucket, key, out, Config=TRANSFER)
    assert out.getbuffer().nbytes == size
    assert hashlib.sha256(out.getbuffer()).hexdigest() == want


def test_transfer_manager_upload_fileobj_roundtrip(c, bucket, random_bytes):
    data = random_bytes(40 * MiB + 7, "transfer-fileobj")  # 3 parts
    key = "tm/upload_fileobj.bin"
    c.upload_fileobj(io.BytesIO(data), bucket, key, Config=TRANSFER)
    head = c.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == multipart_etag([data[i : i + 16 * MiB] for i in range(0, len(data), 16 * MiB)])
    out = io.BytesIO()
    c.download_fileobj(bucket, key, out, Config=TRANSFER)
    assert sha256(out.getvalue()) == sha256(data)


# ====================================================== 3. error rules ===
@pytest.mark.parametrize("number", [0, 10001, -1])
def test_part_number_out_of_range(c, bucket, number):
    key = f"err/partnumber-{number}"
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    with pytest.raises(ClientError) as exc:
        c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=b"data")
    assert client_error(exc) == ("InvalidArgument", 400)
    # The bounds themselves are valid part numbers.
    for ok in (1, 10000):
        c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=ok, Body=b"x")
    listed = c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 10000]
    c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def test_complete_with_small_non_last_part_is_entity_too_small(c, bucket, random_bytes):
    key = "err/too-small"
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = [random_bytes(MIN_PART - 1, "small-1"), random_bytes(1 * MiB, "small-2")]
    done = upload_parts(c, bucket, key, upload_id, parts)
    with pytest.raises(ClientError) as exc:
        complete(c, bucket, key, upload_id, done)
    assert client_error(exc) == ("EntityTooSmall", 400)
    # A failed completion leaves the upload in place, and no object was created.
    assert len(c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]) == 2
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key=key)
    assert status_of(exc.value.response) == 404
    # Replacing part 1 with a 5 MiB one makes the same list completable.
    done[0]["ETag"] = c.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=random_bytes(MIN_PART, "small-1b")
    )["ETag"]
    complete(c, bucket, key, upload_id, done)
    assert c.head_object(Bucket=bucket, Key=key)["ContentLength"] == MIN_PART + 1 * MiB


def test_complete_with_wrong_or_missing_part_is_invalid_part(c, bucket, random_bytes):
    key = "err/invalid-part"
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = [random_bytes(MIN_PART, "ip-1"), random_bytes(100 * KiB, "ip-2")]
    done = upload_parts(c, bucket, key, upload_id, parts)

    wrong_etag = [done[0], {"PartNumber": 2, "ETag": md5_etag(b"something else")}]
    with pytest.raises(ClientError) as exc:
        complete(c, bucket, key, upload_id, wrong_etag)
    assert client_error(exc) == ("InvalidPart", 400)

    never_uploaded = [done[0], {"PartNumber": 3, "ETag": done[1]["ETag"]}]
    with pytest.raises(ClientError) as exc:
        complete(c, bucket, key, upload_id, never_uploaded)
    assert client_error(exc) == ("InvalidPart", 400)

    complete(c, bucket, key, upload_id, done)
    assert sha256(read_back(c, bucket, key)) == sha256(b"".join(parts))


def test_complete_with_parts_out_of_order_is_invalid_part_order(c, bucket, random_bytes):
    key = "err/order"
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = upload_parts(c, bucket, key, upload_id, [random_bytes(MIN_PART, "o-1"), random_bytes(MIN_PART, "o-2")])
    with pytest.raises(ClientError) as exc:
        complete(c, bucket, key, upload_id, [done[1], done[0]])
    assert client_error(exc) == ("InvalidPartOrder", 400)
    c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def test_unknown_upload_id_is_no_such_upload(c, bucket):
    key = "err/no-such-upload"
    bogus = "0123456789abcdef0123456789abcdef"
    calls = {
        "UploadPart": lambda: c.upload_part(Bucket=bucket, Key=key, UploadId=bogus, PartNumber=1, Body=b"x"),
        "CompleteMultipartUpload": lambda: complete(
            c, bucket, key, bogus, [{"PartNumber": 1, "ETag": md5_etag(b"x")}]
        ),
        "AbortMultipartUpload": lambda: c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=bogus),
        "ListParts": lambda: c.list_parts(Bucket=bucket, Key=key, UploadId=bogus),
    }
    for name, call in calls.items():
        with pytest.raises(ClientError) as exc:
            call()
        assert client_error(exc) == ("NoSuchUpload", 404), name

    # An upload id is bound to its key: a real id under another key is unknown too.
    real = c.create_multipart_upload(Bucket=bucket, Key=key + "/real")["UploadId"]
    with pytest.raises(ClientError) as exc:
        c.upload_part(Bucket=bucket, Key=key + "/other", UploadId=real, PartNumber=1, Body=b"x")
    assert client_error(exc) == ("NoSuchUpload", 404)
    c.abort_multipart_upload(Bucket=bucket, Key=key + "/real", UploadId=real)


def test_reuploading_a_part_replaces_it(c, bucket, random_bytes):
    key = "err/reupload"
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    first = random_bytes(MIN_PART, "re-1-old")
    second = random_bytes(MIN_PART + 3, "re-1-new")
    last = random_bytes(2 * MiB + 1, "re-2")
    old_etag = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=first)["ETag"]
    new_etag = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=second)["ETag"]
    assert (old_etag, new_etag) == (md5_etag(first), md5_etag(second))
    last_etag = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=last)["ETag"]

    listed = c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed] == [
        (1, len(second), new_etag),
        (2, len(last), last_etag),
    ]
    # The replaced part's ETag is no longer valid.
    with pytest.raises(ClientError) as exc:
        complete(c, bucket, key, upload_id, [{"PartNumber": 1, "ETag": old_etag}, {"PartNumber": 2, "ETag": last_etag}])
    assert client_error(exc) == ("InvalidPart", 400)

    resp = complete(c, bucket, key, upload_id, [{"PartNumber": 1, "ETag": new_etag}, {"PartNumber": 2, "ETag": last_etag}])
    expected_etag = multipart_etag([second, last])
    assert resp["ETag"] == expected_etag
    got = c.get_object(Bucket=bucket, Key=key)
    assert got["ETag"] == expected_etag
    assert got["ContentLength"] == len(second) + len(last)
    assert sha256(got["Body"].read()) == sha256(second + last)


def test_complete_with_empty_parts_list_is_rejected(c, bucket, random_bytes):
    key = "err/empty-list"
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=random_bytes(1000, "e"))
    with pytest.raises(ClientError) as exc:
        complete(c, bucket, key, upload_id, [])
    assert client_error(exc) in {("MalformedXML", 400), ("InvalidRequest", 400)}
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key=key)
    assert status_of(exc.value.response) == 404
    c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


# ================================================ 4. ListParts paging ===
def test_list_parts_pagination(c, bucket):
    key = "listparts/seven"
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    sizes = {n: 1000 + 37 * n for n in range(1, 8)}
    sizes[7] = 11  # the last one small
    etags = {}
    for n in (4, 1, 7, 3, 6, 2, 5):  # uploaded out of order, listed by part number
        data = hashlib.shake_256(f"part-{n}".encode()).digest(sizes[n])
        etags[n] = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data)["ETag"]
        assert etags[n] == md5_etag(data)

    seen, pages, marker = [], [], None
    while True:
        kwargs = {"PartNumberMarker": marker} if marker is not None else {}
        page = c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=3, **kwargs)
        assert page["MaxParts"] == 3
        assert page["UploadId"] == upload_id and page["Key"] == key
        assert page.get("PartNumberMarker", 0) == (marker or 0)
        nums = [p["PartNumber"] for p in page.get("Parts", [])]
        pages.append((nums, page["IsTruncated"]))
        for p in page.get("Parts", []):
            seen.append((p["PartNumber"], p["Size"], p["ETag"]))
        if not page["IsTruncated"]:
            break
        assert page["NextPartNumberMarker"] == nums[-1]
        marker = page["NextPartNumberMarker"]
        assert len(pages) < 10, pages
    assert pages == [([1, 2, 3], True), ([4, 5, 6], True), ([7], False)]
    assert seen == [(n, sizes[n], etags[n]) for n in range(1, 8)]

    # A marker in the middle starts after it.
    rest = c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=5)
    assert [p["PartNumber"] for p in rest["Parts"]] == [6, 7]
    assert rest["IsTruncated"] is False
    c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


# ======================================= 5. ListMultipartUploads ===
def uploads_of(resp) -> list[tuple[str, str]]:
    return [(u["Key"], u["UploadId"]) for u in resp.get("Uploads", [])]


def test_list_multipart_uploads(c, new_bucket_name):
    b = new_bucket_name("uploads")
    c.create_bucket(Bucket=b)

    def create(key):
        return c.create_multipart_upload(Bucket=b, Key=key)["UploadId"]

    # Created in neither key nor id order; the two "a/1" uploads are initiated >1 s apart.
    a1_first = create("a/1")
    c_id = create("c")
    b1 = create("b/1")
    a2 = create("a/2")
    time.sleep(1.1)
    a1_second = create("a/1")
    # S3: sorted by key, and uploads of the same key by initiation time (ascending).
    expected = [("a/1", a1_first), ("a/1", a1_second), ("a/2", a2), ("b/1", b1), ("c", c_id)]

    full = c.list_multipart_uploads(Bucket=b)
    assert uploads_of(full) == expected
    assert full["IsTruncated"] is False
    assert full["Bucket"] == b
    for u in full["Uploads"]:
        assert u["Initiated"] is not None
    initiated = {u["UploadId"]: u["Initiated"] for u in full["Uploads"]}
    assert initiated[a1_first] < initiated[a1_second]

    assert uploads_of(c.list_multipart_uploads(Bucket=b, Prefix="a/")) == expected[:3]
    assert uploads_of(c.list_multipart_uploads(Bucket=b, Prefix="b")) == [("b/1", b1)]
    assert uploads_of(c.list_multipart_uploads(Bucket=b, Prefix="zzz")) == []

    grouped = c.list_multipart_uploads(Bucket=b, Delimiter="/")
    assert uploads_of(grouped) == [("c", c_id)]
    assert [p["Prefix"] for p in grouped.get("CommonPrefixes", [])] == ["a/", "b/"]
    in_a = c.list_multipart_uploads(Bucket=b, Prefix="a/", Delimiter="/")
    assert uploads_of(in_a) == expected[:3]
    assert not in_a.get("CommonPrefixes")

    # KeyMarker alone: keys strictly after it. KeyMarker + UploadIdMarker: after that upload.
    assert uploads_of(c.list_multipart_uploads(Bucket=b, KeyMarker="a/1")) == expected[2:]
    assert uploads_of(c.list_multipart_uploads(Bucket=b, KeyMarker="a/1", UploadIdMarker=a1_first)) == expected[1:]
    assert uploads_of(c.list_multipart_uploads(Bucket=b, KeyMarker="a/1", UploadIdMarker=a1_second)) == expected[2:]

    for max_uploads in (2, 1):
        collected, kwargs, pages = [], {}, 0
        while True:
            page = c.list_multipart_uploads(Bucket=b, MaxUploads=max_uploads, **kwargs)
            pages += 1
            assert page["MaxUploads"] == max_uploads
            got = uploads_of(page)
            assert 0 < len(got) <= max_uploads, (max_uploads, got)
            collected += got
            if not page["IsTruncated"]:
                break
            assert (page["NextKeyMarker"], page["NextUploadIdMarker"]) == got[-1]
            kwargs = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
            assert pages <= len(expected), collected
        assert collected == expected, f"MaxUploads={max_uploads}"
        assert pages == -(-len(expected) // max_uploads)

    # Completed and aborted uploads leave the list.
    c.abort_multipart_upload(Bucket=b, Key="a/2", UploadId=a2)
    done = upload_parts(c, b, "c", c_id, [b"the only part"])
    complete(c, b, "c", c_id, done)
    assert read_back(c, b, "c") == b"the only part"
    assert uploads_of(c.list_multipart_uploads(Bucket=b)) == [("a/1", a1_first), ("a/1", a1_second), ("b/1", b1)]
    for key, uid in [("a/1", a1_first), ("a/1", a1_second), ("b/1", b1)]:
        c.abort_multipart_upload(Bucket=b, Key=key, UploadId=uid)
    assert uploads_of(c.list_multipart_uploads(Bucket=b)) == []


# ===================================================== 6. UploadPartCopy ===
def test_upload_part_copy_whole_and_range(c, bucket, random_bytes):
    src_key = "copy/source-12mib"
    src = random_bytes(12 * MiB, "copy-src")
    src_etag = c.put_object(Bucket=bucket, Key=src_key, Body=src)["ETag"]
    key = "copy/assembled"
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    source = {"Bucket": bucket, "Key": src_key}

    r1 = c.upload_part_copy(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, CopySource=source)
    first, last = 3 * MiB + 17, 9 * MiB + 4242
    r2 = c.upload_part_copy(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, CopySource=source,
        CopySourceRange=f"bytes={first}-{last}", CopySourceIfMatch=src_etag,
    )
    piece = src[first : last + 1]
    etags = [r1["CopyPartResult"]["ETag"], r2["CopyPartResult"]["ETag"]]

    listed = c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed] == [(1, len(src), etags[0]), (2, len(piece), etags[1])]

    resp = complete(c, bucket, key, upload_id, [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)])
    got = c.get_object(Bucket=bucket, Key=key)
    assert got["ContentLength"] == len(src) + len(piece)
    assert sha256(got["Body"].read()) == sha256(src + piece)
    assert got["ETag"] == resp["ETag"]
    # As in S3, a copied part's ETag is the MD5 of the copied bytes (so the object's ETag is
    # the same as if the bytes had been uploaded with UploadPart).
    assert etags == [md5_etag(src), md5_etag(piece)]
    assert resp["ETag"] == multipart_etag([src, piece])
    # The source is untouched.
    assert sha256(read_back(c, bucket, src_key)) == sha256(src)


def test_upload_part_copy_conditions_and_bad_range(c, bucket, random_bytes):
    src_key = "copy/cond-source"
    src = random_bytes(2 * MiB, "copy-cond")
    src_etag = c.put_object(Bucket=bucket, Key=src_key, Body=src)["ETag"]
    key = "copy/cond-dest"
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    source = {"Bucket": bucket, "Key": src_key}

    with pytest.raises(ClientError) as exc:
        c.upload_part_copy(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, CopySource=source,
                           CopySourceIfMatch=md5_etag(b"not the source"))
    assert client_error(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        c.upload_part_copy(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, CopySource=source,
                           CopySourceIfNoneMatch=src_etag)
    assert client_error(exc) == ("PreconditionFailed", 412)

    for bad in (f"bytes={len(src)}-{len(src) + 10}", f"bytes=0-{len(src)}"):
        with pytest.raises(ClientError) as exc:
            c.upload_part_copy(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, CopySource=source,
                               CopySourceRange=bad)
        code, status = client_error(exc)
        assert code in ("InvalidArgument", "InvalidRange"), (bad, code, status)
        assert status in ((400,) if code == "InvalidArgument" else (400, 416)), (bad, code, status)

    with pytest.raises(ClientError) as exc:
        c.upload_part_copy(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1,
                           CopySource={"Bucket": bucket, "Key": "copy/no-such-source"})
    assert client_error(exc) == ("NoSuchKey", 404)

    # None of the failed copies created a part; a matching condition succeeds.
    assert not c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts")
    ok = c.upload_part_copy(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, CopySource=source,
                            CopySourceIfMatch=src_etag)
    complete(c, bucket, key, upload_id, [{"PartNumber": 1, "ETag": ok["CopyPartResult"]["ETag"]}])
    assert read_back(c, bucket, key) == src


def test_upload_part_copy_of_aligned_range_dedups(make_server, s3, random_bytes):
    srv = make_server(4)
    c4 = s3(srv)
    c4.create_bucket(Bucket="pc-dedup")
    src = random_bytes(16 * MiB, "copy-dedup-src")
    c4.put_object(Bucket="pc-dedup", Key="src", Body=src)
    before = shard_bytes(srv.dirs)
    assert before >= len(src), before

    copied = 8 * MiB  # bytes=0-8388607: 1 MiB aligned, so the part's chunks are the source's
    upload_id = c4.create_multipart_upload(Bucket="pc-dedup", Key="dst")["UploadId"]
    r = c4.upload_part_copy(Bucket="pc-dedup", Key="dst", UploadId=upload_id, PartNumber=1,
                            CopySource={"Bucket": "pc-dedup", "Key": "src"}, CopySourceRange=f"bytes=0-{copied - 1}")
    complete(c4, "pc-dedup", "dst", upload_id, [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}])
    growth = shard_bytes(srv.dirs) - before
    assert growth < 0.05 * copied, f"UploadPartCopy of an aligned 8 MiB range grew shards by {growth} bytes"
    assert sha256(read_back(c4, "pc-dedup", "dst")) == sha256(src[:copied])
    assert sha256(read_back(c4, "pc-dedup", "src")) == sha256(src)


# ============================================= 7. GET/HEAD partNumber ===
@pytest.fixture(scope="module")
def three_part_object(c, bucket, random_bytes):
    key = "partnumber/three"
    parts = [random_bytes(MIN_PART, "pn-1"), random_bytes(MIN_PART + 17, "pn-2"), random_bytes(1 * MiB + 3, "pn-3")]
    etag = multipart_object(c, bucket, key, parts)["ETag"]
    return key, parts, etag


@pytest.mark.parametrize("number", [1, 2, 3])
def test_get_and_head_with_part_number(c, bucket, three_part_object, number):
    key, parts, etag = three_part_object
    total = sum(len(p) for p in parts)
    start = sum(len(p) for p in parts[: number - 1])
    part = parts[number - 1]
    content_range = f"bytes {start}-{start + len(part) - 1}/{total}"

    got = c.get_object(Bucket=bucket, Key=key, PartNumber=number)
    body = got["Body"].read()
    assert status_of(got) == 206
    assert got["ContentLength"] == len(part)
    assert got["ContentRange"] == content_range
    assert got["PartsCount"] == 3
    assert got["ETag"] == etag  # the whole object's ETag, not the part's
    assert len(body) == len(part) and sha256(body) == sha256(part)

    head = c.head_object(Bucket=bucket, Key=key, PartNumber=number)
    assert status_of(head) == 206
    assert head["ContentLength"] == len(part)
    assert head["ContentRange"] == content_range
    assert head["PartsCount"] == 3
    assert head["ETag"] == etag


def test_part_number_beyond_parts_count(c, bucket, three_part_object):
    key, _parts, _etag = three_part_object
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key=key, PartNumber=4)
    code, status = client_error(exc)
    # As AWS answers (issue 23): 400, not 416.
    assert (status, code) == (400, "InvalidPartNumber"), (code, status)
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key=key, PartNumber=4)
    assert status_of(exc.value.response) == 400


def test_part_number_one_of_plain_object_is_whole_object(c, bucket, random_bytes):
    for key, data in (("partnumber/plain-sharded", random_bytes(2 * MiB + 5, "pn-plain")),
                      ("partnumber/plain-inline", b"small inline object")):
        c.put_object(Bucket=bucket, Key=key, Body=data)
        got = c.get_object(Bucket=bucket, Key=key, PartNumber=1)
        assert got["ContentLength"] == len(data)
        assert got["Body"].read() == data
        # S3 treats it as a range covering the whole object: 206 with a Content-Range,
        # and no x-amz-mp-parts-count (the object has no parts).
        assert status_of(got) == 206
        assert got["ContentRange"] == f"bytes 0-{len(data) - 1}/{len(data)}"
        assert "PartsCount" not in got
        head = c.head_object(Bucket=bucket, Key=key, PartNumber=1)
        assert status_of(head) == 206
        assert head["ContentLength"] == len(data)
        assert head["ContentRange"] == f"bytes 0-{len(data) - 1}/{len(data)}"
        assert "PartsCount" not in head
    # A part number beyond 1 does not exist on a plain object.
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key="partnumber/plain-sharded", PartNumber=2)
    code, status = client_error(exc)
    assert (status, code) == (400, "InvalidPartNumber"), (code, status)


# ========================================================= 8. checksums ===
def _crc32_raw(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def _sha256_raw(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


RAW_CHECKSUM = {"SHA256": _sha256_raw, "CRC32": _crc32_raw}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("algo", ["SHA256", "CRC32"])
def test_multipart_composite_checksum(c, bucket, random_bytes, algo):
    raw = RAW_CHECKSUM[algo]
    member = f"Checksum{algo}"
    key = f"checksum/composite-{algo}"
    parts = [random_bytes(MIN_PART, f"ck-{algo}-1"), random_bytes(MIN_PART + 1, f"ck-{algo}-2"),
             random_bytes(300 * KiB, f"ck-{algo}-3")]
    created = c.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algo)
    assert created.get("ChecksumAlgorithm") == algo
    upload_id = created["UploadId"]

    done = []
    for n, data in enumerate(parts, start=1):
        r = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data, ChecksumAlgorithm=algo)
        assert r.get(member) == b64(raw(data)), (n, r.get(member))
        done.append({"PartNumber": n, "ETag": r["ETag"], member: r[member]})

    listed = c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]

    composite = b64(raw(b"".join(raw(d) for d in parts))) + f"-{len(parts)}"
    resp = complete(c, bucket, key, upload_id, done)
    assert resp.get(member) == composite
    head = c.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head.get(member) == composite, head
    assert head.get("ChecksumType", "COMPOSITE") == "COMPOSITE"
    assert sha256(read_back(c, bucket, key)) == sha256(b"".join(parts))
    # ListParts reports every part's checksum (checked last: the upload is gone by now).
    assert [p.get(member) for p in listed] == [b64(raw(d)) for d in parts]


@pytest.mark.parametrize("algo", ["SHA256", "CRC32"])
def test_part_with_wrong_checksum_is_bad_digest(c, bucket, random_bytes, algo):
    key = f"checksum/bad-{algo}"
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algo)["UploadId"]
    data = random_bytes(1 * MiB, f"bad-{algo}")
    wrong = b64(RAW_CHECKSUM[algo](data + b"!"))
    with pytest.raises(ClientError) as exc:
        c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=data, **{f"Checksum{algo}": wrong})
    assert client_error(exc) == ("BadDigest", 400)
    assert not c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts")
    c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


# ===================================== 9. dedup across upload methods ===
def test_multipart_dedups_against_put_object(make_server, s3, random_bytes):
    srv = make_server(4)
    c4 = s3(srv)
    c4.create_bucket(Bucket="mp-dedup")
    data = random_bytes(24 * MiB, "mp-dedup")
    base = shard_bytes(srv.dirs)
    c4.put_object(Bucket="mp-dedup", Key="single", Body=data)
    after_put = shard_bytes(srv.dirs)
    assert after_put - base >= len(data), after_put - base

    part = 8 * MiB  # a multiple of the 1 MiB chunk size: same chunk boundaries
    multipart_object(c4, "mp-dedup", "multi", [data[i : i + part] for i in range(0, len(data), part)])
    growth = shard_bytes(srv.dirs) - after_put
    assert growth < 0.05 * len(data), f"multipart copy of identical data grew shards by {growth} bytes"
    assert sha256(read_back(c4, "mp-dedup", "single")) == sha256(data)
    assert sha256(read_back(c4, "mp-dedup", "multi")) == sha256(data)


# ======================================================= 10. concurrency ===
def test_parallel_part_uploads(c, bucket, random_bytes):
    key = "concurrent/eight"
    parts = [random_bytes(MIN_PART + n, f"par-{n}") for n in range(8)]
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    barrier = threading.Barrier(8)

    def send(n):
        barrier.wait(timeout=30)
        return c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n + 1, Body=parts[n])["ETag"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        etags = list(pool.map(send, range(8)))
    assert etags == [md5_etag(p) for p in parts]
    resp = complete(c, bucket, key, upload_id, [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)])
    assert resp["ETag"] == multipart_etag(parts)
    assert sha256(read_back(c, bucket, key)) == sha256(b"".join(parts))


def test_concurrent_reuploads_of_one_part(c, bucket, random_bytes):
    key = "concurrent/same-part"
    candidates = [random_bytes(2 * MiB + n, f"same-{n}") for n in range(4)]
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    barrier = threading.Barrier(4)

    def send(n):
        barrier.wait(timeout=30)
        return c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=candidates[n])["ETag"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        etags = list(pool.map(send, range(4)))
    assert etags == [md5_etag(d) for d in candidates]
    listed = c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert len(listed) == 1 and listed[0]["PartNumber"] == 1
    winner = listed[0]["ETag"]
    assert winner in etags
    assert listed[0]["Size"] == len(candidates[etags.index(winner)])

    complete(c, bucket, key, upload_id, [{"PartNumber": 1, "ETag": winner}])
    body = read_back(c, bucket, key)
    matches = [n for n, d in enumerate(candidates) if body == d]
    assert matches == [etags.index(winner)], f"object matches candidates {matches}"


# ================================================ 11. abort frees data ===
def test_abort_releases_part_data(make_server, s3, random_bytes):
    srv = make_server(4)
    c4 = s3(srv)
    c4.create_bucket(Bucket="abort-gc")
    keep = random_bytes(3 * MiB, "abort-keep")
    c4.put_object(Bucket="abort-gc", Key="keep", Body=keep)
    before = shard_bytes(srv.dirs)
    assert before > 0

    upload_id = c4.create_multipart_upload(Bucket="abort-gc", Key="big")["UploadId"]
    parts = [random_bytes(MIN_PART, f"abort-{n}") for n in range(3)]
    upload_parts(c4, "abort-gc", "big", upload_id, parts)
    during = shard_bytes(srv.dirs)
    assert during - before >= sum(len(p) for p in parts), (before, during)

    assert status_of(c4.abort_multipart_upload(Bucket="abort-gc", Key="big", UploadId=upload_id)) == 204
    ok = wait_until(lambda: shard_bytes(srv.dirs) == before, timeout=20)
    assert ok, f"shard bytes {shard_bytes(srv.dirs)} 20 s after abort, {before} before the upload"
    assert sha256(read_back(c4, "abort-gc", "keep")) == sha256(keep)
    with pytest.raises(ClientError) as exc:
        c4.list_parts(Bucket="abort-gc", Key="big", UploadId=upload_id)
    assert client_error(exc) == ("NoSuchUpload", 404)


# =================================================== 12. upload expiry ===
def test_abandoned_upload_expires(make_server, s3, random_bytes):
    srv = make_server(1, extra_args=["--multipart-expiry-secs", "2"])
    c1 = s3(srv)
    c1.create_bucket(Bucket="expiry")
    base = shard_bytes(srv.dirs)

    upload_id = c1.create_multipart_upload(Bucket="expiry", Key="abandoned")["UploadId"]
    c1.upload_part(Bucket="expiry", Key="abandoned", UploadId=upload_id, PartNumber=1,
                   Body=random_bytes(2 * MiB, "expiry-part"))
    # An upload completed in time becomes a normal object and is not affected.
    kept = random_bytes(2 * MiB, "expiry-kept")
    multipart_object(c1, "expiry", "completed", [kept])
    listed = [u["UploadId"] for u in c1.list_multipart_uploads(Bucket="expiry").get("Uploads", [])]
    assert listed == [upload_id]

    gone = wait_until(lambda: not c1.list_multipart_uploads(Bucket="expiry").get("Uploads"), timeout=20, interval=0.5)
    assert gone, "upload still listed 20 s after a 2 s expiry"
    with pytest.raises(ClientError) as exc:
        c1.upload_part(Bucket="expiry", Key="abandoned", UploadId=upload_id, PartNumber=2, Body=b"late")
    assert client_error(exc) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as exc:
        c1.list_parts(Bucket="expiry", Key="abandoned", UploadId=upload_id)
    assert client_error(exc) == ("NoSuchUpload", 404)

    # The expired part's data is released; the completed object's stays.
    kept_bytes = len(kept)
    assert wait_until(lambda: shard_bytes(srv.dirs) - base < kept_bytes + 1 * MiB, timeout=15), (
        f"shard bytes {shard_bytes(srv.dirs) - base} above the baseline after expiry"
    )
    assert sha256(read_back(c1, "expiry", "completed")) == sha256(kept)
