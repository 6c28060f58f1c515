"""Server-side encryption with the server's master key (SSE-S3): what clients see (headers on
PUT, GET, HEAD, copy and multipart; ranges), what lands on disk (no plaintext in shards or in
the metadata), deduplication kept under encryption, copies between encrypted and plain, and
the errors without a master key or with another one.

Layout relied on (documented): 4 data dirs give EC 2+2, objects up to 128 KiB are inline in
the metadata (`DIR/.tessera/meta` on the first dirs), bigger ones are 1 MiB chunks stored as
shard files under `DIR/shards/`.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import ROOT_PASSWORD, ROOT_USER, new_bucket_name, s3_client, tessera_binary

KiB = 1024
MiB = 1024 * KiB
KEY_ID = "test-master"
MASTER_KEY = f"{KEY_ID}:" + base64.b64encode(bytes(range(32))).decode()
SSE_S3_LABEL = "kms:(sse-s3)"
OTHER_KEY = "other-master:" + base64.b64encode(bytes(range(1, 33))).decode()


def keyed_server(make_server, key: str = MASTER_KEY, ndisks: int = 4):
    srv = make_server(ndisks, start=False)
    srv.env_overrides["TESSERA_KMS_SECRET_KEY"] = key
    return srv.start()


def files_under(dirs, sub: str) -> list[Path]:
    return [p for d in dirs for p in (Path(d) / sub).rglob("*") if p.is_file()]


def files_containing(files, marker: bytes) -> list[Path]:
    return [p for p in files if marker in p.read_bytes()]


def with_marker(random_bytes, size: int, marker: bytes, seed: str) -> bytes:
    """Random bytes with `marker` written every 64 KiB (so every chunk and shard holds it)."""
    data = bytearray(random_bytes(size, seed))
    for at in range(0, size - len(marker), 64 * KiB):
        data[at:at + len(marker)] = marker
    return bytes(data)


def sse(resp) -> str | None:
    return resp.get("ServerSideEncryption")


def test_sse_s3_round_trips_and_leaves_no_plaintext_on_disk(make_server, random_bytes):
    srv = keyed_server(make_server)
    assert f'master key "{KEY_ID}"' in srv.log_path.read_text(), "the banner names the key"
    assert base64.b64encode(bytes(range(32))).decode() not in srv.log_path.read_text()
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("sse")))

    secret = with_marker(random_bytes, 3 * MiB + 123, b"SECRET-MARKER-1", "sse-big")
    plain = with_marker(random_bytes, 2 * MiB, b"PLAIN-MARKER-22", "sse-plain")
    small_secret = with_marker(random_bytes, 1000, b"INLINE-SECRET-3", "sse-small")
    small_plain = with_marker(random_bytes, 1000, b"INLINE-PLAIN-44", "sse-small-plain")
    assert sse(c.put_object(Bucket=bucket, Key="big", Body=secret, ServerSideEncryption="AES256")) == "AES256"
    assert sse(c.put_object(Bucket=bucket, Key="small", Body=small_secret, ServerSideEncryption="AES256")) == "AES256"
    assert sse(c.put_object(Bucket=bucket, Key="plain", Body=plain)) is None
    assert sse(c.put_object(Bucket=bucket, Key="small-plain", Body=small_plain)) is None

    for key, data in (("big", secret), ("small", small_secret)):
        got = c.get_object(Bucket=bucket, Key=key)
        assert sse(got) == "AES256" and got["Body"].read() == data, key
        head = c.head_object(Bucket=bucket, Key=key)
        assert sse(head) == "AES256" and head["ContentLength"] == len(data), key
    assert sse(c.head_object(Bucket=bucket, Key="plain")) is None
    # Ranges inside a chunk, across chunk boundaries, and to the end.
    for first, last in ((5, 99), (MiB - 7, MiB + 9), (2 * MiB - 1, 3 * MiB + 122), (3 * MiB, 3 * MiB + 122)):
        got = c.get_object(Bucket=bucket, Key="big", Range=f"bytes={first}-{last}")["Body"].read()
        assert got == secret[first:last + 1], (first, last)
    got = c.get_object(Bucket=bucket, Key="small", Range="bytes=10-19")["Body"].read()
    assert got == small_secret[10:20]

    # The shards of the encrypted object hold no plaintext; the plain one's data shards do.
    shards = files_under(srv.dirs, "shards")
    assert files_containing(shards, b"PLAIN-MARKER-22"), "the check can see plaintext in shards"
    assert files_containing(shards, b"SECRET-MARKER-1") == []
    # Nor does the metadata (RocksDB's log and tables) hold the small encrypted object's bytes.
    meta = files_under(srv.dirs, ".tessera/meta")
    assert files_containing(meta, b"INLINE-PLAIN-44"), "the check can see plaintext in the metadata"
    assert files_containing(meta, b"INLINE-SECRET-3") == []


def test_identical_encrypted_data_is_stored_once(make_server, random_bytes):
    srv = keyed_server(make_server)
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("sse-dedup")))
    data = random_bytes(4 * MiB, "sse-dedup")
    c.put_object(Bucket=bucket, Key="one", Body=data, ServerSideEncryption="AES256")
    after_one = len(files_under(srv.dirs, "shards"))
    c.put_object(Bucket=bucket, Key="two", Body=data, ServerSideEncryption="AES256")
    assert len(files_under(srv.dirs, "shards")) == after_one, "the second encrypted copy added shards"
    # The same bytes in clear are other chunks: they never share shards with encrypted ones.
    c.put_object(Bucket=bucket, Key="clear", Body=data)
    assert len(files_under(srv.dirs, "shards")) == 2 * after_one
    for key in ("one", "two", "clear"):
        assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key


def test_multipart_and_copies_between_encrypted_and_plain(make_server, random_bytes):
    srv = keyed_server(make_server)
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("sse-mp")))
    parts = [random_bytes(5 * MiB, "sse-mp-1"), random_bytes(MiB + 5, "sse-mp-2")]
    created = c.create_multipart_upload(Bucket=bucket, Key="mp", ServerSideEncryption="AES256")
    assert sse(created) == "AES256"
    upload = created["UploadId"]
    etags = [
        c.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=n, Body=p)["ETag"]
        for n, p in enumerate(parts, 1)
    ]
    done = c.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    assert sse(done) == "AES256"
    whole = b"".join(parts)
    got = c.get_object(Bucket=bucket, Key="mp")
    assert sse(got) == "AES256" and got["Body"].read() == whole
    assert c.get_object(Bucket=bucket, Key="mp", PartNumber=2)["Body"].read() == parts[1]

    # Encrypted -> plain, plain -> encrypted, encrypted -> encrypted: the data is the same.
    copied = c.copy_object(Bucket=bucket, Key="mp-plain", CopySource={"Bucket": bucket, "Key": "mp"})
    assert sse(copied) is None
    assert sse(c.head_object(Bucket=bucket, Key="mp-plain")) is None
    assert c.get_object(Bucket=bucket, Key="mp-plain")["Body"].read() == whole
    copied = c.copy_object(Bucket=bucket, Key="mp-again", CopySource={"Bucket": bucket, "Key": "mp-plain"},
                           ServerSideEncryption="AES256")
    assert sse(copied) == "AES256"
    assert c.get_object(Bucket=bucket, Key="mp-again")["Body"].read() == whole
    # Encrypting an object in place: a copy onto itself that changes only its encryption.
    c.put_object(Bucket=bucket, Key="in-place", Body=parts[1])
    c.copy_object(Bucket=bucket, Key="in-place", CopySource={"Bucket": bucket, "Key": "in-place"},
                  ServerSideEncryption="AES256")
    got = c.get_object(Bucket=bucket, Key="in-place")
    assert sse(got) == "AES256" and got["Body"].read() == parts[1]

    # A part copied from an encrypted source into a plain upload.
    upload = c.create_multipart_upload(Bucket=bucket, Key="from-encrypted")["UploadId"]
    etag = c.upload_part_copy(Bucket=bucket, Key="from-encrypted", UploadId=upload, PartNumber=1,
                              CopySource={"Bucket": bucket, "Key": "mp"},
                              CopySourceRange=f"bytes=0-{5 * MiB - 1}")["CopyPartResult"]["ETag"]
    c.complete_multipart_upload(Bucket=bucket, Key="from-encrypted", UploadId=upload,
                                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    got = c.get_object(Bucket=bucket, Key="from-encrypted")
    assert sse(got) is None and got["Body"].read() == parts[0]


def test_encryption_needs_the_master_key(server, make_server, random_bytes):
    # A server without one refuses, says how to set one, and stores nothing.
    c = s3_client(server)
    c.create_bucket(Bucket=(bucket := new_bucket_name("sse-nokey")))
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key="k", Body=b"secret", ServerSideEncryption="AES256")
    err = exc.value.response
    assert (err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"]) == (501, "NotImplemented")
    assert "TESSERA_KMS_SECRET_KEY" in err["Error"]["Message"]
    assert "Contents" not in c.list_objects_v2(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="ROT13")
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"

    # Encrypted objects stay unreadable while the server runs with another key or none, and
    # read again once it has its key back.
    srv = keyed_server(make_server, ndisks=1)
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("sse-rekey")))
    big, small = random_bytes(2 * MiB, "rekey-big"), random_bytes(100, "rekey-small")
    c.put_object(Bucket=bucket, Key="big", Body=big, ServerSideEncryption="AES256")
    c.put_object(Bucket=bucket, Key="small", Body=small, ServerSideEncryption="AES256")
    for wrong in (OTHER_KEY, None):
        srv.stop()
        if wrong:
            srv.env_overrides["TESSERA_KMS_SECRET_KEY"] = wrong
        else:
            del srv.env_overrides["TESSERA_KMS_SECRET_KEY"]
        srv.start()
        c = s3_client(srv)
        for key in ("big", "small"):
            with pytest.raises(ClientError) as exc:
                c.get_object(Bucket=bucket, Key=key)["Body"].read()
            err = exc.value.response
            assert err["ResponseMetadata"]["HTTPStatusCode"] == 503, err
            assert KEY_ID in err["Error"]["Message"], err
        # `admin check` names the key and the objects that need it.
        rc, report = admin_check(srv)
        assert rc == 2 and report["clean"] is False, report
        # (SSE-S3 data is sealed under the key store's "(sse-s3)" key, itself sealed under
        # the master key.)
        unreadable = report["encryption"]["unreadable"]
        assert list(unreadable) == [SSE_S3_LABEL], report["encryption"]
        assert unreadable[SSE_S3_LABEL]["versions"] == 2
        assert sorted(unreadable[SSE_S3_LABEL]["examples"]) == [f"{bucket}/big", f"{bucket}/small"]
    srv.stop()
    srv.env_overrides["TESSERA_KMS_SECRET_KEY"] = MASTER_KEY
    srv.start()
    c = s3_client(srv)
    assert c.get_object(Bucket=bucket, Key="big")["Body"].read() == big
    assert c.get_object(Bucket=bucket, Key="small")["Body"].read() == small
    rc, report = admin_check(srv)
    assert rc == 0 and report["clean"] is True and report["encryption"]["unreadable"] == {}, report
    assert report["refcounts"]["encrypted"][SSE_S3_LABEL]["versions"] == 2


def admin_check(srv) -> tuple[int, dict]:
    env = {**os.environ, "TESSERA_ROOT_USER": ROOT_USER, "TESSERA_ROOT_PASSWORD": ROOT_PASSWORD}
    proc = subprocess.run([str(tessera_binary()), "admin", "--endpoint", srv.url, "--json", "check", "--no-repair"],
                          capture_output=True, text=True, timeout=120, env=env)
    return proc.returncode, json.loads(proc.stdout)


def test_a_bad_master_key_is_a_start_up_error(tmp_path):
    short = base64.b64encode(b"short").decode()
    for bad, says in (("no-colon-here", "NAME:BASE64"), (f"k:{short}", "32 bytes")):
        env = {**os.environ, "TESSERA_ROOT_USER": ROOT_USER, "TESSERA_ROOT_PASSWORD": ROOT_PASSWORD,
               "TESSERA_KMS_SECRET_KEY": bad}
        cmd = [str(tessera_binary()), "serve", "--address", "127.0.0.1:0", str(tmp_path / "disk")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode != 0, proc.stdout[-2000:]
        assert says in proc.stderr, proc.stderr
        assert short not in proc.stderr + proc.stdout, "the key is never printed"


def test_bucket_default_encryption(make_server, server, random_bytes):
    srv = keyed_server(make_server, ndisks=1)
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("sse-default")))
    c.put_object(Bucket=bucket, Key="before", Body=b"in clear")
    with pytest.raises(ClientError) as exc:
        c.get_bucket_encryption(Bucket=bucket)
    assert exc.value.response["Error"]["Code"] == "ServerSideEncryptionConfigurationNotFoundError"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    aes = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
    c.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=aes)
    rule = c.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    # Writes that do not ask are encrypted now; what was there before stays as it was.
    data = random_bytes(MiB + 3, "sse-default")
    assert sse(c.put_object(Bucket=bucket, Key="after", Body=data)) == "AES256"
    assert sse(c.head_object(Bucket=bucket, Key="before")) is None
    upload = c.create_multipart_upload(Bucket=bucket, Key="mp")
    assert sse(upload) == "AES256"
    part = c.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=data)
    assert sse(part) == "AES256", "UploadPart answers with the upload's encryption"
    done = c.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
                                       MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert sse(done) == "AES256"
    copied = c.copy_object(Bucket=bucket, Key="before-copy", CopySource={"Bucket": bucket, "Key": "before"})
    assert sse(copied) == "AES256"
    for key, body in (("after", data), ("mp", data), ("before-copy", b"in clear")):
        got = c.get_object(Bucket=bucket, Key=key)
        assert sse(got) == "AES256" and got["Body"].read() == body, key

    c.delete_bucket_encryption(Bucket=bucket)
    assert sse(c.put_object(Bucket=bucket, Key="plain-again", Body=b"x")) is None
    assert sse(c.head_object(Bucket=bucket, Key="after")) == "AES256"

    # A KMS rule naming a key the key store lacks is refused; a server without a master key
    # refuses any rule.
    kms = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "k"}}]}
    with pytest.raises(ClientError) as exc:
        c.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=kms)
    assert exc.value.response["Error"]["Code"] == "KMS.NotFoundException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    plain = s3_client(server)
    plain.create_bucket(Bucket=(other := new_bucket_name("sse-default-nokey")))
    with pytest.raises(ClientError) as exc:
        plain.put_bucket_encryption(Bucket=other, ServerSideEncryptionConfiguration=aes)
    assert exc.value.response["Error"]["Code"] == "NotImplemented"
    assert "TESSERA_KMS_SECRET_KEY" in exc.value.response["Error"]["Message"]
