"""Server-side encryption with customer keys (SSE-C), over HTTPS as AWS requires: the key is
checked against its MD5, sealed data opens only with the same key (a missing key is 400, a
wrong one 403), the key is never stored, data under one key dedups, copies and multipart
uploads carry keys as on AWS, and presigned URLs work with the key in headers. The server
has no master key: SSE-C needs none.

Layout relied on (documented): 4 data dirs give EC 2+2, objects up to 128 KiB are inline in
the metadata (`DIR/.tessera/meta`), bigger ones are 1 MiB chunks stored as shard files under
`DIR/shards/`.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import new_bucket_name, random_bytes, s3_client
from test_encryption import admin_check, files_containing, files_under, with_marker

KiB = 1024
MiB = 1024 * KiB
KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))


def ssec(key: bytes, prefix: str = "") -> dict:
    """boto3's SSE-C parameters (it sends the key base64'd, with its MD5)."""
    return {f"{prefix}SSECustomerAlgorithm": "AES256", f"{prefix}SSECustomerKey": key}


def md5_b64(key: bytes) -> str:
    return base64.b64encode(hashlib.md5(key).digest()).decode()


def status_and_code(exc) -> tuple[int, str]:
    err = exc.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"]


@pytest.fixture(scope="module")
def tls_server(server_factory, tmp_path_factory, test_ca):
    srv = server_factory(tmp_path_factory.mktemp("sse-c"), 4, ca=test_ca)
    yield srv
    srv.stop()


def test_customer_key_round_trips_and_is_never_stored(tls_server):
    c = s3_client(tls_server)
    c.create_bucket(Bucket=(bucket := new_bucket_name("ssec")))
    big = with_marker(random_bytes, 3 * MiB + 77, b"SSEC-MARKER-BIG", "ssec-big")
    small = with_marker(random_bytes, 900, b"SSEC-MARK-SMALL", "ssec-small")
    for key, data in (("big", big), ("small", small)):
        put = c.put_object(Bucket=bucket, Key=key, Body=data, **ssec(KEY_A))
        assert put["SSECustomerAlgorithm"] == "AES256" and put["SSECustomerKeyMD5"] == md5_b64(KEY_A)
        assert "ServerSideEncryption" not in put
        got = c.get_object(Bucket=bucket, Key=key, **ssec(KEY_A))
        assert got["Body"].read() == data, key
        assert (got["SSECustomerAlgorithm"], got["SSECustomerKeyMD5"]) == ("AES256", md5_b64(KEY_A))
        head = c.head_object(Bucket=bucket, Key=key, **ssec(KEY_A))
        assert head["ContentLength"] == len(data) and head["SSECustomerAlgorithm"] == "AES256"
    for first, last in ((3, 10), (MiB - 5, 2 * MiB + 5), (3 * MiB, 3 * MiB + 76)):
        got = c.get_object(Bucket=bucket, Key="big", Range=f"bytes={first}-{last}", **ssec(KEY_A))
        assert got["Body"].read() == big[first:last + 1], (first, last)

    for key in ("big", "small"):
        # No key: 400; another key: 403, for GET, HEAD and GetObjectAttributes alike.
        with pytest.raises(ClientError) as exc:
            c.get_object(Bucket=bucket, Key=key)
        assert status_and_code(exc) == (400, "InvalidRequest")
        assert "Server Side Encryption" in exc.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as exc:
            c.get_object(Bucket=bucket, Key=key, **ssec(KEY_B))
        assert status_and_code(exc) == (403, "AccessDenied")
        with pytest.raises(ClientError) as exc:
            c.head_object(Bucket=bucket, Key=key)
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        with pytest.raises(ClientError) as exc:
            c.head_object(Bucket=bucket, Key=key, **ssec(KEY_B))
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(ClientError) as exc:
            c.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=["ObjectSize"])
        assert status_and_code(exc) == (400, "InvalidRequest")
        # (boto3 takes this call's key already base64'd, with its MD5.)
        attrs = c.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=["ObjectSize"],
                                        SSECustomerAlgorithm="AES256",
                                        SSECustomerKey=base64.b64encode(KEY_A).decode(),
                                        SSECustomerKeyMD5=md5_b64(KEY_A))
        assert attrs["ObjectSize"] == (len(big) if key == "big" else len(small))

    # A key sent for an object that has none is refused too.
    c.put_object(Bucket=bucket, Key="plain", Body=b"in clear")
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key="plain", **ssec(KEY_A))
    assert status_and_code(exc) == (400, "InvalidRequest")

    # Neither the data nor the key is anywhere on disk.
    shards = files_under(tls_server.dirs, "shards")
    meta = files_under(tls_server.dirs, ".tessera/meta")
    assert shards and meta
    assert files_containing(shards, b"SSEC-MARKER-BIG") == []
    assert files_containing(meta, b"SSEC-MARK-SMALL") == []
    everything = files_under(tls_server.dirs, "")
    for secret in (KEY_A, base64.b64encode(KEY_A), KEY_A[:16]):
        assert files_containing(everything, secret) == [], secret


def test_bad_customer_keys_are_refused_with_s3_errors(tls_server):
    c = s3_client(tls_server)
    c.create_bucket(Bucket=(bucket := new_bucket_name("ssec-bad")))
    cases = [
        # (with its MD5 given, boto3 takes the key already base64'd)
        ({"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(KEY_A).decode(),
          "SSECustomerKeyMD5": md5_b64(KEY_B)}, "InvalidArgument"),
        ({"SSECustomerAlgorithm": "AES256", "SSECustomerKey": KEY_A[:16]}, "InvalidArgument"),
        ({"SSECustomerAlgorithm": "AES128", "SSECustomerKey": KEY_A}, "InvalidEncryptionAlgorithmError"),
        ({**ssec(KEY_A), "ServerSideEncryption": "AES256"}, "InvalidArgument"),
    ]
    for params, code in cases:
        with pytest.raises(ClientError) as exc:
            c.put_object(Bucket=bucket, Key="k", Body=b"data", **params)
        assert status_and_code(exc) == (400, code), params
    assert "Contents" not in c.list_objects_v2(Bucket=bucket), "nothing was stored"


def test_data_under_one_customer_key_is_stored_once(tls_server):
    c = s3_client(tls_server)
    c.create_bucket(Bucket=(bucket := new_bucket_name("ssec-dedup")))
    data = random_bytes(3 * MiB, "ssec-dedup")

    def shard_count():
        return len(files_under(tls_server.dirs, "shards"))

    before = shard_count()
    c.put_object(Bucket=bucket, Key="a1", Body=data, **ssec(KEY_A))
    one = shard_count() - before
    assert one > 0
    c.put_object(Bucket=bucket, Key="a2", Body=data, **ssec(KEY_A))
    assert shard_count() - before == one, "the same data under the same key is stored once"
    c.put_object(Bucket=bucket, Key="b", Body=data, **ssec(KEY_B))
    c.put_object(Bucket=bucket, Key="clear", Body=data)
    assert shard_count() - before == 3 * one, "other keys and plaintext never share chunks"
    for key, k in (("a1", KEY_A), ("a2", KEY_A), ("b", KEY_B)):
        assert c.get_object(Bucket=bucket, Key=key, **ssec(k))["Body"].read() == data, key


def test_copies_and_multipart_uploads_carry_their_keys(tls_server):
    c = s3_client(tls_server)
    c.create_bucket(Bucket=(bucket := new_bucket_name("ssec-mp")))
    parts = [random_bytes(5 * MiB, "ssec-mp-1"), random_bytes(MiB + 3, "ssec-mp-2")]
    created = c.create_multipart_upload(Bucket=bucket, Key="mp", **ssec(KEY_A))
    assert created["SSECustomerKeyMD5"] == md5_b64(KEY_A)
    upload = created["UploadId"]
    # Every part must carry the upload's key.
    with pytest.raises(ClientError) as exc:
        c.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=parts[0])
    assert status_and_code(exc)[0] == 400
    with pytest.raises(ClientError) as exc:
        c.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=parts[0], **ssec(KEY_B))
    assert status_and_code(exc) == (403, "AccessDenied")
    etags = []
    for n, p in enumerate(parts, 1):
        part = c.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=n, Body=p, **ssec(KEY_A))
        assert part["SSECustomerKeyMD5"] == md5_b64(KEY_A)
        etags.append(part["ETag"])
    c.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    whole = b"".join(parts)
    assert c.get_object(Bucket=bucket, Key="mp", **ssec(KEY_A))["Body"].read() == whole
    assert c.get_object(Bucket=bucket, Key="mp", PartNumber=2, **ssec(KEY_A))["Body"].read() == parts[1]

    source = {"Bucket": bucket, "Key": "mp"}
    # The source's key must come as x-amz-copy-source-server-side-encryption-customer-*.
    with pytest.raises(ClientError) as exc:
        c.copy_object(Bucket=bucket, Key="copy", CopySource=source)
    assert status_and_code(exc) == (400, "InvalidRequest")
    with pytest.raises(ClientError) as exc:
        c.copy_object(Bucket=bucket, Key="copy", CopySource=source, **ssec(KEY_B, "CopySource"))
    assert status_and_code(exc) == (403, "AccessDenied")
    # To plaintext, to the same key (shares the chunks), and rotated to another key in place.
    c.copy_object(Bucket=bucket, Key="clear", CopySource=source, **ssec(KEY_A, "CopySource"))
    assert c.get_object(Bucket=bucket, Key="clear")["Body"].read() == whole
    shards = len(files_under(tls_server.dirs, "shards"))
    c.copy_object(Bucket=bucket, Key="same", CopySource=source, **ssec(KEY_A, "CopySource"), **ssec(KEY_A))
    assert len(files_under(tls_server.dirs, "shards")) == shards, "a copy under the same key shares chunks"
    assert c.get_object(Bucket=bucket, Key="same", **ssec(KEY_A))["Body"].read() == whole
    rotated = c.copy_object(Bucket=bucket, Key="same", CopySource={"Bucket": bucket, "Key": "same"},
                            **ssec(KEY_A, "CopySource"), **ssec(KEY_B))
    assert rotated["SSECustomerKeyMD5"] == md5_b64(KEY_B)
    assert c.get_object(Bucket=bucket, Key="same", **ssec(KEY_B))["Body"].read() == whole
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key="same", **ssec(KEY_A))
    assert status_and_code(exc) == (403, "AccessDenied")

    # UploadPartCopy from an SSE-C source into an upload under another key.
    upload = c.create_multipart_upload(Bucket=bucket, Key="parts", **ssec(KEY_B))["UploadId"]
    with pytest.raises(ClientError) as exc:
        c.upload_part_copy(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=1, CopySource=source,
                           CopySourceRange=f"bytes=0-{5 * MiB - 1}", **ssec(KEY_B))
    assert status_and_code(exc) == (400, "InvalidRequest")
    etag = c.upload_part_copy(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=1, CopySource=source,
                              CopySourceRange=f"bytes=0-{5 * MiB - 1}",
                              **ssec(KEY_A, "CopySource"), **ssec(KEY_B))["CopyPartResult"]["ETag"]
    c.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload,
                                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert c.get_object(Bucket=bucket, Key="parts", **ssec(KEY_B))["Body"].read() == parts[0]


def test_presigned_urls_take_the_key_in_headers(tls_server):
    c = s3_client(tls_server)
    c.create_bucket(Bucket=(bucket := new_bucket_name("ssec-presign")))
    data = random_bytes(200 * KiB, "ssec-presign")
    c.put_object(Bucket=bucket, Key="k", Body=data, **ssec(KEY_A))
    url = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k", **ssec(KEY_A)},
                                   ExpiresIn=300)
    headers = {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(KEY_A).decode(),
        "x-amz-server-side-encryption-customer-key-MD5": md5_b64(KEY_A),
    }
    got = requests.get(url, headers=headers, verify=tls_server.ca_bundle, timeout=60)
    assert got.status_code == 200 and got.content == data
    assert got.headers["x-amz-server-side-encryption-customer-key-MD5"] == md5_b64(KEY_A)
    # The key headers are signed: a request without them no longer matches the signature.
    assert requests.get(url, verify=tls_server.ca_bundle, timeout=60).status_code in (400, 403)


def test_sse_c_objects_are_not_unreadable_to_admin_check(make_server):
    # Over plain HTTP only with the loud test flag; SSE-C needs no master key.
    srv = make_server(1, extra_args=["--allow-insecure-sse-c"])
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("ssec-check")))
    c.put_object(Bucket=bucket, Key="big", Body=random_bytes(2 * MiB, "ssec-check"), **ssec(KEY_A))
    c.put_object(Bucket=bucket, Key="small", Body=b"tiny", **ssec(KEY_B))
    rc, report = admin_check(srv)
    assert rc == 0 and report["clean"] is True, report
    assert report["encryption"]["unreadable"] == {}
    assert report["refcounts"]["encrypted"]["(customer key)"]["versions"] == 2


def test_aws_cli_copies_up_and_down_with_a_key_file(tls_server, awscli, tmp_path):
    """The README's commands: `aws s3 cp --sse-c AES256 --sse-c-key fileb://KEY`, one file
    big enough for a multipart upload (every part carries the key)."""
    s3_client(tls_server).create_bucket(Bucket=(bucket := new_bucket_name("ssec-cli")))
    (tmp_path / "my.key").write_bytes(KEY_A)
    key_args = ["--sse-c", "AES256", "--sse-c-key", f"fileb://{tmp_path / 'my.key'}"]
    data = random_bytes(20 * MiB + 5, "ssec-cli")
    (tmp_path / "report.bin").write_bytes(data)
    awscli(tls_server, "s3", "cp", *key_args, tmp_path / "report.bin", f"s3://{bucket}/report.bin")
    awscli(tls_server, "s3", "cp", *key_args, f"s3://{bucket}/report.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data
    refused = awscli(tls_server, "s3", "cp", f"s3://{bucket}/report.bin", tmp_path / "nokey.bin", check=False)
    assert refused.returncode != 0 and not (tmp_path / "nokey.bin").exists()


def test_versions_keep_their_own_keys(tls_server):
    """In a versioned bucket each version keeps the encryption it was written with: SSE-C
    under two keys, and plain."""
    c = s3_client(tls_server)
    c.create_bucket(Bucket=(bucket := new_bucket_name("ssec-versions")))
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first, second, third = (random_bytes(300 * KiB, f"ssec-v{i}") for i in range(3))
    v1 = c.put_object(Bucket=bucket, Key="k", Body=first, **ssec(KEY_A))["VersionId"]
    v2 = c.put_object(Bucket=bucket, Key="k", Body=second, **ssec(KEY_B))["VersionId"]
    v3 = c.put_object(Bucket=bucket, Key="k", Body=third)["VersionId"]
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == third
    assert c.get_object(Bucket=bucket, Key="k", VersionId=v1, **ssec(KEY_A))["Body"].read() == first
    assert c.get_object(Bucket=bucket, Key="k", VersionId=v2, **ssec(KEY_B))["Body"].read() == second
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key="k", VersionId=v1, **ssec(KEY_B))
    assert status_and_code(exc) == (403, "AccessDenied")
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key="k", VersionId=v2)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Restoring an old version by copying it onto the key needs its key, and may re-key it.
    c.copy_object(Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k", "VersionId": v1},
                  **ssec(KEY_A, "CopySource"), **ssec(KEY_B))
    assert c.get_object(Bucket=bucket, Key="k", **ssec(KEY_B))["Body"].read() == first
    assert c.get_object(Bucket=bucket, Key="k", VersionId=v3)["Body"].read() == third
