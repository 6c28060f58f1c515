"""aws-chunked streaming uploads on the wire (signed chunks, signed chunks + signed
trailer, unsigned chunks + trailer), their failure modes, non-seekable uploads through
boto3's transfer manager, and ``Expect: 100-continue``.

The streaming bodies are built by ``aws_chunked.py`` from the AWS docs (its
``self_test`` reproduces the docs' worked examples), so the tests control every byte.
"""

from __future__ import annotations

import hashlib
import io
import socket

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

import aws_chunked as ac
from conftest import ROOT_PASSWORD, ROOT_USER

KiB = 1024
MiB = 1024 * 1024

MODES = [ac.STREAMING_SIGNED, ac.STREAMING_SIGNED_TRAILER, ac.STREAMING_UNSIGNED_TRAILER]
MODE_IDS = ["signed", "signed-trailer", "unsigned-trailer"]


@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server)


@pytest.fixture(scope="module")
def bucket(c, new_bucket_name):
    name = new_bucket_name("streaming")
    c.create_bucket(Bucket=name)
    return name


def host_of(server) -> str:
    return f"127.0.0.1:{server.port}"


def streaming_put(server, bucket, key, data, mode, **kwargs) -> ac.Response:
    chunked_transfer = kwargs.pop("chunked_transfer", False)
    req = ac.build_streaming_put(
        f"/{bucket}/{key}",
        data,
        host=host_of(server),
        mode=mode,
        access_key=ROOT_USER,
        secret_key=ROOT_PASSWORD,
        content_length=not chunked_transfer,
        **kwargs,
    )
    return ac.send("127.0.0.1", server.port, req.method, req.path, req.headers, req.body, chunked_transfer=chunked_transfer)


def assert_absent(c, bucket, key):
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key=key)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_helper_reproduces_aws_doc_examples():
    # Not a server test: proves the chunk signer below follows the AWS docs exactly
    # (seed, chunk and trailer signatures of the documented examples, CRC check values).
    ac.self_test()


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("size", [200 * KiB, 3 * MiB + 17], ids=["200KiB", "3MiB"])
def test_streaming_put_roundtrip(server, c, bucket, random_bytes, mode, size):
    data = random_bytes(size, f"stream-{mode}-{size}")
    key = f"stream/{mode}/{size}"
    resp = streaming_put(server, bucket, key, data, mode, chunk_size=64 * KiB)
    assert resp.status == 200, (resp.status, resp.body[:800])
    assert resp.headers.get("etag") == '"%s"' % hashlib.md5(data).hexdigest()
    got = c.get_object(Bucket=bucket, Key=key)
    body = got["Body"].read()
    assert len(body) == size
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    assert got["ContentLength"] == size


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_aws_chunked_is_not_stored_as_content_encoding(server, c, bucket, mode):
    # aws-chunked is a transfer detail: S3 strips it from the stored Content-Encoding
    # and keeps any real encoding listed with it.
    resp = streaming_put(server, bucket, f"ce/only/{mode}", b"plain body", mode)
    assert resp.status == 200, (resp.status, resp.body[:800])
    head = c.head_object(Bucket=bucket, Key=f"ce/only/{mode}")
    assert head.get("ContentEncoding") in (None, ""), head.get("ContentEncoding")
    resp = streaming_put(
        server, bucket, f"ce/gzip/{mode}", b"pretend gzip", mode, extra_headers={"Content-Encoding": "gzip,aws-chunked"}
    )
    assert resp.status == 200, (resp.status, resp.body[:800])
    head = c.head_object(Bucket=bucket, Key=f"ce/gzip/{mode}")
    assert head.get("ContentEncoding") == "gzip"
    assert c.get_object(Bucket=bucket, Key=f"ce/gzip/{mode}")["Body"].read() == b"pretend gzip"


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_streaming_put_uneven_chunks_and_metadata(server, c, bucket, random_bytes, mode):
    # 8 KiB is the smallest chunk the docs allow; the last chunk is short.
    data = random_bytes(8 * KiB * 5 + 123, f"uneven-{mode}")
    key = f"uneven/{mode}"
    resp = streaming_put(
        server,
        bucket,
        key,
        data,
        mode,
        chunk_size=8 * KiB,
        extra_headers={"Content-Type": "text/x-chunked", "x-amz-meta-origin": "aws-chunked"},
    )
    assert resp.status == 200, (resp.status, resp.body[:800])
    head = c.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "text/x-chunked"
    assert head["Metadata"] == {"origin": "aws-chunked"}
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data


def test_streaming_put_empty_object(server, c, bucket):
    for mode in MODES:
        key = f"empty/{mode}"
        resp = streaming_put(server, bucket, key, b"", mode)
        assert resp.status == 200, (mode, resp.status, resp.body[:800])
        got = c.get_object(Bucket=bucket, Key=key)
        assert got["ContentLength"] == 0 and got["Body"].read() == b""


def test_unsigned_trailer_over_http_chunked_transfer(server, c, bucket, random_bytes):
    # What botocore sends for a trailing checksum: Transfer-Encoding: chunked carrying
    # an aws-chunked body, no Content-Length at all.
    data = random_bytes(300 * KiB + 5, "te-chunked")
    resp = streaming_put(
        server, bucket, "te/chunked", data, ac.STREAMING_UNSIGNED_TRAILER, chunked_transfer=True, chunk_size=64 * KiB
    )
    assert resp.status == 200, (resp.status, resp.body[:800])
    assert c.get_object(Bucket=bucket, Key="te/chunked")["Body"].read() == data


@pytest.mark.parametrize("mode", [ac.STREAMING_SIGNED_TRAILER, ac.STREAMING_UNSIGNED_TRAILER], ids=MODE_IDS[1:])
def test_trailer_checksum_is_stored(server, c, bucket, random_bytes, mode):
    data = random_bytes(150 * KiB, f"trailer-stored-{mode}")
    key = f"trailer-stored/{mode}"
    resp = streaming_put(server, bucket, key, data, mode)
    assert resp.status == 200, (resp.status, resp.body[:800])
    head = c.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32") == ac.crc32_b64(data)


@pytest.mark.parametrize("mode", [ac.STREAMING_SIGNED, ac.STREAMING_SIGNED_TRAILER], ids=MODE_IDS[:2])
def test_tampered_chunk_signature_is_rejected(server, c, bucket, random_bytes, mode):
    data = random_bytes(200 * KiB, f"tamper-{mode}")
    # A new key: nothing may appear.
    resp = streaming_put(server, bucket, f"tamper/new/{mode}", data, mode, tamper_chunk=1)
    assert resp.status == 403, (resp.status, resp.body[:800])
    assert resp.error_code == "SignatureDoesNotMatch", resp.body[:800]
    assert_absent(c, bucket, f"tamper/new/{mode}")
    # An existing key: the old object must survive untouched.
    c.put_object(Bucket=bucket, Key=f"tamper/old/{mode}", Body=b"old content")
    resp = streaming_put(server, bucket, f"tamper/old/{mode}", data, mode, tamper_chunk=3)
    assert resp.status == 403, (resp.status, resp.body[:800])
    assert resp.error_code == "SignatureDoesNotMatch"
    assert c.get_object(Bucket=bucket, Key=f"tamper/old/{mode}")["Body"].read() == b"old content"


def test_tampered_final_chunk_signature_is_rejected(server, c, bucket, random_bytes):
    data = random_bytes(130 * KiB, "tamper-final")
    nchunks = len(ac.split_chunks(data, 64 * KiB))
    resp = streaming_put(server, bucket, "tamper/final", data, ac.STREAMING_SIGNED, tamper_chunk=nchunks)
    assert resp.status == 403, (resp.status, resp.body[:800])
    assert resp.error_code == "SignatureDoesNotMatch"
    assert_absent(c, bucket, "tamper/final")


def test_chunk_data_altered_after_signing_is_rejected(server, c, bucket, random_bytes):
    data = random_bytes(200 * KiB, "altered")
    req = ac.build_streaming_put(
        f"/{bucket}/altered",
        data,
        host=host_of(server),
        mode=ac.STREAMING_SIGNED,
        access_key=ROOT_USER,
        secret_key=ROOT_PASSWORD,
    )
    body = bytearray(req.body)
    pos = len(body) // 2
    body[pos] ^= 0xFF  # one byte in the middle of the second chunk's data
    resp = ac.send("127.0.0.1", server.port, "PUT", req.path, req.headers, bytes(body))
    assert resp.status == 403, (resp.status, resp.body[:800])
    assert resp.error_code == "SignatureDoesNotMatch"
    assert_absent(c, bucket, "altered")


@pytest.mark.parametrize("mode", [ac.STREAMING_SIGNED_TRAILER, ac.STREAMING_UNSIGNED_TRAILER], ids=MODE_IDS[1:])
def test_wrong_trailer_checksum_is_rejected(server, c, bucket, random_bytes, mode):
    data = random_bytes(200 * KiB, f"bad-trailer-{mode}")
    wrong = ac.crc32_b64(data + b"x")
    # (With the signed trailer, the signature covers the wrong value: it is valid.)
    resp = streaming_put(server, bucket, f"bad-trailer/{mode}", data, mode, trailer_value=wrong)
    assert resp.status == 400, (resp.status, resp.body[:800])
    assert resp.error_code == "BadDigest", resp.body[:800]
    assert_absent(c, bucket, f"bad-trailer/{mode}")


def test_tampered_trailer_signature_is_rejected(server, c, bucket, random_bytes):
    data = random_bytes(100 * KiB, "bad-trailer-sig")
    resp = streaming_put(
        server, bucket, "bad-trailer-sig", data, ac.STREAMING_SIGNED_TRAILER, tamper_trailer_signature=True
    )
    assert resp.status == 403, (resp.status, resp.body[:800])
    assert resp.error_code == "SignatureDoesNotMatch", resp.body[:800]
    assert_absent(c, bucket, "bad-trailer-sig")


# ------------------------------------------------------- boto3 transfers ---
class NonSeekable(io.RawIOBase):
    """A read-only stream without seek/tell (like a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b) -> int:
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)

    def seek(self, *args):  # pragma: no cover - must not be called
        raise io.UnsupportedOperation("seek")

    def tell(self):  # pragma: no cover - must not be called
        raise io.UnsupportedOperation("tell")


@pytest.mark.parametrize("size", [300 * KiB, 11 * MiB + 3], ids=["single-put", "multipart"])
def test_upload_fileobj_non_seekable(c, bucket, random_bytes, size):
    data = random_bytes(size, f"nonseek-{size}")
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=3)
    key = f"nonseek/{size}"
    c.upload_fileobj(NonSeekable(data), bucket, key, Config=cfg)
    out = io.BytesIO()
    c.download_fileobj(bucket, key, out)
    assert out.getvalue() == data
    head = c.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == size
    if size > 5 * MiB:
        assert head["ETag"].strip('"').endswith("-3"), head["ETag"]


# --------------------------------------------------------- 100-continue ---
def _read_head(f) -> tuple[int, dict[str, str]]:
    status_line = f.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers


def _expect_request(server, path, data, *, secret_key=ROOT_PASSWORD):
    signed = ac.sign_headers(
        "PUT",
        path,
        host=host_of(server),
        headers={"Content-Length": str(len(data)), "Expect": "100-continue"},
        payload_hash=hashlib.sha256(data).hexdigest(),
        access_key=ROOT_USER,
        secret_key=secret_key,
    )
    head = f"PUT {ac.uri_encode(path, keep_slash=True)} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in signed.headers.items()) + "\r\n"
    return head.encode()


def test_expect_100_continue(server, c, bucket, random_bytes):
    data = random_bytes(MiB, "expect-100")
    path = f"/{bucket}/expect/continue"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_expect_request(server, path, data))
        f = sock.makefile("rb")
        try:
            status, _ = _read_head(f)  # must come before any body byte is sent
        except socket.timeout:
            pytest.fail("no interim response within 10 s of headers with Expect: 100-continue")
        assert status == 100
        sock.sendall(data)
        status, headers = _read_head(f)
        body = f.read(int(headers.get("content-length", "0")))
    assert status == 200, body[:500]
    assert headers.get("etag") == '"%s"' % hashlib.md5(data).hexdigest()
    assert c.get_object(Bucket=bucket, Key="expect/continue")["Body"].read() == data


def test_expect_100_continue_rejected_without_body(server, c, bucket, random_bytes):
    # A request that fails authentication gets its final answer at once: the client
    # never has to send the megabyte.
    data = random_bytes(MiB, "expect-403")
    path = f"/{bucket}/expect/denied"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_expect_request(server, path, data, secret_key="wrong-secret-key"))
        f = sock.makefile("rb")
        try:
            status, headers = _read_head(f)
        except socket.timeout:
            pytest.fail("no response within 10 s to a bad-signature request with Expect: 100-continue")
        if status == 100:
            pytest.fail("server asked for the body of a request whose signature is wrong")
        body = f.read(int(headers.get("content-length", "0")))
    assert status == 403, body[:500]
    assert b"SignatureDoesNotMatch" in body
    assert_absent(c, bucket, "expect/denied")
