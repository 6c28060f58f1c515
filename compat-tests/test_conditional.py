"""Conditional requests: GET/HEAD preconditions (If-Match, If-None-Match,
If-Modified-Since, If-Unmodified-Since) with the precedence of the S3 docs / RFC 7232,
conditional writes (PutObject and CompleteMultipartUpload with If-None-Match: * and
If-Match), and CopyObject's x-amz-copy-source-if-* conditions."""

from __future__ import annotations

import datetime as dt
import hashlib
import time

import pytest
from botocore.exceptions import ClientError

KiB = 1024
MiB = 1024 * 1024

WRONG_ETAG = '"00000000000000000000000000000000"'
DAY = dt.timedelta(days=1)


def md5_etag(data: bytes) -> str:
    return '"%s"' % hashlib.md5(data).hexdigest()


def status_of(exc_info) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def code_of(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def http_date(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server)


@pytest.fixture(scope="module")
def bucket(c, new_bucket_name):
    name = new_bucket_name("conditional")
    c.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def obj(c, bucket, random_bytes):
    """An object written more than a second ago: (key, data, etag, last_modified)."""
    data = random_bytes(3000, "conditional-obj")
    c.put_object(Bucket=bucket, Key="cond/obj", Body=data)
    # Last-Modified has one-second resolution; make sure "now" is past it.
    time.sleep(1.1)
    head = c.head_object(Bucket=bucket, Key="cond/obj")
    assert head["ETag"] == md5_etag(data)
    return "cond/obj", data, head["ETag"], head["LastModified"]


def outcome(call) -> int:
    """HTTP status of a boto3 call that may fail (304 and 412 surface as ClientError)."""
    try:
        resp = call()
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"]
    if "Body" in resp:
        resp["Body"].read()
    return resp["ResponseMetadata"]["HTTPStatusCode"]


def cases(etag, lm):
    before = lm - DAY
    # (name, conditions, expected status for GET and HEAD)
    return [
        ("if-match-true", {"IfMatch": etag}, 200),
        ("if-match-false", {"IfMatch": WRONG_ETAG}, 412),
        ("if-none-match-false", {"IfNoneMatch": etag}, 304),
        ("if-none-match-true", {"IfNoneMatch": WRONG_ETAG}, 200),
        ("if-modified-since-true", {"IfModifiedSince": before}, 200),
        # Exactly the Last-Modified value (what browsers send back): not modified since.
        ("if-modified-since-false", {"IfModifiedSince": lm}, 304),
        ("if-unmodified-since-true", {"IfUnmodifiedSince": lm}, 200),
        ("if-unmodified-since-false", {"IfUnmodifiedSince": before}, 412),
        # Precedence documented for GetObject/HeadObject:
        # If-Match true + If-Unmodified-Since false -> 200.
        ("if-match-true+if-unmodified-since-false", {"IfMatch": etag, "IfUnmodifiedSince": before}, 200),
        # If-None-Match false + If-Modified-Since true -> 304.
        ("if-none-match-false+if-modified-since-true", {"IfNoneMatch": etag, "IfModifiedSince": before}, 304),
        ("if-match-false+if-unmodified-since-true", {"IfMatch": WRONG_ETAG, "IfUnmodifiedSince": lm}, 412),
        ("if-match-true+if-none-match-true", {"IfMatch": etag, "IfNoneMatch": WRONG_ETAG}, 200),
    ]


def test_get_preconditions(c, bucket, obj):
    key, data, etag, lm = obj
    failures = []
    for name, cond, expected in cases(etag, lm):
        got = outcome(lambda: c.get_object(Bucket=bucket, Key=key, **cond))
        if got != expected:
            failures.append(f"GET {name}: expected {expected}, got {got}")
    assert not failures, "\n".join(failures)


def test_head_preconditions(c, bucket, obj):
    key, data, etag, lm = obj
    failures = []
    for name, cond, expected in cases(etag, lm):
        got = outcome(lambda: c.head_object(Bucket=bucket, Key=key, **cond))
        if got != expected:
            failures.append(f"HEAD {name}: expected {expected}, got {got}")
    assert not failures, "\n".join(failures)


def test_get_precondition_failed_body_and_not_modified_headers(server, bucket, obj, raw_s3_request):
    key, data, etag, lm = obj
    resp = raw_s3_request(server, "GET", f"/{bucket}/{key}", headers={"If-Match": WRONG_ETAG})
    assert resp.status == 412
    assert resp.error_code == "PreconditionFailed", resp.body[:500]
    assert data not in resp.body

    resp = raw_s3_request(server, "GET", f"/{bucket}/{key}", headers={"If-None-Match": etag})
    assert resp.status == 304
    assert resp.body == b""
    # RFC 7232 4.1: a 304 carries the ETag a 200 would have carried.
    assert resp.headers.get("etag") == etag

    resp = raw_s3_request(server, "GET", f"/{bucket}/{key}", headers={"If-Modified-Since": http_date(lm)})
    assert resp.status == 304 and resp.body == b""

    resp = raw_s3_request(server, "GET", f"/{bucket}/{key}", headers={"If-Match": etag})
    assert resp.status == 200 and resp.body == data


def test_get_preconditions_rfc7232_rules(c, bucket, obj):
    """Cases that the S3 docs do not spell out; RFC 7232 section 6 decides them."""
    key, data, etag, lm = obj
    # If-None-Match present: If-Modified-Since is ignored (3.3), so a matching-none
    # ETag means 200 even though the object was not modified since `lm`.
    assert outcome(lambda: c.get_object(Bucket=bucket, Key=key, IfNoneMatch=WRONG_ETAG, IfModifiedSince=lm)) == 200
    # If-Match is evaluated before If-None-Match: a failed If-Match is 412.
    assert outcome(lambda: c.get_object(Bucket=bucket, Key=key, IfMatch=WRONG_ETAG, IfNoneMatch=etag)) == 412
    # If-Match true, If-None-Match false: 304 for GET.
    assert outcome(lambda: c.get_object(Bucket=bucket, Key=key, IfMatch=etag, IfNoneMatch=etag)) == 304


def test_unparseable_dates_are_ignored(server, bucket, obj, raw_s3_request):
    """RFC 7232 3.3/3.4: a condition with an invalid HTTP-date is ignored (not an error)."""
    key, data, etag, lm = obj
    for header in ("If-Modified-Since", "If-Unmodified-Since"):
        resp = raw_s3_request(server, "GET", f"/{bucket}/{key}", headers={header: "not a date"})
        assert resp.status == 200, (header, resp.status, resp.body[:300])
        assert resp.body == data


def test_preconditions_on_missing_key_are_404(c, bucket):
    for cond in ({"IfMatch": WRONG_ETAG}, {"IfNoneMatch": WRONG_ETAG}):
        with pytest.raises(ClientError) as exc:
            c.get_object(Bucket=bucket, Key="cond/missing", **cond)
        assert status_of(exc) == 404 and code_of(exc) == "NoSuchKey"


# ------------------------------------------------------ conditional PUT ---
def test_put_if_none_match_star(c, bucket, random_bytes):
    key = "cond-put/inm"
    first = random_bytes(1000, "inm-1")
    resp = c.put_object(Bucket=bucket, Key=key, Body=first, IfNoneMatch="*")
    assert resp["ETag"] == md5_etag(first)
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert status_of(exc) == 412 and code_of(exc) == "PreconditionFailed"
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == first
    # After a delete the key is absent again.
    c.delete_object(Bucket=bucket, Key=key)
    c.put_object(Bucket=bucket, Key=key, Body=b"third", IfNoneMatch="*")
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == b"third"


def test_put_if_none_match_star_large_body(c, bucket, random_bytes):
    # A multi-chunk body must not replace (or partially replace) the existing object.
    key = "cond-put/inm-large"
    c.put_object(Bucket=bucket, Key=key, Body=b"original")
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key=key, Body=random_bytes(3 * MiB, "inm-large"), IfNoneMatch="*")
    assert status_of(exc) == 412 and code_of(exc) == "PreconditionFailed"
    got = c.get_object(Bucket=bucket, Key=key)
    assert got["ContentLength"] == len(b"original")
    assert got["Body"].read() == b"original"


def test_put_if_match(c, bucket):
    key = "cond-put/im"
    v1 = c.put_object(Bucket=bucket, Key=key, Body=b"version 1")["ETag"]
    v2 = c.put_object(Bucket=bucket, Key=key, Body=b"version 2", IfMatch=v1)["ETag"]
    assert v2 == md5_etag(b"version 2")
    # The old ETag no longer matches.
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key=key, Body=b"version 3", IfMatch=v1)
    assert status_of(exc) == 412 and code_of(exc) == "PreconditionFailed"
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == b"version 2"
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key=key, Body=b"version 3", IfMatch=WRONG_ETAG)
    assert status_of(exc) == 412 and code_of(exc) == "PreconditionFailed"
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == b"version 2"


def test_put_if_match_missing_key_is_no_such_key(c, bucket):
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key="cond-put/never-existed", Body=b"x", IfMatch=WRONG_ETAG)
    assert status_of(exc) == 404 and code_of(exc) == "NoSuchKey"
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key="cond-put/never-existed")
    assert status_of(exc) == 404


def _mpu(c, bucket, key, data, part_size=5 * MiB):
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for n, off in enumerate(range(0, len(data), part_size), start=1):
        etag = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data[off : off + part_size])[
            "ETag"
        ]
        parts.append({"PartNumber": n, "ETag": etag})
    return upload_id, parts


def test_complete_multipart_if_none_match(c, bucket, random_bytes):
    key = "cond-mpu/inm"
    data = random_bytes(5 * MiB + 100, "mpu-inm")
    # Absent key: the condition holds.
    upload_id, parts = _mpu(c, bucket, key, data)
    c.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
    )
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data

    # Existing key: 412, the object stays, and the upload can still be aborted.
    other = random_bytes(5 * MiB + 7, "mpu-inm-2")
    upload_id, parts = _mpu(c, bucket, key, other)
    with pytest.raises(ClientError) as exc:
        c.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
        )
    assert status_of(exc) == 412 and code_of(exc) == "PreconditionFailed"
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    listed = c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    with pytest.raises(ClientError) as exc:
        c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert code_of(exc) == "NoSuchUpload"


def test_complete_multipart_retry_after_precondition_failed(c, bucket, random_bytes):
    key = "cond-mpu/retry"
    c.put_object(Bucket=bucket, Key=key, Body=b"existing")
    data = random_bytes(5 * MiB + 1, "mpu-retry")
    upload_id, parts = _mpu(c, bucket, key, data)
    with pytest.raises(ClientError) as exc:
        c.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
        )
    assert status_of(exc) == 412
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == b"existing"
    # The same upload completes when retried without the condition.
    c.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data


def test_complete_multipart_if_match(c, bucket, random_bytes):
    key = "cond-mpu/im"
    current = c.put_object(Bucket=bucket, Key=key, Body=b"v1")["ETag"]
    data = random_bytes(5 * MiB + 3, "mpu-im")
    upload_id, parts = _mpu(c, bucket, key, data)
    with pytest.raises(ClientError) as exc:
        c.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfMatch=WRONG_ETAG
        )
    assert status_of(exc) == 412 and code_of(exc) == "PreconditionFailed"
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == b"v1"
    c.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfMatch=current
    )
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data


# ----------------------------------------------------- conditional copy ---
def copy_cases(etag, lm):
    before = lm - DAY
    return [
        ("if-match-true", {"CopySourceIfMatch": etag}, 200),
        ("if-match-false", {"CopySourceIfMatch": WRONG_ETAG}, 412),
        ("if-none-match-true", {"CopySourceIfNoneMatch": WRONG_ETAG}, 200),
        ("if-none-match-false", {"CopySourceIfNoneMatch": etag}, 412),
        ("if-modified-since-true", {"CopySourceIfModifiedSince": before}, 200),
        ("if-modified-since-false", {"CopySourceIfModifiedSince": lm}, 412),
        ("if-unmodified-since-true", {"CopySourceIfUnmodifiedSince": lm}, 200),
        ("if-unmodified-since-false", {"CopySourceIfUnmodifiedSince": before}, 412),
        # Documented precedence for CopyObject:
        ("if-match-true+if-unmodified-since-false", {"CopySourceIfMatch": etag, "CopySourceIfUnmodifiedSince": before}, 200),
        ("if-none-match-false+if-modified-since-true", {"CopySourceIfNoneMatch": etag, "CopySourceIfModifiedSince": before}, 412),
    ]


def test_copy_source_conditions(c, bucket, obj):
    key, data, etag, lm = obj
    failures = []
    for i, (name, cond, expected) in enumerate(copy_cases(etag, lm)):
        dst = f"cond-copy/{i}-{name}"
        try:
            c.copy_object(Bucket=bucket, Key=dst, CopySource={"Bucket": bucket, "Key": key}, **cond)
            got, code = 200, None
        except ClientError as exc:
            got, code = exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]
        if got != expected:
            failures.append(f"copy {name}: expected {expected}, got {got} {code or ''}")
            continue
        if expected == 200:
            if c.get_object(Bucket=bucket, Key=dst)["Body"].read() != data:
                failures.append(f"copy {name}: destination content differs")
        else:
            if code != "PreconditionFailed":
                failures.append(f"copy {name}: error code {code!r}, expected PreconditionFailed")
            try:
                c.head_object(Bucket=bucket, Key=dst)
                failures.append(f"copy {name}: failed copy created the destination")
            except ClientError as exc:
                if exc.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
                    raise
    assert not failures, "\n".join(failures)


def test_failed_copy_condition_keeps_existing_destination(c, bucket, obj):
    key, data, etag, lm = obj
    c.put_object(Bucket=bucket, Key="cond-copy/existing-dst", Body=b"keep me")
    with pytest.raises(ClientError) as exc:
        c.copy_object(
            Bucket=bucket,
            Key="cond-copy/existing-dst",
            CopySource={"Bucket": bucket, "Key": key},
            CopySourceIfMatch=WRONG_ETAG,
        )
    assert status_of(exc) == 412 and code_of(exc) == "PreconditionFailed"
    assert c.get_object(Bucket=bucket, Key="cond-copy/existing-dst")["Body"].read() == b"keep me"
