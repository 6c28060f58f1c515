"""SSE-KMS with the built-in key store: keys made, listed, disabled and enabled with
`tessera admin kms key ...`, objects sealed under the key a request names (headers on PUT,
GET, HEAD, copy and multipart as on AWS, AWS's KMS.* errors), bucket default encryption with
a KMS key, and master-key rotation (`tessera admin kms rotate-master`) that rewrites no data.

Layout relied on (documented): 4 data dirs give EC 2+2; objects over 128 KiB are 1 MiB
chunks stored as shard files under `DIR/shards/`.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import ROOT_PASSWORD, ROOT_USER, new_bucket_name, random_bytes, s3_client, tessera_binary
from test_encryption import MASTER_KEY, admin_check, files_containing, files_under, keyed_server, with_marker

MiB = 1024 * 1024
NEW_MASTER = "master-2027:" + base64.b64encode(bytes(range(50, 82))).decode()
CONTEXT = base64.b64encode(json.dumps({"team": "backups"}).encode()).decode()


def admin(srv, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TESSERA_ROOT_USER": ROOT_USER, "TESSERA_ROOT_PASSWORD": ROOT_PASSWORD}
    return subprocess.run([str(tessera_binary()), "admin", "--endpoint", srv.url, *args],
                          capture_output=True, text=True, timeout=120, env=env)


def keys_of(srv) -> dict:
    proc = admin(srv, "--json", "kms", "key", "list")
    assert proc.returncode == 0, proc.stderr
    return {k["name"]: k for k in json.loads(proc.stdout)["keys"]}


def kms(key: str | None = None) -> dict:
    return {"ServerSideEncryption": "aws:kms", **({"SSEKMSKeyId": key} if key else {})}


def error_of(exc) -> tuple[int, str]:
    err = exc.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"]


def test_kms_keys_seal_objects_and_a_disabled_key_stops_them(make_server):
    srv = keyed_server(make_server)
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("kms")))
    made = admin(srv, "kms", "key", "create", "backups")
    assert made.returncode == 0 and "backups enabled" in made.stdout, made.stderr
    again = admin(srv, "kms", "key", "create", "backups")
    assert again.returncode != 0 and "exists" in again.stderr
    assert keys_of(srv)["backups"]["enabled"] is True
    assert keys_of(srv)["backups"]["master_key_id"] == "test-master"

    data = with_marker(random_bytes, 3 * MiB, b"KMS-SECRET-MARK", "kms-big")
    put = c.put_object(Bucket=bucket, Key="big", Body=data, SSEKMSEncryptionContext=CONTEXT, **kms("backups"))
    assert (put["ServerSideEncryption"], put["SSEKMSKeyId"]) == ("aws:kms", "backups")
    for answer in (c.get_object(Bucket=bucket, Key="big"), c.head_object(Bucket=bucket, Key="big")):
        assert (answer["ServerSideEncryption"], answer["SSEKMSKeyId"]) == ("aws:kms", "backups")
    assert c.get_object(Bucket=bucket, Key="big")["Body"].read() == data
    assert files_containing(files_under(srv.dirs, "shards"), b"KMS-SECRET-MARK") == []
    # An ARN names the same key; the same data under it is stored once.
    shards = len(files_under(srv.dirs, "shards"))
    arn = "arn:aws:kms:us-east-1:000000000000:key/backups"
    c.put_object(Bucket=bucket, Key="again", Body=data, **kms(arn))
    assert len(files_under(srv.dirs, "shards")) == shards

    # Unknown key: AWS's KMS error, nothing stored. No key named: the store's "default" key.
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key="nokey", Body=b"x", **kms("nope"))
    assert error_of(exc) == (400, "KMS.NotFoundException")
    assert c.put_object(Bucket=bucket, Key="default", Body=b"small", **kms())["SSEKMSKeyId"] == "default"
    assert "default" in keys_of(srv)
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key="ctx", Body=b"x", SSEKMSEncryptionContext="bm90IGpzb24=", **kms("backups"))
    assert error_of(exc) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key="ctx", Body=b"x", SSEKMSKeyId="backups")
    assert error_of(exc) == (400, "InvalidArgument"), "a key id without aws:kms"
    listed = {o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {"big", "again", "default"}

    # Multipart and copies carry the key.
    up = c.create_multipart_upload(Bucket=bucket, Key="mp", **kms("backups"))
    assert up["SSEKMSKeyId"] == "backups"
    part = c.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=data)
    assert part["SSEKMSKeyId"] == "backups"
    done = c.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                       MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert done["SSEKMSKeyId"] == "backups"
    c.put_object(Bucket=bucket, Key="plain", Body=b"in clear")
    copied = c.copy_object(Bucket=bucket, Key="plain-kms", CopySource={"Bucket": bucket, "Key": "plain"},
                           **kms("backups"))
    assert copied["SSEKMSKeyId"] == "backups"
    assert c.get_object(Bucket=bucket, Key="plain-kms")["Body"].read() == b"in clear"
    assert c.get_object(Bucket=bucket, Key="mp")["Body"].read() == data

    # Disabled: its objects can be neither written nor read; enabled: back.
    assert admin(srv, "kms", "key", "disable", "backups").returncode == 0
    assert keys_of(srv)["backups"]["enabled"] is False
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key="big")
    assert error_of(exc) == (400, "KMS.DisabledException")
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key="more", Body=b"x", **kms("backups"))
    assert error_of(exc) == (400, "KMS.DisabledException")
    assert c.get_object(Bucket=bucket, Key="default")["Body"].read() == b"small", "other keys serve"
    assert admin(srv, "kms", "key", "enable", "backups").returncode == 0
    assert c.get_object(Bucket=bucket, Key="big")["Body"].read() == data


def test_bucket_default_encryption_with_a_kms_key(make_server):
    srv = keyed_server(make_server, ndisks=1)
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("kms-default")))
    assert admin(srv, "kms", "key", "create", "team-a").returncode == 0
    rule = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                              "KMSMasterKeyID": "team-a"}}]}
    c.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=rule)
    got = c.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert got["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "team-a"}
    put = c.put_object(Bucket=bucket, Key="k", Body=b"by default")
    assert (put["ServerSideEncryption"], put["SSEKMSKeyId"]) == ("aws:kms", "team-a")
    # A request that asks for SSE-S3 gets it.
    assert c.put_object(Bucket=bucket, Key="s3", Body=b"x", ServerSideEncryption="AES256")["ServerSideEncryption"] == "AES256"
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"by default"
    # No bucket key asked for: none answered.
    assert "BucketKeyEnabled" not in put and got["BucketKeyEnabled"] is False

    # S3 Bucket Keys: asked per request or by the bucket's default, answered on the object's
    # writes and reads (SSE-KMS only).
    asked = c.put_object(Bucket=bucket, Key="bk", Body=b"x", BucketKeyEnabled=True, **kms("team-a"))
    assert asked["BucketKeyEnabled"] is True
    assert c.head_object(Bucket=bucket, Key="bk")["BucketKeyEnabled"] is True
    assert c.get_object(Bucket=bucket, Key="bk")["BucketKeyEnabled"] is True
    copied = c.copy_object(Bucket=bucket, Key="bk-copy", CopySource={"Bucket": bucket, "Key": "bk"},
                           BucketKeyEnabled=True, **kms("team-a"))
    assert copied["BucketKeyEnabled"] is True
    up = c.create_multipart_upload(Bucket=bucket, Key="bk-mp", BucketKeyEnabled=True, **kms("team-a"))
    assert up["BucketKeyEnabled"] is True
    part = c.upload_part(Bucket=bucket, Key="bk-mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p")
    assert part["BucketKeyEnabled"] is True
    done = c.complete_multipart_upload(Bucket=bucket, Key="bk-mp", UploadId=up["UploadId"],
                                       MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert done["BucketKeyEnabled"] is True
    assert "BucketKeyEnabled" not in c.head_object(Bucket=bucket, Key="s3")
    rule["Rules"][0]["BucketKeyEnabled"] = True
    c.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=rule)
    got = c.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert got["BucketKeyEnabled"] is True
    assert c.put_object(Bucket=bucket, Key="k2", Body=b"by default")["BucketKeyEnabled"] is True


def test_master_key_rotation_reseals_the_key_store_and_rewrites_no_data(make_server):
    srv = keyed_server(make_server)
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("kms-rotate")))
    assert admin(srv, "kms", "key", "create", "backups").returncode == 0
    kms_data, s3_data = random_bytes(2 * MiB, "rotate-kms"), random_bytes(MiB + 1, "rotate-s3")
    c.put_object(Bucket=bucket, Key="kms", Body=kms_data, **kms("backups"))
    c.put_object(Bucket=bucket, Key="sse-s3", Body=s3_data, ServerSideEncryption="AES256")
    shard_files = {p: p.stat().st_mtime_ns for p in files_under(srv.dirs, "shards")}

    def restart(current: str, previous: str | None):
        srv.stop()
        srv.env_overrides["TESSERA_KMS_SECRET_KEY"] = current
        srv.env_overrides.pop("TESSERA_KMS_PREVIOUS_SECRET_KEY", None)
        if previous:
            srv.env_overrides["TESSERA_KMS_PREVIOUS_SECRET_KEY"] = previous
        srv.start()
        return s3_client(srv)

    def reads(client) -> bool:
        try:
            return (client.get_object(Bucket=bucket, Key="kms")["Body"].read() == kms_data
                    and client.get_object(Bucket=bucket, Key="sse-s3")["Body"].read() == s3_data)
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503, e.response
            return False

    # The new key alone opens nothing sealed under the old one, and says which key is needed.
    c = restart(NEW_MASTER, None)
    assert not reads(c)
    rc, report = admin_check(srv)
    assert rc == 2 and set(report["encryption"]["unreadable"]) == {"kms:backups", "kms:(sse-s3)"}, report
    # With the old one as previous: everything reads, and the rotation re-seals the store.
    c = restart(NEW_MASTER, MASTER_KEY)
    assert 'previous master key "test-master"' in srv.log_path.read_text()
    assert reads(c)
    rotated = admin(srv, "--json", "kms", "rotate-master")
    assert rotated.returncode == 0, rotated.stderr
    report = json.loads(rotated.stdout)
    assert sorted(report["resealed"]) == ["(sse-s3)", "backups"] and report["unopenable"] == []
    assert {k["master_key_id"] for k in keys_of(srv).values()} == {"master-2027"}
    # From now on the old key is not needed; no shard was rewritten.
    c = restart(NEW_MASTER, None)
    assert reads(c)
    rc, report = admin_check(srv)
    assert rc == 0 and report["clean"] is True, report
    assert {p: p.stat().st_mtime_ns for p in files_under(srv.dirs, "shards")} == shard_files
    # And the old key alone no longer opens anything: rotation reports what it cannot open.
    c = restart(MASTER_KEY, None)
    assert not reads(c)
    stuck = admin(srv, "--json", "kms", "rotate-master")
    assert stuck.returncode == 2 and sorted(json.loads(stuck.stdout)["unopenable"]) == ["(sse-s3)", "backups"]


def test_aws_cli_copies_with_a_kms_key(make_server, awscli, tmp_path):
    """The README's `aws s3 cp --sse aws:kms --sse-kms-key-id backups`."""
    srv = keyed_server(make_server, ndisks=1)
    assert admin(srv, "kms", "key", "create", "backups").returncode == 0
    s3_client(srv).create_bucket(Bucket=(bucket := new_bucket_name("kms-cli")))
    data = random_bytes(12 * MiB + 1, "kms-cli")
    (tmp_path / "db.dump").write_bytes(data)
    awscli(srv, "s3", "cp", "--sse", "aws:kms", "--sse-kms-key-id", "backups", tmp_path / "db.dump", f"s3://{bucket}/")
    head = s3_client(srv).head_object(Bucket=bucket, Key="db.dump")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", "backups")
    awscli(srv, "s3", "cp", f"s3://{bucket}/db.dump", tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == data
