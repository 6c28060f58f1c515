"""Error codes and hostile input: missing buckets/keys, invalid names, key length,
bucket state conflicts, authentication failures, and path-traversal-looking keys."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

KiB = 1024
MiB = 1024 * 1024


def err(exc_info) -> tuple[str, int]:
    resp = exc_info.value.response
    return resp["Error"]["Code"], resp["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server)


@pytest.fixture(scope="module")
def bucket(c, new_bucket_name):
    name = new_bucket_name("errors")
    c.create_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="existing", Body=b"existing object")
    return name


# ----------------------------------------------------------- not found ---
def test_no_such_bucket(c, new_bucket_name):
    missing = new_bucket_name("missing")
    calls = [
        lambda: c.get_object(Bucket=missing, Key="k"),
        lambda: c.put_object(Bucket=missing, Key="k", Body=b"x"),
        lambda: c.list_objects_v2(Bucket=missing),
        lambda: c.list_objects(Bucket=missing),
        lambda: c.delete_bucket(Bucket=missing),
        lambda: c.copy_object(Bucket=missing, Key="k", CopySource={"Bucket": missing, "Key": "src"}),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert err(exc) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=missing, Key="k")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as exc:
        c.head_bucket(Bucket=missing)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # A failed PUT must not have created the bucket.
    assert missing not in [b["Name"] for b in c.list_buckets()["Buckets"]]


def test_no_such_key(c, bucket):
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key="does/not/exist")
    assert err(exc) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key="does/not/exist", Range="bytes=0-10")
    assert err(exc) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key="does/not/exist")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as exc:
        c.copy_object(Bucket=bucket, Key="copy-dst", CopySource={"Bucket": bucket, "Key": "does/not/exist"})
    assert err(exc) == ("NoSuchKey", 404)
    # A key that is only a prefix of an existing key is not an object.
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key="exist")
    assert err(exc) == ("NoSuchKey", 404)


# ------------------------------------------------------------ bad names ---
@pytest.mark.parametrize(
    "name",
    ["ab", "UPPER", "bad_bucket!", "a" * 64, "-starts-with-dash", "ends-with-dash-", "double..dots", "192.168.5.4"],
)
def test_invalid_bucket_name(server, c, raw_s3_request, name):
    # Sent by hand: botocore itself refuses some of these names client-side.
    resp = raw_s3_request(server, "PUT", f"/{name}")
    assert resp.status == 400, resp.body[:500]
    assert resp.error_code == "InvalidBucketName", resp.body[:500]
    assert name not in [b["Name"] for b in c.list_buckets()["Buckets"]]


@pytest.mark.parametrize(
    "key",
    ["k" * 1025, "é" * 512 + "k", "dir/" + "x" * 1021],
    ids=["1025-ascii", "1025-bytes-utf8", "1025-with-slash"],
)
def test_key_too_long(c, bucket, key):
    assert len(key.encode()) == 1025
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert err(exc) == ("KeyTooLongError", 400)
    listed = c.list_objects_v2(Bucket=bucket, Prefix=key[:20]).get("Contents", [])
    assert all(len(o["Key"].encode()) <= 1024 for o in listed)


@pytest.mark.parametrize("key", ["k" * 1024, "é" * 512], ids=["1024-ascii", "1024-bytes-utf8"])
def test_key_of_exactly_1024_bytes_is_fine(c, bucket, key):
    assert len(key.encode()) == 1024
    c.put_object(Bucket=bucket, Key=key, Body=b"max key")
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == b"max key"
    assert [o["Key"] for o in c.list_objects_v2(Bucket=bucket, Prefix=key)["Contents"]] == [key]
    c.delete_object(Bucket=bucket, Key=key)


# --------------------------------------------------------- bucket state ---
def test_bucket_not_empty(c, new_bucket_name):
    name = new_bucket_name("not-empty")
    c.create_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="a/b", Body=b"x")
    with pytest.raises(ClientError) as exc:
        c.delete_bucket(Bucket=name)
    assert err(exc) == ("BucketNotEmpty", 409)
    assert c.get_object(Bucket=name, Key="a/b")["Body"].read() == b"x"
    c.delete_object(Bucket=name, Key="a/b")
    c.delete_bucket(Bucket=name)


def test_create_existing_bucket(c, bucket):
    with pytest.raises(ClientError) as exc:
        c.create_bucket(Bucket=bucket)
    code, status = err(exc)
    assert code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")
    assert status == 409
    # The existing bucket and its contents are untouched.
    assert c.get_object(Bucket=bucket, Key="existing")["Body"].read() == b"existing object"


# --------------------------------------------------------- authentication ---
def test_wrong_secret_key_is_signature_mismatch(server, s3, c, bucket):
    bad = s3(server, secret_key="definitely-not-the-secret")
    with pytest.raises(ClientError) as exc:
        bad.list_buckets()
    assert err(exc) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as exc:
        bad.put_object(Bucket=bucket, Key="forged", Body=b"forged")
    assert err(exc) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as exc:
        bad.get_object(Bucket=bucket, Key="existing")
    assert err(exc) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key="forged")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_unknown_access_key(server, s3, c, bucket):
    bad = s3(server, access_key="NOSUCHACCESSKEY", secret_key="whatever-secret")
    with pytest.raises(ClientError) as exc:
        bad.list_buckets()
    assert err(exc) == ("InvalidAccessKeyId", 403)
    with pytest.raises(ClientError) as exc:
        bad.put_object(Bucket=bucket, Key="forged-2", Body=b"x")
    assert err(exc) == ("InvalidAccessKeyId", 403)
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key="forged-2")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_anonymous_requests_are_denied(server, s3, c, bucket):
    anon = s3(server, signature_version=UNSIGNED)
    for call in (
        lambda: anon.list_buckets(),
        lambda: anon.get_object(Bucket=bucket, Key="existing"),
        lambda: anon.list_objects_v2(Bucket=bucket),
        lambda: anon.put_object(Bucket=bucket, Key="anon", Body=b"x"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert err(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key="anon")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_tampered_body_is_rejected(server, c, bucket, raw_s3_request):
    # Signed for one payload, sent with another of the same length: the
    # x-amz-content-sha256 check must reject it (S3: XAmzContentSHA256Mismatch)
    # and nothing may be stored.
    resp = raw_s3_request(
        server, "PUT", f"/{bucket}/tampered", body=b"A" * 1000, send_body=b"B" * 1000
    )
    assert 400 <= resp.status < 600, (resp.status, resp.body[:500])
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key="tampered")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# ------------------------------------------------------- path traversal ---
def test_traversal_looking_keys_are_ordinary_keys(
    server, c, new_bucket_name, tmp_path_factory, server_data_dirs, random_bytes
):
    tag = f"tessera-escape-{uuid.uuid4().hex[:12]}"
    keys = [
        "../../etc/passwd",
        "a/../../b",
        "./x",
        "..",
        ".",
        "../",
        "a/./b",
        "a//b",
        "/leading-slash",
        "../" * 16 + f"tmp/{tag}",
        f"..\\..\\{tag}-backslash",
    ]
    etc_passwd = Path("/etc/passwd")
    passwd_before = etc_passwd.read_bytes() if etc_passwd.exists() else None

    name = new_bucket_name("traversal")
    c.create_bucket(Bucket=name)
    bodies = {}
    for i, key in enumerate(keys):
        # Big enough for some keys to be stored as shards, not inline.
        bodies[key] = random_bytes(200 * KiB if i % 2 else 100, f"trav-{key}")
        c.put_object(Bucket=name, Key=key, Body=bodies[key])

    for key, body in bodies.items():
        got = c.get_object(Bucket=name, Key=key)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), key
        assert c.head_object(Bucket=name, Key=key)["ContentLength"] == len(body)
    listed = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=name):
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert sorted(listed, key=str.encode) == sorted(keys, key=str.encode)

    # Nothing landed outside the data dirs.
    data_dirs = [d.resolve() for d in server_data_dirs()]
    suspicious = {"passwd", "etc", tag, f"..\\..\\{tag}-backslash"}
    for root in {tmp_path_factory.getbasetemp().resolve(), Path("/tmp")}:
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            dirnames[:] = [d for d in dirnames if (here / d).resolve() not in data_dirs]
            for entry in dirnames + filenames:
                if root == Path("/tmp"):
                    assert tag not in entry, f"stray file {here / entry}"
                else:
                    assert entry not in suspicious and tag not in entry, f"stray file {here / entry}"
            if root == Path("/tmp"):
                dirnames[:] = []  # only the top level of /tmp
    if passwd_before is not None:
        assert etc_passwd.read_bytes() == passwd_before

    for key in keys:
        c.delete_object(Bucket=name, Key=key)
    assert c.list_objects_v2(Bucket=name)["KeyCount"] == 0
    c.delete_bucket(Bucket=name)
