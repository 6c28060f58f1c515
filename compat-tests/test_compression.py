"""Transparent compression (zstd per chunk): text takes less than its logical size on disk
even with EC 2+2's doubling, data compressed already (random bytes, `.gz` names, video
types) is stored as it is, reads (whole, ranges, parts) give the original bytes with the
original's ETag and checksums, compression comes before encryption, and `--compression off`
stores new data as it is while still reading what was compressed.

Layout relied on (documented): 4 data dirs give EC 2+2; objects over 128 KiB are 1 MiB
chunks stored as shard files under `DIR/shards/`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import subprocess
import zlib

from conftest import ROOT_PASSWORD, ROOT_USER, new_bucket_name, random_bytes, s3_client, tessera_binary
from test_encryption import MASTER_KEY, files_containing, files_under

MiB = 1024 * 1024


def log_text(size: int, seed: str) -> bytes:
    """Log-like lines: repetitive structure, varying ids and numbers."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += (f"2026-12-06T10:{rng.randrange(60):02}:{rng.randrange(60):02}Z INFO request "
                f"id={rng.getrandbits(32):08x} path=/api/v1/items/{rng.randrange(100000)} "
                f"status={rng.choice((200, 200, 200, 204, 404))} ms={rng.randrange(500)}\n").encode()
    return bytes(out[:size])


def shard_bytes(srv) -> int:
    return sum(p.stat().st_size for p in files_under(srv.dirs, "shards"))


def test_text_is_stored_compressed_and_compressed_data_as_it_is(make_server):
    srv = make_server(4)
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("zstd")))
    text = log_text(50 * MiB, "zstd-text")
    before = shard_bytes(srv)
    put = c.put_object(Bucket=bucket, Key="app.log", Body=text, ContentType="text/plain", ChecksumAlgorithm="CRC32")
    text_on_disk = shard_bytes(srv) - before
    assert text_on_disk < len(text), f"{text_on_disk} bytes on disk for {len(text)} of text"
    # ETag and checksum are of the original bytes.
    assert put["ETag"].strip('"') == hashlib.md5(text).hexdigest()
    crc = base64.b64encode(zlib.crc32(text).to_bytes(4, "big")).decode()
    assert put["ChecksumCRC32"] == crc
    got = c.get_object(Bucket=bucket, Key="app.log", ChecksumMode="ENABLED")
    assert got["Body"].read() == text and got["ChecksumCRC32"] == crc
    for first, last in ((0, 99), (MiB - 10, 3 * MiB + 10), (50 * MiB - 5, 50 * MiB - 1)):
        part = c.get_object(Bucket=bucket, Key="app.log", Range=f"bytes={first}-{last}")["Body"].read()
        assert part == text[first:last + 1], (first, last)

    # Random data, and text under a name or type that says "compressed already": as they are.
    noise = random_bytes(20 * MiB, "zstd-noise")
    before = shard_bytes(srv)
    c.put_object(Bucket=bucket, Key="noise.bin", Body=noise)
    assert shard_bytes(srv) - before >= 2 * len(noise)
    for key, ctype in (("logs.tar.gz", "application/octet-stream"), ("clip", "video/mp4")):
        other = log_text(10 * MiB, key)
        before = shard_bytes(srv)
        c.put_object(Bucket=bucket, Key=key, Body=other, ContentType=ctype)
        assert shard_bytes(srv) - before >= 2 * len(other), key
        assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == other
    assert c.get_object(Bucket=bucket, Key="noise.bin")["Body"].read() == noise
    # `admin info` tells the data after dedup from what is stored after compression.
    info = json.loads(subprocess.run(
        [str(tessera_binary()), "admin", "--endpoint", srv.url, "--json", "info"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "TESSERA_ROOT_USER": ROOT_USER, "TESSERA_ROOT_PASSWORD": ROOT_PASSWORD},
    ).stdout)
    usage = info["usage"]
    distinct = len(text) + len(noise) + 2 * 10 * MiB
    assert usage["chunk_data_bytes"] == distinct, usage
    assert usage["chunk_bytes"] < distinct - 35 * MiB, usage
    assert info["compression_ratio"] > 1.5 and info["dedup_ratio"] == 1.0, info
    # The same text again dedups against its compressed chunks.
    before = shard_bytes(srv)
    c.put_object(Bucket=bucket, Key="app-copy.log", Body=text, ContentType="text/plain")
    assert shard_bytes(srv) == before
    got = c.get_object(Bucket=bucket, Key="app-copy.log", Range=f"bytes={MiB - 3}-{2 * MiB + 3}")
    assert got["Body"].read() == text[MiB - 3:2 * MiB + 4]


def test_multipart_parts_and_copies_of_compressed_objects(make_server):
    srv = make_server(4)
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("zstd-mp")))
    parts = [log_text(5 * MiB, "mp-1"), log_text(3 * MiB + 7, "mp-2")]
    up = c.create_multipart_upload(Bucket=bucket, Key="mp.log")["UploadId"]
    etags = [c.upload_part(Bucket=bucket, Key="mp.log", UploadId=up, PartNumber=n, Body=p)["ETag"]
             for n, p in enumerate(parts, 1)]
    c.complete_multipart_upload(Bucket=bucket, Key="mp.log", UploadId=up,
                                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                                           for n, e in enumerate(etags, 1)]})
    whole = b"".join(parts)
    assert c.get_object(Bucket=bucket, Key="mp.log")["Body"].read() == whole
    assert c.get_object(Bucket=bucket, Key="mp.log", PartNumber=2)["Body"].read() == parts[1]
    # A part copied on chunk boundaries shares the compressed chunks; one off them is re-read.
    up = c.create_multipart_upload(Bucket=bucket, Key="copied")["UploadId"]
    before = shard_bytes(srv)
    aligned = c.upload_part_copy(Bucket=bucket, Key="copied", UploadId=up, PartNumber=1,
                                 CopySource={"Bucket": bucket, "Key": "mp.log"},
                                 CopySourceRange=f"bytes=0-{5 * MiB - 1}")["CopyPartResult"]["ETag"]
    assert shard_bytes(srv) == before, "an aligned part copy writes nothing"
    unaligned = c.upload_part_copy(Bucket=bucket, Key="copied", UploadId=up, PartNumber=2,
                                   CopySource={"Bucket": bucket, "Key": "mp.log"},
                                   CopySourceRange=f"bytes=17-{2 * MiB}")["CopyPartResult"]["ETag"]
    c.complete_multipart_upload(Bucket=bucket, Key="copied", UploadId=up,
                                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": aligned},
                                                           {"PartNumber": 2, "ETag": unaligned}]})
    got = c.get_object(Bucket=bucket, Key="copied")["Body"].read()
    assert got == whole[:5 * MiB] + whole[17:2 * MiB + 1]


def test_compression_comes_before_encryption(make_server):
    srv = make_server(4, start=False)
    srv.env_overrides["TESSERA_KMS_SECRET_KEY"] = MASTER_KEY
    srv.start()
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("zstd-sse")))
    text = log_text(8 * MiB, "zstd-sse").replace(b"INFO", b"SECR")
    before = shard_bytes(srv)
    c.put_object(Bucket=bucket, Key="secret.log", Body=text, ServerSideEncryption="AES256")
    assert shard_bytes(srv) - before < len(text), "sealed after compression: still small"
    assert files_containing(files_under(srv.dirs, "shards"), b"SECR request") == []
    assert c.get_object(Bucket=bucket, Key="secret.log", Range="bytes=100-3000000")["Body"].read() == text[100:3000001]


def test_compression_off_stores_as_it_is_and_reads_what_was_compressed(make_server):
    srv = make_server(4)
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("zstd-off")))
    text = log_text(6 * MiB, "zstd-off")
    c.put_object(Bucket=bucket, Key="compressed.log", Body=text)
    srv.stop()
    srv.env_overrides["TESSERA_COMPRESSION"] = "off"
    srv.start()
    assert "compression: off" in srv.log_path.read_text()
    c = s3_client(srv)
    assert c.get_object(Bucket=bucket, Key="compressed.log")["Body"].read() == text
    other = log_text(6 * MiB, "zstd-off-2")
    before = shard_bytes(srv)
    c.put_object(Bucket=bucket, Key="plain.log", Body=other)
    assert shard_bytes(srv) - before >= 2 * len(other)
    assert c.get_object(Bucket=bucket, Key="plain.log")["Body"].read() == other
