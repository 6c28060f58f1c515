"""Object and bucket operations through boto3: headers, metadata, ETags, ranges,
copy, delete, multi-delete, bucket listing/location, multipart, restart."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from botocore.exceptions import ClientError

KiB = 1024
MiB = 1024 * 1024


def md5_etag(data: bytes) -> str:
    return '"%s"' % hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def status_of(resp) -> int:
    return resp["ResponseMetadata"]["HTTPStatusCode"]


def client_error(exc_info) -> tuple[str, int]:
    err = exc_info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server)


@pytest.fixture(scope="module")
def bucket(c, new_bucket_name):
    name = new_bucket_name("objects")
    c.create_bucket(Bucket=name)
    return name


# ---------------------------------------------------------------- headers ---
def test_put_get_head_standard_headers_and_user_metadata(c, bucket, random_bytes):
    data = random_bytes(4000, "headers")
    put_args = dict(
        ContentType="application/x-tessera-test; charset=utf-8",
        ContentDisposition='attachment; filename="report 2024.pdf"',
        CacheControl="max-age=3600, no-transform",
        ContentEncoding="gzip",
        ContentLanguage="de-DE",
        Metadata={"color": "blue", "owner-id": "12345", "with-space": "a b c"},
    )
    c.put_object(Bucket=bucket, Key="headers/obj", Body=data, **put_args)

    for resp in (
        c.head_object(Bucket=bucket, Key="headers/obj"),
        c.get_object(Bucket=bucket, Key="headers/obj"),
    ):
        assert resp["ContentType"] == put_args["ContentType"]
        assert resp["ContentDisposition"] == put_args["ContentDisposition"]
        assert resp["CacheControl"] == put_args["CacheControl"]
        assert resp["ContentEncoding"] == put_args["ContentEncoding"]
        assert resp["ContentLanguage"] == put_args["ContentLanguage"]
        assert resp["Metadata"] == put_args["Metadata"]
        assert resp["ContentLength"] == len(data)
        assert resp["ETag"] == md5_etag(data)
        if "Body" in resp:
            assert resp["Body"].read() == data


def test_metadata_value_with_repeated_inner_spaces(c, bucket):
    # SigV4 canonicalisation collapses runs of spaces in header values; the
    # server must verify the signature that way but store the value as sent.
    c.put_object(Bucket=bucket, Key="headers/spaces", Body=b"s", Metadata={"note": "a  b   c"})
    assert c.head_object(Bucket=bucket, Key="headers/spaces")["Metadata"] == {"note": "a  b   c"}


def test_default_content_type_is_present(c, bucket):
    c.put_object(Bucket=bucket, Key="headers/no-type", Body=b"abc")
    head = c.head_object(Bucket=bucket, Key="headers/no-type")
    # S3 defaults to binary/octet-stream, MinIO to application/octet-stream.
    assert head["ContentType"] in ("binary/octet-stream", "application/octet-stream")


def test_user_metadata_keys_are_case_insensitive(c, bucket):
    c.put_object(Bucket=bucket, Key="headers/meta-case", Body=b"x", Metadata={"MixedCase": "Value"})
    head = c.head_object(Bucket=bucket, Key="headers/meta-case")
    # HTTP header names are case-insensitive; S3 returns them lower-cased.
    assert {k.lower(): v for k, v in head["Metadata"].items()} == {"mixedcase": "Value"}


@pytest.mark.parametrize(
    "size",
    [0, 1, 1000, 128 * KiB, 128 * KiB + 1, 1 * MiB, 1 * MiB + 1, 3 * MiB + 123],
)
def test_single_put_etag_is_md5_and_roundtrip(c, bucket, random_bytes, size):
    data = random_bytes(size, f"etag-{size}")
    key = f"etag/{size}"
    put = c.put_object(Bucket=bucket, Key=key, Body=data)
    assert put["ETag"] == md5_etag(data)
    head = c.head_object(Bucket=bucket, Key=key)
    assert head["ETag"] == md5_etag(data)
    assert head["ContentLength"] == size
    got = c.get_object(Bucket=bucket, Key=key)
    assert got["ETag"] == md5_etag(data)
    body = got["Body"].read()
    assert len(body) == size
    assert sha256(body) == sha256(data)
    listed = c.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [(key, size, md5_etag(data))]


def test_last_modified_is_present_and_recent(c, bucket):
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(seconds=2)
    c.put_object(Bucket=bucket, Key="lm/obj", Body=b"hello")
    after = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)
    head = c.head_object(Bucket=bucket, Key="lm/obj")
    lm = head["LastModified"]
    assert isinstance(lm, dt.datetime) and lm.tzinfo is not None
    assert before <= lm <= after, (before, lm, after)
    listed = c.list_objects_v2(Bucket=bucket, Prefix="lm/obj")["Contents"][0]["LastModified"]
    assert abs((listed - lm).total_seconds()) < 1.0


def test_overwrite_replaces_content_and_metadata(c, bucket, random_bytes):
    first, second = random_bytes(300 * KiB, "ow1"), random_bytes(1000, "ow2")
    c.put_object(Bucket=bucket, Key="ow/obj", Body=first, Metadata={"v": "1"}, ContentType="text/one")
    c.put_object(Bucket=bucket, Key="ow/obj", Body=second, Metadata={"w": "2"})
    got = c.get_object(Bucket=bucket, Key="ow/obj")
    assert got["Body"].read() == second
    assert got["Metadata"] == {"w": "2"}
    assert got["ContentType"] != "text/one"
    assert got["ETag"] == md5_etag(second)


# ----------------------------------------------------------------- ranges ---
@pytest.fixture(scope="module")
def range_objects(c, bucket, random_bytes):
    objs = {}
    for size in (1000, 300 * KiB, 3 * MiB):
        data = random_bytes(size, f"range-{size}")
        key = f"range/{size}"
        c.put_object(Bucket=bucket, Key=key, Body=data)
        objs[size] = (key, data)
    return objs


def _check_range(c, bucket, key, data, header, first, last):
    resp = c.get_object(Bucket=bucket, Key=key, Range=header)
    body = resp["Body"].read()
    assert status_of(resp) == 206, header
    assert resp["ContentRange"] == f"bytes {first}-{last}/{len(data)}", header
    assert resp["ContentLength"] == last - first + 1
    assert len(body) == last - first + 1
    assert body == data[first : last + 1], header


@pytest.mark.parametrize("size", [1000, 300 * KiB, 3 * MiB])
def test_range_gets(c, bucket, range_objects, size):
    key, data = range_objects[size]
    n = len(data)
    cases = [
        ("bytes=0-0", 0, 0),
        ("bytes=0-99", 0, 99),
        (f"bytes={n // 3}-{n // 2}", n // 3, n // 2),  # middle
        ("bytes=-100", n - 100, n - 1),  # suffix
        ("bytes=100-", 100, n - 1),  # open-ended
        (f"bytes={n - 1}-{n - 1}", n - 1, n - 1),  # last byte
        (f"bytes={n - 10}-{n + 5000}", n - 10, n - 1),  # end clamped to size
        (f"bytes=-{n + 5000}", 0, n - 1),  # suffix longer than object
    ]
    for header, first, last in cases:
        _check_range(c, bucket, key, data, header, first, last)


def test_ranges_crossing_chunk_boundaries(c, bucket, range_objects):
    key, data = range_objects[3 * MiB]
    cases = [
        (MiB - 1000, MiB + 999),  # across the first chunk boundary
        (MiB - 1, MiB),  # exactly the two bytes around it
        (MiB, 2 * MiB - 1),  # exactly the second chunk
        (MiB - 7, 2 * MiB + 7),  # spans three chunks
        (123, 3 * MiB - 124),  # nearly everything
        (2 * MiB + 1, 3 * MiB - 1),  # inside the last chunk to the end
    ]
    for first, last in cases:
        _check_range(c, bucket, key, data, f"bytes={first}-{last}", first, last)


@pytest.mark.parametrize("size", [1000, 3 * MiB])
def test_range_beyond_end_is_invalid_range(c, bucket, range_objects, size):
    key, data = range_objects[size]
    n = len(data)
    for header in (f"bytes={n}-", f"bytes={n + 10}-{n + 20}"):
        with pytest.raises(ClientError) as exc:
            c.get_object(Bucket=bucket, Key=key, Range=header)
        assert client_error(exc) == ("InvalidRange", 416), header


def test_full_get_without_range_is_200(c, bucket, range_objects):
    key, data = range_objects[3 * MiB]
    resp = c.get_object(Bucket=bucket, Key=key)
    assert status_of(resp) == 200
    assert "ContentRange" not in resp
    assert sha256(resp["Body"].read()) == sha256(data)


# ------------------------------------------------------------------- copy ---
@pytest.mark.parametrize("size", [5000, 2 * MiB + 5], ids=["inline", "sharded"])
def test_copy_object_same_bucket_keeps_content_and_metadata(c, bucket, random_bytes, size):
    data = random_bytes(size, f"copy-{size}")
    src_key = f"copy/src {size} ü+x"  # space, unicode and '+' in the copy source
    c.put_object(
        Bucket=bucket,
        Key=src_key,
        Body=data,
        ContentType="text/x-copy",
        CacheControl="no-cache",
        Metadata={"origin": "src", "n": str(size)},
    )
    resp = c.copy_object(Bucket=bucket, Key=f"copy/dst-{size}", CopySource={"Bucket": bucket, "Key": src_key})
    assert resp["CopyObjectResult"]["ETag"] == md5_etag(data)

    got = c.get_object(Bucket=bucket, Key=f"copy/dst-{size}")
    assert sha256(got["Body"].read()) == sha256(data)
    assert got["ContentType"] == "text/x-copy"
    assert got["CacheControl"] == "no-cache"
    assert got["Metadata"] == {"origin": "src", "n": str(size)}
    assert got["ETag"] == md5_etag(data)
    # The source is untouched.
    assert sha256(c.get_object(Bucket=bucket, Key=src_key)["Body"].read()) == sha256(data)


def test_copy_object_across_buckets(c, bucket, new_bucket_name, random_bytes):
    other = new_bucket_name("copy-dst")
    c.create_bucket(Bucket=other)
    data = random_bytes(1 * MiB + 77, "copy-across")
    c.put_object(Bucket=bucket, Key="copy/across", Body=data, Metadata={"k": "v"})
    c.copy_object(Bucket=other, Key="landed/here", CopySource=f"{bucket}/copy/across")
    got = c.get_object(Bucket=other, Key="landed/here")
    assert sha256(got["Body"].read()) == sha256(data)
    assert got["Metadata"] == {"k": "v"}
    # Deleting the source must not affect the copy.
    c.delete_object(Bucket=bucket, Key="copy/across")
    assert sha256(c.get_object(Bucket=other, Key="landed/here")["Body"].read()) == sha256(data)


def test_copy_object_replace_metadata(c, bucket):
    c.put_object(Bucket=bucket, Key="copy/meta-src", Body=b"meta", Metadata={"old": "1"}, ContentType="text/old")
    c.copy_object(
        Bucket=bucket,
        Key="copy/meta-dst",
        CopySource={"Bucket": bucket, "Key": "copy/meta-src"},
        MetadataDirective="REPLACE",
        Metadata={"new": "2"},
        ContentType="text/new",
    )
    head = c.head_object(Bucket=bucket, Key="copy/meta-dst")
    assert head["Metadata"] == {"new": "2"}
    assert head["ContentType"] == "text/new"
    assert c.get_object(Bucket=bucket, Key="copy/meta-dst")["Body"].read() == b"meta"


# ----------------------------------------------------------------- delete ---
def test_delete_object(c, bucket):
    c.put_object(Bucket=bucket, Key="del/one", Body=b"1")
    resp = c.delete_object(Bucket=bucket, Key="del/one")
    assert status_of(resp) == 204
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key="del/one")
    assert client_error(exc) == ("NoSuchKey", 404)


def test_delete_missing_key_succeeds(c, bucket):
    resp = c.delete_object(Bucket=bucket, Key="del/never-existed")
    assert status_of(resp) == 204


def test_delete_objects_multiple_including_missing(c, bucket, random_bytes):
    present = ["multi/a", "multi/b c", "multi/ü", "multi/big"]
    for k in present:
        c.put_object(Bucket=bucket, Key=k, Body=random_bytes(200 * KiB if k.endswith("big") else 10, k))
    c.put_object(Bucket=bucket, Key="multi/survivor", Body=b"stay")
    requested = present + ["multi/missing"]
    resp = c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in requested]})
    assert status_of(resp) == 200
    assert resp.get("Errors", []) == []
    assert sorted(d["Key"] for d in resp["Deleted"]) == sorted(requested)
    remaining = [o["Key"] for o in c.list_objects_v2(Bucket=bucket, Prefix="multi/").get("Contents", [])]
    assert remaining == ["multi/survivor"]


def test_delete_objects_quiet(c, bucket):
    c.put_object(Bucket=bucket, Key="quiet/a", Body=b"a")
    resp = c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "quiet/a"}], "Quiet": True})
    assert resp.get("Deleted", []) == []
    assert resp.get("Errors", []) == []
    assert c.list_objects_v2(Bucket=bucket, Prefix="quiet/")["KeyCount"] == 0


# ---------------------------------------------------------------- buckets ---
def test_list_buckets(c, new_bucket_name):
    names = sorted(new_bucket_name("lb") for _ in range(3))
    for n in names:
        c.create_bucket(Bucket=n)
    resp = c.list_buckets()
    listed = [b["Name"] for b in resp["Buckets"]]
    for n in names:
        assert n in listed
    assert listed == sorted(listed), "ListBuckets must be sorted by name"
    assert len(listed) == len(set(listed))
    for b in resp["Buckets"]:
        if b["Name"] in names:
            assert isinstance(b["CreationDate"], dt.datetime)


def test_get_bucket_location(c, bucket):
    resp = c.get_bucket_location(Bucket=bucket)
    assert status_of(resp) == 200
    # AWS answers an empty LocationConstraint for us-east-1; some servers spell it out.
    assert resp.get("LocationConstraint") in (None, "", "us-east-1")


def test_head_bucket(c, bucket, new_bucket_name):
    assert status_of(c.head_bucket(Bucket=bucket)) == 200
    with pytest.raises(ClientError) as exc:
        c.head_bucket(Bucket=new_bucket_name("missing"))
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_delete_empty_bucket(c, new_bucket_name):
    name = new_bucket_name("del-bucket")
    c.create_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="x", Body=b"x")
    c.delete_object(Bucket=name, Key="x")
    assert status_of(c.delete_bucket(Bucket=name)) == 204
    assert name not in [b["Name"] for b in c.list_buckets()["Buckets"]]
    # The name can be reused and the new bucket is empty.
    c.create_bucket(Bucket=name)
    assert c.list_objects_v2(Bucket=name)["KeyCount"] == 0


# -------------------------------------------------------------- multipart ---
def test_multipart_upload_complete(c, bucket, random_bytes):
    key = "mpu/assembled object"
    parts_data = [random_bytes(5 * MiB, "mpu-1"), random_bytes(5 * MiB, "mpu-2"), random_bytes(1 * MiB + 123, "mpu-3")]
    mpu = c.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-mpu", Metadata={"m": "pu"})
    upload_id = mpu["UploadId"]
    etags = []
    for n, data in enumerate(parts_data, start=1):
        resp = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data)
        assert resp["ETag"] == md5_etag(data)
        etags.append(resp["ETag"])

    listed = c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed["Parts"]] == [
        (n, len(d), e) for n, (d, e) in enumerate(zip(parts_data, etags), start=1)
    ]
    # Not visible before completion.
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key=key)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    c.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]},
    )
    whole = b"".join(parts_data)
    got = c.get_object(Bucket=bucket, Key=key)
    assert got["ContentLength"] == len(whole)
    assert sha256(got["Body"].read()) == sha256(whole)
    assert got["ContentType"] == "application/x-mpu"
    assert got["Metadata"] == {"m": "pu"}
    expected_etag = '"%s-%d"' % (
        hashlib.md5(b"".join(hashlib.md5(d).digest() for d in parts_data)).hexdigest(),
        len(parts_data),
    )
    assert got["ETag"] == expected_etag
    # A range across the part boundary.
    r = c.get_object(Bucket=bucket, Key=key, Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}")
    assert r["Body"].read() == whole[5 * MiB - 10 : 5 * MiB + 10]


def test_multipart_upload_abort(c, bucket, random_bytes):
    key = "mpu/aborted"
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=random_bytes(1 * MiB, "abort"))
    resp = c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert status_of(resp) == 204
    with pytest.raises(ClientError) as exc:
        c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert client_error(exc) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key=key)
    assert client_error(exc) == ("NoSuchKey", 404)


def test_upload_part_with_unknown_upload_id(c, bucket):
    with pytest.raises(ClientError) as exc:
        c.upload_part(Bucket=bucket, Key="mpu/nope", UploadId="does-not-exist", PartNumber=1, Body=b"x")
    assert client_error(exc) == ("NoSuchUpload", 404)


# ---------------------------------------------------------------- restart ---
def test_objects_survive_restart(make_server, s3, random_bytes):
    srv = make_server(1)
    c = s3(srv)
    c.create_bucket(Bucket="restart-bucket")
    objs = {"inline": random_bytes(10 * KiB, "r1"), "sharded": random_bytes(2 * MiB + 3, "r2"), "empty": b""}
    for k, d in objs.items():
        c.put_object(Bucket="restart-bucket", Key=k, Body=d, Metadata={"k": k})
    srv.restart()
    c = s3(srv)
    for k, d in objs.items():
        got = c.get_object(Bucket="restart-bucket", Key=k)
        assert sha256(got["Body"].read()) == sha256(d), k
        assert got["Metadata"] == {"k": k}
    assert sorted(o["Key"] for o in c.list_objects_v2(Bucket="restart-bucket")["Contents"]) == sorted(objs)
