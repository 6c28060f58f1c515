"""Hand-made SigV4 signing, aws-chunked bodies and S3 checksums for the compat suite.

Everything here is written from the AWS S3 API reference, independently of botocore,
so tests control the exact bytes on the wire:

* ``sign_headers``: SigV4 ``Authorization`` header for any request ("Signature
  Calculations for the Authorization Header: Transferring Payload in a Single Chunk").
* ``encode_signed_chunks``: ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` bodies and, with
  trailers, ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`` bodies ("Transferring Payload
  in Multiple Chunks" and "Signature calculations for trailing headers"): every chunk is
  ``hex(size);chunk-signature=SIG\\r\\n<data>\\r\\n``, the string to sign of a chunk is::

      AWS4-HMAC-SHA256-PAYLOAD\\n<amz-date>\\n<scope>\\n<previous signature>\\n
      <sha256("")>\\n<sha256(chunk data)>

  (the first "previous signature" is the seed signature of the request headers), the
  body ends with a zero-length chunk, and a trailer (if any) follows it as
  ``name:value\\r\\n`` lines and ``x-amz-trailer-signature:SIG\\r\\n\\r\\n`` where the
  trailer's string to sign is::

      AWS4-HMAC-SHA256-TRAILER\\n<amz-date>\\n<scope>\\n<signature of the final chunk>\\n
      <sha256("name:value\\n" for each trailer header)>

* ``encode_unsigned_chunks``: ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` bodies
  (``hex(size)\\r\\n<data>\\r\\n`` ... ``0\\r\\n<name>:<value>\\r\\n\\r\\n``, which is also
  exactly what botocore sends).
* ``send``: one HTTP/1.1 request over ``http.client`` that tolerates the server
  answering (and closing) before the whole body was sent.
* ``crc32_b64``, ``crc32c_b64``, ``crc64nvme_b64``, ``sha1_b64``, ``sha256_b64``,
  ``md5_b64``: base64 of the big-endian digest, as in ``x-amz-checksum-*`` headers
  (CRC32C and CRC64/NVME are table-driven pure Python: fine for objects of some 100 KiB).

``self_test()`` checks the signer against the worked examples of the AWS docs.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import socket
import urllib.parse
import zlib
from dataclasses import dataclass, field
from typing import Iterable, Sequence

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


# --------------------------------------------------------------------------
# SigV4 primitives
# --------------------------------------------------------------------------
def amz_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret_key: str, date: str, region: str, service: str = "s3") -> bytes:
    k = _hmac(("AWS4" + secret_key).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def scope_of(amz_date: str, region: str, service: str = "s3") -> str:
    return f"{amz_date[:8]}/{region}/{service}/aws4_request"


def uri_encode(s: str, *, keep_slash: bool) -> str:
    """SigV4 UriEncode: everything but unreserved characters (and '/' in paths)."""
    return urllib.parse.quote(s, safe="-_.~" + ("/" if keep_slash else ""))


def canonical_query(query: Sequence[tuple[str, str]] | None) -> str:
    if not query:
        return ""
    pairs = sorted((uri_encode(k, keep_slash=False), uri_encode(v, keep_slash=False)) for k, v in query)
    return "&".join(f"{k}={v}" for k, v in pairs)


def _trim(value: str) -> str:
    return " ".join(str(value).strip().split())


@dataclass
class Signed:
    headers: dict[str, str]
    signature: str
    amz_date: str
    scope: str
    key: bytes
    canonical_request: str = ""
    string_to_sign: str = ""


def sign_headers(
    method: str,
    path: str,
    *,
    host: str,
    headers: dict[str, str] | None = None,
    query: Sequence[tuple[str, str]] | None = None,
    payload_hash: str = UNSIGNED_PAYLOAD,
    access_key: str,
    secret_key: str,
    region: str = "us-east-1",
    amz_date: str | None = None,
    unsigned_headers: Iterable[str] = ("expect", "user-agent", "content-length-unsigned"),
) -> Signed:
    """Return the request headers plus Host, X-Amz-Date, X-Amz-Content-Sha256 and Authorization.

    ``path`` is the unencoded path ("/bucket/some key"). Every header given is signed
    except the names in ``unsigned_headers`` (lower case).
    """
    amz_date = amz_date or amz_now()
    hdrs: dict[str, str] = {"Host": host}
    hdrs.update(headers or {})
    if not any(k.lower() == "x-amz-date" for k in hdrs):
        hdrs["X-Amz-Date"] = amz_date
    if not any(k.lower() == "x-amz-content-sha256" for k in hdrs):
        hdrs["X-Amz-Content-Sha256"] = payload_hash
    payload = next(v for k, v in hdrs.items() if k.lower() == "x-amz-content-sha256")
    skip = {h.lower() for h in unsigned_headers}
    to_sign: dict[str, list[str]] = {}
    for k, v in hdrs.items():
        lk = k.lower()
        if lk in skip or lk == "authorization":
            continue
        to_sign.setdefault(lk, []).append(_trim(v))
    names = sorted(to_sign)
    canonical_headers = "".join(f"{n}:{','.join(to_sign[n])}\n" for n in names)
    signed_headers = ";".join(names)
    creq = "\n".join(
        [method, uri_encode(path, keep_slash=True), canonical_query(query), canonical_headers, signed_headers, payload]
    )
    scope = scope_of(amz_date, region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode("utf-8")).hexdigest()])
    key = signing_key(secret_key, amz_date[:8], region)
    sig = hmac.new(key, sts.encode("utf-8"), hashlib.sha256).hexdigest()
    hdrs["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={sig}"
    )
    return Signed(hdrs, sig, amz_date, scope, key, creq, sts)


# --------------------------------------------------------------------------
# aws-chunked bodies
# --------------------------------------------------------------------------
def chunk_string_to_sign(amz_date: str, scope: str, prev_sig: str, data: bytes) -> str:
    return "\n".join(
        ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev_sig, EMPTY_SHA256, hashlib.sha256(data).hexdigest()]
    )


def chunk_signature(key: bytes, amz_date: str, scope: str, prev_sig: str, data: bytes) -> str:
    return hmac.new(key, chunk_string_to_sign(amz_date, scope, prev_sig, data).encode(), hashlib.sha256).hexdigest()


def canonical_trailers(trailers: Sequence[tuple[str, str]]) -> bytes:
    return "".join(f"{k.lower()}:{_trim(v)}\n" for k, v in trailers).encode("utf-8")


def trailer_signature(key: bytes, amz_date: str, scope: str, prev_sig: str, trailers: Sequence[tuple[str, str]]) -> str:
    sts = "\n".join(
        [
            "AWS4-HMAC-SHA256-TRAILER",
            amz_date,
            scope,
            prev_sig,
            hashlib.sha256(canonical_trailers(trailers)).hexdigest(),
        ]
    )
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def split_chunks(data: bytes, chunk_size: int) -> list[bytes]:
    return [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] or []


def encode_signed_chunks(
    chunks: Sequence[bytes],
    *,
    seed_signature: str,
    key: bytes,
    amz_date: str,
    scope: str,
    trailers: Sequence[tuple[str, str]] | None = None,
    tamper_chunk: int | None = None,
    tamper_trailer_signature: bool = False,
) -> tuple[bytes, list[str]]:
    """Signed aws-chunked body (with a signed trailer when ``trailers`` is given).

    Returns (body, [signature of each chunk incl. the final empty one]).
    ``tamper_chunk=i`` flips one hex digit of chunk i's signature.
    """
    out = bytearray()
    sigs: list[str] = []
    prev = seed_signature
    for i, data in enumerate(list(chunks) + [b""]):
        sig = chunk_signature(key, amz_date, scope, prev, data)
        sigs.append(sig)
        prev = sig
        sent = sig
        if tamper_chunk is not None and i == tamper_chunk:
            sent = ("0" if sig[0] != "0" else "1") + sig[1:]
        out += f"{len(data):x};chunk-signature={sent}\r\n".encode() + data + b"\r\n"
    if trailers is not None:
        # The final chunk's header line already ended with CRLF: drop its empty-data CRLF.
        del out[-2:]
        tsig = trailer_signature(key, amz_date, scope, prev, trailers)
        if tamper_trailer_signature:
            tsig = ("0" if tsig[0] != "0" else "1") + tsig[1:]
        for k, v in trailers:
            out += f"{k}:{v}\r\n".encode()
        out += f"x-amz-trailer-signature:{tsig}\r\n\r\n".encode()
    return bytes(out), sigs


def encode_unsigned_chunks(chunks: Sequence[bytes], trailers: Sequence[tuple[str, str]]) -> bytes:
    out = bytearray()
    for data in chunks:
        out += f"{len(data):x}\r\n".encode() + data + b"\r\n"
    out += b"0\r\n"
    for k, v in trailers:
        out += f"{k}:{v}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


@dataclass
class StreamingRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    chunk_signatures: list[str] = field(default_factory=list)
    seed_signature: str = ""


def build_streaming_put(
    path: str,
    data: bytes,
    *,
    host: str,
    mode: str,
    access_key: str,
    secret_key: str,
    region: str = "us-east-1",
    chunk_size: int = 64 * 1024,
    trailer_name: str = "x-amz-checksum-crc32",
    trailer_value: str | None = None,
    extra_headers: dict[str, str] | None = None,
    tamper_chunk: int | None = None,
    tamper_trailer_signature: bool = False,
    content_length: bool = True,
    amz_date: str | None = None,
) -> StreamingRequest:
    """A complete aws-chunked PUT in one of the three streaming modes.

    ``trailer_value`` defaults to the correct checksum of ``data`` for ``trailer_name``.
    With ``content_length=False`` no Content-Length is signed or sent (use
    ``send(..., chunked_transfer=True)`` then, like botocore does).
    """
    assert mode in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER), mode
    chunks = split_chunks(data, chunk_size)
    with_trailer = mode != STREAMING_SIGNED
    trailers = None
    if with_trailer:
        if trailer_value is None:
            trailer_value = CHECKSUM_FUNCS[trailer_name.lower().removeprefix("x-amz-checksum-")](data)
        trailers = [(trailer_name, trailer_value)]
    amz_date = amz_date or amz_now()
    scope = scope_of(amz_date, region)
    key = signing_key(secret_key, amz_date[:8], region)

    def body_for(seed: str) -> tuple[bytes, list[str]]:
        if mode == STREAMING_UNSIGNED_TRAILER:
            return encode_unsigned_chunks(chunks, trailers), []
        return encode_signed_chunks(
            chunks,
            seed_signature=seed,
            key=key,
            amz_date=amz_date,
            scope=scope,
            trailers=trailers,
            tamper_chunk=tamper_chunk,
            tamper_trailer_signature=tamper_trailer_signature,
        )

    # The encoded length does not depend on the signatures (always 64 hex digits).
    encoded_len = len(body_for("0" * 64)[0])
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Content-Sha256": mode,
    }
    if content_length:
        headers["Content-Length"] = str(encoded_len)
    if with_trailer:
        headers["X-Amz-Trailer"] = trailer_name
    headers.update(extra_headers or {})
    signed = sign_headers(
        "PUT",
        path,
        host=host,
        headers=headers,
        access_key=access_key,
        secret_key=secret_key,
        region=region,
        amz_date=amz_date,
    )
    body, sigs = body_for(signed.signature)
    assert len(body) == encoded_len
    return StreamingRequest("PUT", path, signed.headers, body, sigs, signed.signature)


# --------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------
@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    send_error: str | None = None

    @property
    def error_code(self) -> str | None:
        import re

        m = re.search(rb"<Code>([^<]*)</Code>", self.body)
        return m.group(1).decode() if m else None


def send(
    host: str,
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    query: Sequence[tuple[str, str]] | None = None,
    chunked_transfer: bool = False,
    transfer_piece: int = 16 * 1024,
    timeout: float = 60,
) -> Response:
    """Send one request to host:port (the Host header comes from ``headers``).

    ``chunked_transfer=True`` sends the body with ``Transfer-Encoding: chunked`` in
    pieces of ``transfer_piece`` bytes. If the server answers and closes early, the
    send error is recorded and the response is still read.
    """
    target = uri_encode(path, keep_slash=True)
    qs = canonical_query(query) if query else ""
    if qs:
        target += "?" + qs
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    send_error = None
    try:
        hdrs = dict(headers)
        try:
            if chunked_transfer:
                hdrs["Transfer-Encoding"] = "chunked"
                pieces = (body[i : i + transfer_piece] for i in range(0, len(body), transfer_piece))
                conn.request(method, target, body=pieces, headers=hdrs, encode_chunked=True)
            else:
                conn.request(method, target, body=body if body else None, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError, socket.timeout) as exc:  # answered early
            send_error = repr(exc)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, send_error)
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Checksums (x-amz-checksum-* values: base64 of the big-endian digest)
# --------------------------------------------------------------------------
def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _reflected_table(poly: int, width: int) -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc & ((1 << width) - 1))
    return table


_CRC32C_TABLE = _reflected_table(0x82F63B78, 32)
_CRC64NVME_TABLE = _reflected_table(0x9A6C9329AC4BC9B5, 64)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc64nvme(data: bytes) -> int:
    crc = 0xFFFFFFFFFFFFFFFF
    table = _CRC64NVME_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def crc32_b64(data: bytes) -> str:
    return _b64((zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big"))


def crc32c_b64(data: bytes) -> str:
    return _b64(crc32c(data).to_bytes(4, "big"))


def crc64nvme_b64(data: bytes) -> str:
    return _b64(crc64nvme(data).to_bytes(8, "big"))


def sha1_b64(data: bytes) -> str:
    return _b64(hashlib.sha1(data).digest())


def sha256_b64(data: bytes) -> str:
    return _b64(hashlib.sha256(data).digest())


def md5_b64(data: bytes) -> str:
    return _b64(hashlib.md5(data).digest())


CHECKSUM_FUNCS = {
    "crc32": crc32_b64,
    "crc32c": crc32c_b64,
    "crc64nvme": crc64nvme_b64,
    "sha1": sha1_b64,
    "sha256": sha256_b64,
}


# --------------------------------------------------------------------------
# Self test against the worked examples in the AWS docs
# --------------------------------------------------------------------------
AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_EXAMPLE_ACCESS = "AKIAIOSFODNN7EXAMPLE"


def self_test() -> None:
    """Raise AssertionError unless the signer reproduces the AWS documentation examples."""
    # CRC check values ("123456789") of the catalogue of parametrised CRC algorithms.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc64nvme(b"123456789") == 0xAE8B14860A799888
    assert crc32c_b64(b"a" * 66560) == "sOO8/Q=="  # the trailer example's checksum

    # Single chunk: "Example: GET Object" (range request, empty payload).
    signed = sign_headers(
        "GET",
        "/test.txt",
        host="examplebucket.s3.amazonaws.com",
        headers={"Range": "bytes=0-9"},
        payload_hash=EMPTY_SHA256,
        access_key=AWS_EXAMPLE_ACCESS,
        secret_key=AWS_EXAMPLE_SECRET,
        amz_date="20130524T000000Z",
    )
    assert signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", signed.canonical_request

    # Chunked upload: "Example: PUT Object" (64 KiB + 1 KiB of 'a').
    amz_date = "20130524T000000Z"
    seed = sign_headers(
        "PUT",
        "/examplebucket/chunkObject.txt",
        host="s3.amazonaws.com",
        headers={
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "x-amz-content-sha256": STREAMING_SIGNED,
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": "66560",
            "Content-Length": "66824",
        },
        access_key=AWS_EXAMPLE_ACCESS,
        secret_key=AWS_EXAMPLE_SECRET,
        amz_date=amz_date,
    )
    assert seed.signature == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9", seed.canonical_request
    body, sigs = encode_signed_chunks(
        [b"a" * 65536, b"a" * 1024], seed_signature=seed.signature, key=seed.key, amz_date=amz_date, scope=seed.scope
    )
    assert sigs == [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ], sigs
    assert len(body) == 66824

    # Trailing headers: "Signature calculations for trailing headers" example.
    trailer_seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
    body, sigs = encode_signed_chunks(
        [b"a" * 65536, b"a" * 1024],
        seed_signature=trailer_seed,
        key=seed.key,
        amz_date=amz_date,
        scope=seed.scope,
        trailers=[("x-amz-checksum-crc32c", "sOO8/Q==")],
    )
    assert sigs == [
        "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
        "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
        "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
    ], sigs
    assert body.endswith(
        b"0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n"
        b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
        b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n"
    ), body[-300:]


if __name__ == "__main__":
    self_test()
    print("aws_chunked self test ok")
