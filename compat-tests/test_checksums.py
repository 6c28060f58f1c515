"""Integrity checks on upload: Content-MD5 (BadDigest / InvalidDigest), the additional
checksums (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256) stored and returned
with ChecksumMode=ENABLED, GetObjectAttributes, and byte-exact round trips of the
default uploads of current boto3 (a CRC32 by default since botocore 1.36) and aws-cli."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest
from botocore.compat import HAS_CRT
from botocore.exceptions import ClientError

import aws_chunked as ac

KiB = 1024
MiB = 1024 * 1024

ALGORITHMS = ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]
# What botocore can compute itself; CRC32C and CRC64NVME need awscrt.
BOTO_NATIVE = {"CRC32", "SHA1", "SHA256"} | ({"CRC32C", "CRC64NVME"} if HAS_CRT else set())


def expected_checksum(algo: str, data: bytes) -> str:
    return ac.CHECKSUM_FUNCS[algo.lower()](data)


def status_of(exc_info) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def code_of(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server)


@pytest.fixture(scope="module")
def bucket(c, new_bucket_name):
    name = new_bucket_name("checksums")
    c.create_bucket(Bucket=name)
    return name


def assert_absent(c, bucket, key):
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key=key)
    assert status_of(exc) == 404


def test_checksum_helpers_match_reference_values():
    # Reference check values ("123456789") and the stdlib for the others.
    assert ac.crc32_b64(b"123456789") == base64.b64encode(bytes.fromhex("cbf43926")).decode()
    assert ac.crc32c(b"123456789") == 0xE3069283
    assert ac.crc64nvme(b"123456789") == 0xAE8B14860A799888
    assert ac.crc32_b64(b"") == "AAAAAA=="
    assert ac.sha256_b64(b"") == base64.b64encode(hashlib.sha256(b"").digest()).decode()
    assert zlib.crc32(b"abc") == int.from_bytes(base64.b64decode(ac.crc32_b64(b"abc")), "big")


# ------------------------------------------------------------ Content-MD5 ---
@pytest.mark.parametrize("size", [10, 2 * MiB + 1], ids=["small", "2MiB"])
def test_content_md5_mismatch_is_bad_digest(server, c, bucket, raw_s3_request, random_bytes, size):
    data = random_bytes(size, f"md5-mismatch-{size}")
    wrong = ac.md5_b64(data + b"!")
    key = f"md5/mismatch-{size}"
    resp = raw_s3_request(server, "PUT", f"/{bucket}/{key}", body=data, headers={"Content-MD5": wrong})
    assert resp.status == 400, resp.body[:500]
    assert resp.error_code == "BadDigest", resp.body[:500]
    assert_absent(c, bucket, key)
    # Same through boto3, over an existing object: it must stay as it was.
    c.put_object(Bucket=bucket, Key=key, Body=b"previous")
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key=key, Body=data, ContentMD5=wrong)
    assert status_of(exc) == 400 and code_of(exc) == "BadDigest"
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == b"previous"


def test_content_md5_correct_is_accepted(c, bucket, random_bytes):
    data = random_bytes(1000, "md5-ok")
    resp = c.put_object(Bucket=bucket, Key="md5/ok", Body=data, ContentMD5=ac.md5_b64(data))
    assert resp["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    assert c.get_object(Bucket=bucket, Key="md5/ok")["Body"].read() == data


@pytest.mark.parametrize("value", ["not-base64!!", base64.b64encode(b"short").decode()], ids=["garbage", "wrong-length"])
def test_malformed_content_md5_is_invalid_digest(server, c, bucket, raw_s3_request, value):
    resp = raw_s3_request(server, "PUT", f"/{bucket}/md5/malformed", body=b"data", headers={"Content-MD5": value})
    assert resp.status == 400, resp.body[:500]
    assert resp.error_code == "InvalidDigest", resp.body[:500]
    assert_absent(c, bucket, "md5/malformed")


# ------------------------------------------------- additional checksums ---
@pytest.mark.parametrize("algo", ALGORITHMS)
def test_put_with_checksum_algorithm_roundtrip(server, c, bucket, raw_s3_request, random_bytes, algo):
    data = random_bytes(100 * KiB + 3, f"checksum-{algo}")
    expected = expected_checksum(algo, data)
    key = f"checksum/{algo}"
    field = f"Checksum{algo}"
    if algo in BOTO_NATIVE:
        resp = c.put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm=algo)
        assert resp.get(field) == expected, resp
    else:
        # botocore needs awscrt for this algorithm: send the header by hand.
        resp = raw_s3_request(
            server,
            "PUT",
            f"/{bucket}/{key}",
            body=data,
            headers={f"x-amz-checksum-{algo.lower()}": expected, "x-amz-sdk-checksum-algorithm": algo},
        )
        assert resp.status == 200, resp.body[:500]
        assert resp.headers.get(f"x-amz-checksum-{algo.lower()}") == expected
    got = c.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got.get(field) == expected
    head = c.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head.get(field) == expected
    assert head["ContentLength"] == len(data)


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_explicit_checksum_header_roundtrip(server, c, bucket, raw_s3_request, random_bytes, algo):
    # The client states the value itself (no x-amz-sdk-checksum-algorithm).
    data = random_bytes(20 * KiB + 1, f"explicit-{algo}")
    expected = expected_checksum(algo, data)
    resp = raw_s3_request(
        server, "PUT", f"/{bucket}/explicit/{algo}", body=data, headers={f"x-amz-checksum-{algo.lower()}": expected}
    )
    assert resp.status == 200, resp.body[:500]
    head = c.head_object(Bucket=bucket, Key=f"explicit/{algo}", ChecksumMode="ENABLED")
    assert head.get(f"Checksum{algo}") == expected


@pytest.mark.parametrize("algo", ["CRC32", "CRC32C", "SHA256", "CRC64NVME"])
def test_wrong_checksum_header_is_bad_digest(server, c, bucket, raw_s3_request, random_bytes, algo):
    data = random_bytes(64 * KiB, f"wrong-{algo}")
    wrong = expected_checksum(algo, data + b"tampered")
    key = f"checksum-wrong/{algo}"
    resp = raw_s3_request(server, "PUT", f"/{bucket}/{key}", body=data, headers={f"x-amz-checksum-{algo.lower()}": wrong})
    assert resp.status == 400, resp.body[:500]
    assert resp.error_code == "BadDigest", resp.body[:500]
    assert b"checksum" in resp.body.lower(), resp.body[:500]
    assert_absent(c, bucket, key)


def test_wrong_checksum_large_body_keeps_existing_object(server, c, bucket, raw_s3_request, random_bytes):
    key = "checksum-wrong/large"
    c.put_object(Bucket=bucket, Key=key, Body=b"keep")
    data = random_bytes(3 * MiB + 5, "wrong-large")
    resp = raw_s3_request(
        server, "PUT", f"/{bucket}/{key}", body=data, headers={"x-amz-checksum-crc32": ac.crc32_b64(b"other")}
    )
    assert resp.status == 400 and resp.error_code == "BadDigest", resp.body[:500]
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == b"keep"


@pytest.mark.parametrize("value", ["###", base64.b64encode(b"\x00" * 7).decode()], ids=["not-base64", "wrong-length"])
def test_malformed_checksum_header_is_rejected(server, c, bucket, raw_s3_request, value):
    resp = raw_s3_request(server, "PUT", f"/{bucket}/checksum-malformed", body=b"abc", headers={"x-amz-checksum-crc32": value})
    assert resp.status == 400, resp.body[:500]
    assert resp.error_code in ("InvalidRequest", "InvalidArgument", "BadDigest"), resp.body[:500]
    assert_absent(c, bucket, "checksum-malformed")


# ------------------------------------------------- GetObjectAttributes ---
def test_get_object_attributes(c, bucket, random_bytes):
    data = random_bytes(40 * KiB, "attributes")
    put = c.put_object(Bucket=bucket, Key="attrs/obj", Body=data, ChecksumAlgorithm="SHA256")
    attrs = c.get_object_attributes(
        Bucket=bucket, Key="attrs/obj", ObjectAttributes=["ETag", "Checksum", "ObjectSize", "StorageClass"]
    )
    # AWS returns the ETag here without the surrounding quotes.
    assert attrs["ETag"] == hashlib.md5(data).hexdigest()
    assert put["ETag"] == '"%s"' % attrs["ETag"]
    assert attrs["ObjectSize"] == len(data)
    assert attrs["StorageClass"] == "STANDARD"
    assert attrs["Checksum"]["ChecksumSHA256"] == ac.sha256_b64(data)
    assert attrs["LastModified"] is not None


def test_get_object_attributes_only_what_was_asked(c, bucket):
    c.put_object(Bucket=bucket, Key="attrs/size-only", Body=b"12345", ChecksumAlgorithm="CRC32")
    attrs = c.get_object_attributes(Bucket=bucket, Key="attrs/size-only", ObjectAttributes=["ObjectSize"])
    assert attrs["ObjectSize"] == 5
    assert "ETag" not in attrs and "Checksum" not in attrs and "StorageClass" not in attrs


def test_get_object_attributes_missing_key(c, bucket):
    with pytest.raises(ClientError) as exc:
        c.get_object_attributes(Bucket=bucket, Key="attrs/missing", ObjectAttributes=["ETag"])
    assert status_of(exc) == 404 and code_of(exc) == "NoSuchKey"


# ----------------------------------------------- default client uploads ---
SIZES = [0, 1, 5 * MiB, 17 * MiB]
SIZE_IDS = ["0B", "1B", "5MiB", "17MiB"]


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_boto3_default_upload_roundtrip(c, bucket, random_bytes, tmp_path, size):
    data = random_bytes(size, f"default-boto3-{size}")
    key = f"default/boto3/{size}"
    sent_headers = []

    def capture(request, **kwargs):
        sent_headers.append({k.lower(): v for k, v in request.headers.items()})

    c.meta.events.register("before-send.s3.*", capture)
    try:
        if size > 8 * MiB:
            src = tmp_path / "src.bin"
            src.write_bytes(data)
            c.upload_file(str(src), bucket, key)  # multipart (8 MiB default threshold)
        else:
            c.put_object(Bucket=bucket, Key=key, Body=data)
    finally:
        c.meta.events.unregister("before-send.s3.*", capture)
    # The client really sent its default CRC32 (otherwise this test proves little).
    assert any("x-amz-checksum-crc32" in h or h.get("x-amz-trailer") == "x-amz-checksum-crc32" for h in sent_headers), sent_headers
    got = c.get_object(Bucket=bucket, Key=key)
    body = got["Body"].read()
    assert len(body) == size
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    if size <= 8 * MiB:
        head = c.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head.get("ChecksumCRC32") == ac.crc32_b64(data)
        assert head["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_awscli_cp_roundtrip(server, awscli, c, bucket, random_bytes, tmp_path, size):
    data = random_bytes(size, f"default-cli-{size}")
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    dst = tmp_path / "down.bin"
    awscli(server, "s3", "cp", str(src), f"s3://{bucket}/default/cli/{size}")
    assert c.head_object(Bucket=bucket, Key=f"default/cli/{size}")["ContentLength"] == size
    awscli(server, "s3", "cp", f"s3://{bucket}/default/cli/{size}", str(dst))
    got = dst.read_bytes()
    assert len(got) == size
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
