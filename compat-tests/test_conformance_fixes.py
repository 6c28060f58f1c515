"""Conformance details where AWS S3 is the reference, one test (or a small group) per
behaviour:

 1. CompleteMultipartUpload repeated after it succeeded: 200, same ETag (and VersionId).
 2. GetObject/HeadObject ?partNumber= beyond the parts count: 400 InvalidPartNumber;
    partNumber=1 of a plain object is the whole object.
 3. Requests to a missing or deleted bucket: 404 NoSuchBucket.
 4. ListBuckets MaxBuckets / ContinuationToken / Prefix, BucketRegion in every entry.
 5. PutObject over HTTP ``Transfer-Encoding: chunked`` (no Content-Length, UNSIGNED-PAYLOAD)
    is stored whole.
 6. A well-formed but wrong x-amz-checksum-* value: 400 BadDigest.
 7. Presigned URLs: X-Amz-Expires 0 or > 604800 is 400 AuthorizationQueryParametersError;
    an expired URL is 403 AccessDenied "Request has expired".
 8. CreateBucket LocationConstraint / GetBucketLocation against the server's region.
 9. Content-Encoding: ``aws-chunked`` is removed, the rest is kept as the client wrote it.
10. Non-ASCII user metadata: returned RFC 2047 encoded (AWS UsingMetadata docs).
11. GetObjectAttributes: unquoted ETag, ObjectParts paging, VersionId.
12. Multipart checksum types: CRC64NVME defaults to FULL_OBJECT; CRC32 with
    ChecksumType=FULL_OBJECT yields the whole body's CRC32.

Everything runs on the module's shared ``server`` (region us-east-1, the suite's REGION)
except the regional LocationConstraint checks, which use a second server started with
``--region eu-west-1``.
"""

from __future__ import annotations

import base64
import email.header
import hashlib
import time
import zlib

import botocore.handlers
import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

import aws_chunked as ac
from conftest import REGION, ROOT_PASSWORD, ROOT_USER, raw_request, random_bytes, s3_client

KiB = 1024
MiB = 1024 * 1024
MIN_PART = 5 * MiB
OTHER_REGION = "eu-west-1"


# ---------------------------------------------------------------- helpers ---
@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server)


@pytest.fixture(scope="module")
def bucket(c, new_bucket_name):
    name = new_bucket_name("conform")
    c.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def vbucket(c, new_bucket_name):
    name = new_bucket_name("conform-ver")
    c.create_bucket(Bucket=name)
    c.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def status_of(resp) -> int:
    return resp["ResponseMetadata"]["HTTPStatusCode"]


def client_error(exc_info) -> tuple[str, int]:
    err = exc_info.value.response
    return err.get("Error", {}).get("Code"), err["ResponseMetadata"]["HTTPStatusCode"]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def crc32_b64(data: bytes) -> str:
    return b64((zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big"))


def md5_etag(data: bytes) -> str:
    return '"%s"' % hashlib.md5(data).hexdigest()


def multipart_etag(parts: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return '"%s-%d"' % (digest, len(parts))


def upload_parts(c, bucket, key, upload_id, parts, **kwargs) -> list[dict]:
    done = []
    for n, data in enumerate(parts, start=1):
        r = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data, **kwargs)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    return done


def complete(c, bucket, key, upload_id, parts, **kwargs):
    return c.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **kwargs
    )


def multipart_object(c, bucket, key, parts):
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = upload_parts(c, bucket, key, upload_id, parts)
    return complete(c, bucket, key, upload_id, done)


def plain_get(url: str) -> requests.Response:
    with requests.Session() as s:
        s.trust_env = False  # no proxies
        return s.get(url, timeout=30)


def xml_field(body: bytes, name: str) -> str | None:
    import re

    m = re.search(rb"<%s>([^<]*)</%s>" % (name.encode(), name.encode()), body)
    return m.group(1).decode() if m else None


# ============================== 1. CompleteMultipartUpload retried ===
@pytest.mark.parametrize("versioned", [False, True], ids=["plain-bucket", "versioned-bucket"])
def test_complete_multipart_upload_retry_returns_same_result(c, bucket, vbucket, versioned):
    b = vbucket if versioned else bucket
    key = f"complete-retry/{'v' if versioned else 'p'}"
    parts = [random_bytes(MIN_PART, f"cr-{versioned}-1"), random_bytes(100 * KiB + 7, f"cr-{versioned}-2")]
    upload_id = c.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
    done = upload_parts(c, b, key, upload_id, parts)

    first = complete(c, b, key, upload_id, done)
    assert status_of(first) == 200
    assert first["ETag"] == multipart_etag(parts)

    # The SDK's retry after a lost response: same upload id, same parts.
    again = complete(c, b, key, upload_id, done)
    assert status_of(again) == 200
    assert again["ETag"] == first["ETag"]
    assert again["Key"] == key and again["Bucket"] == b
    if versioned:
        assert first.get("VersionId"), first
        assert again.get("VersionId") == first["VersionId"]
        versions = c.list_object_versions(Bucket=b, Prefix=key).get("Versions", [])
        assert [v["VersionId"] for v in versions] == [first["VersionId"]], versions
    assert c.get_object(Bucket=b, Key=key)["Body"].read() == b"".join(parts)


# ===================================== 2. partNumber out of range ===
@pytest.fixture(scope="module")
def two_part_object(c, bucket):
    key = "partnumber/two"
    parts = [random_bytes(MIN_PART, "pn2-1"), random_bytes(64 * KiB + 1, "pn2-2")]
    etag = multipart_object(c, bucket, key, parts)["ETag"]
    return key, parts, etag


def test_part_number_beyond_parts_count_is_invalid_part_number(c, bucket, two_part_object):
    key, parts, etag = two_part_object
    # Sanity: an existing part works.
    got = c.get_object(Bucket=bucket, Key=key, PartNumber=2)
    assert got["Body"].read() == parts[1] and got["PartsCount"] == 2
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key=key, PartNumber=3)
    assert client_error(exc) == ("InvalidPartNumber", 400)
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key=key, PartNumber=3)
    assert status_of(exc.value.response) == 400  # HEAD has no body, so no code


def test_part_number_on_plain_object(c, bucket):
    key = "partnumber/plain"
    data = random_bytes(300 * KiB + 11, "pn-plain")
    etag = c.put_object(Bucket=bucket, Key=key, Body=data)["ETag"]
    got = c.get_object(Bucket=bucket, Key=key, PartNumber=1)
    assert got["Body"].read() == data
    assert got["ContentLength"] == len(data) and got["ETag"] == etag
    assert status_of(got) in (200, 206)
    if status_of(got) == 206:
        assert got["ContentRange"] == f"bytes 0-{len(data) - 1}/{len(data)}"
    head = c.head_object(Bucket=bucket, Key=key, PartNumber=1)
    assert head["ContentLength"] == len(data) and head["ETag"] == etag
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key=key, PartNumber=2)
    assert client_error(exc) == ("InvalidPartNumber", 400)
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key=key, PartNumber=2)
    assert status_of(exc.value.response) == 400


# ========================================= 3. missing bucket ===
def test_missing_or_deleted_bucket_is_no_such_bucket(c, new_bucket_name):
    missing = new_bucket_name("never-created")
    deleted = new_bucket_name("deleted")
    c.create_bucket(Bucket=deleted)
    c.put_object(Bucket=deleted, Key="k", Body=b"x")
    c.delete_object(Bucket=deleted, Key="k")
    c.delete_bucket(Bucket=deleted)
    for name in (missing, deleted):
        for what, call in (
            ("GetObject", lambda: c.get_object(Bucket=name, Key="k")),
            ("PutObject", lambda: c.put_object(Bucket=name, Key="k", Body=b"data")),
            ("ListObjectsV2", lambda: c.list_objects_v2(Bucket=name)),
        ):
            with pytest.raises(ClientError) as exc:
                call()
            assert client_error(exc) == ("NoSuchBucket", 404), (name, what)
        with pytest.raises(ClientError) as exc:
            c.head_bucket(Bucket=name)
        assert status_of(exc.value.response) == 404, name
    # The failed PutObject did not bring the bucket (back) into being.
    names = {b["Name"] for b in c.list_buckets()["Buckets"]}
    assert missing not in names and deleted not in names


# ====================================== 4. ListBuckets paging ===
def test_list_buckets_max_buckets_continuation_prefix(c, new_bucket_name):
    prefix = new_bucket_name("lb")  # unique: lb-<12 hex>
    names = sorted(f"{prefix}-{i}" for i in range(5))
    for n in names:
        c.create_bucket(Bucket=n)
    decoy = "x" + prefix  # does not start with the prefix
    c.create_bucket(Bucket=decoy)

    pages, echoed = [], []
    token = None
    for _ in range(5):
        kwargs = {"Prefix": prefix, "MaxBuckets": 2}
        if token:
            kwargs["ContinuationToken"] = token
        resp = c.list_buckets(**kwargs)
        pages.append([b["Name"] for b in resp["Buckets"]])
        echoed.append(resp.get("Prefix"))
        for b in resp["Buckets"]:
            assert b.get("BucketRegion") == REGION, b
        token = resp.get("ContinuationToken")
        if not token:
            break
    assert pages == [names[0:2], names[2:4], names[4:5]]
    assert echoed == [prefix] * 3  # the request's Prefix comes back in the response

    whole = c.list_buckets(Prefix=prefix)
    assert [b["Name"] for b in whole["Buckets"]] == names
    assert "ContinuationToken" not in whole

    one = c.list_buckets(MaxBuckets=1)
    assert len(one["Buckets"]) == 1 and one.get("ContinuationToken")
    everything = [b["Name"] for b in c.list_buckets()["Buckets"]]
    assert decoy in everything and set(names) <= set(everything)


# ============================ 5. HTTP chunked, no Content-Length ===
class _UnsignedPayloadAuth(S3SigV4Auth):
    def _should_sha256_sign_payload(self, request):
        return False


def test_put_http_chunked_without_content_length_is_stored_whole(server, c, bucket):
    key = "te/chunked-unsigned-payload"
    data = random_bytes(700 * KiB + 3, "te-unsigned")
    url = f"{server.url}/{bucket}/{key}"
    req = AWSRequest(method="PUT", url=url, data=b"")
    _UnsignedPayloadAuth(Credentials(ROOT_USER, ROOT_PASSWORD), "s3", REGION).add_auth(req)
    headers = {k: v for k, v in req.headers.items()}
    assert headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"

    def pieces():
        for i in range(0, len(data), 64 * KiB):
            yield data[i : i + 64 * KiB]

    with requests.Session() as s:
        s.trust_env = False
        resp = s.put(url, data=pieces(), headers=headers, timeout=60)
    sent = {k.lower(): v for k, v in resp.request.headers.items()}
    assert sent.get("transfer-encoding") == "chunked" and "content-length" not in sent, sent
    assert resp.status_code == 200, (resp.status_code, resp.content[:500])
    assert resp.headers.get("ETag") == md5_etag(data)
    got = c.get_object(Bucket=bucket, Key=key)
    assert got["ContentLength"] == len(data)
    assert got["Body"].read() == data


# ======================================== 6. wrong checksum value ===
@pytest.mark.parametrize("algo", ["crc32", "sha256"])
def test_wrong_well_formed_checksum_is_bad_digest(server, c, bucket, algo):
    key = f"bad-digest/{algo}"
    data = random_bytes(40 * KiB, f"bd-{algo}")
    wrong = ac.CHECKSUM_FUNCS[algo](data + b"!")  # right length and alphabet, wrong value
    resp = raw_request(server, "PUT", f"/{bucket}/{key}", body=data, headers={f"x-amz-checksum-{algo}": wrong})
    assert resp.status == 400, resp.body[:500]
    assert resp.error_code == "BadDigest", resp.body[:500]
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key=key)
    assert status_of(exc.value.response) == 404


# ============================================ 7. presigned expiry ===
@pytest.mark.parametrize("expires", [0, 604801])
def test_presigned_expires_out_of_range(c, bucket, expires):
    c.put_object(Bucket=bucket, Key="presign/obj", Body=b"presigned body")
    url = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presign/obj"}, ExpiresIn=expires)
    assert f"X-Amz-Expires={expires}&" in url or url.endswith(f"X-Amz-Expires={expires}"), url
    r = plain_get(url)
    assert r.status_code == 400, (r.status_code, r.content[:500])
    assert xml_field(r.content, "Code") == "AuthorizationQueryParametersError", r.content[:500]


def test_presigned_max_expiry_is_accepted(c, bucket):
    c.put_object(Bucket=bucket, Key="presign/obj-max", Body=b"seven days")
    url = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presign/obj-max"}, ExpiresIn=604800)
    r = plain_get(url)
    assert (r.status_code, r.content) == (200, b"seven days")


def test_presigned_url_expired(c, bucket):
    c.put_object(Bucket=bucket, Key="presign/short", Body=b"short lived")
    url = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presign/short"}, ExpiresIn=1)
    time.sleep(2.2)
    r = plain_get(url)
    assert r.status_code == 403, (r.status_code, r.content[:500])
    assert xml_field(r.content, "Code") == "AccessDenied", r.content[:500]
    assert "Request has expired" in (xml_field(r.content, "Message") or ""), r.content[:500]


# ================================= 8. LocationConstraint / region ===
def test_get_bucket_location_default_region_is_empty(c, new_bucket_name):
    name = new_bucket_name("loc-default")
    c.create_bucket(Bucket=name)
    # us-east-1: AWS answers an empty <LocationConstraint/>, which boto3 gives as None.
    assert c.get_bucket_location(Bucket=name).get("LocationConstraint") is None


def test_create_bucket_explicit_us_east_1_constraint_is_invalid(c, new_bucket_name):
    # AWS: us-east-1 is the default and must not be given as a LocationConstraint.
    name = new_bucket_name("loc-use1")
    with pytest.raises(ClientError) as exc:
        c.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert client_error(exc) == ("InvalidLocationConstraint", 400)
    with pytest.raises(ClientError) as exc:
        c.head_bucket(Bucket=name)
    assert status_of(exc.value.response) == 404


@pytest.fixture(scope="module")
def eu_server(server_factory, tmp_path_factory):
    srv = server_factory(tmp_path_factory.mktemp("server-eu"), 1, extra_args=("--region", OTHER_REGION))
    yield srv
    srv.stop()


def test_location_constraint_on_regional_server(eu_server, new_bucket_name):
    ec = s3_client(eu_server, region=OTHER_REGION)
    same = new_bucket_name("loc-same")
    ec.create_bucket(Bucket=same, CreateBucketConfiguration={"LocationConstraint": OTHER_REGION})
    assert ec.get_bucket_location(Bucket=same).get("LocationConstraint") == OTHER_REGION
    listed = {b["Name"]: b.get("BucketRegion") for b in ec.list_buckets()["Buckets"]}
    assert listed.get(same) == OTHER_REGION

    other = new_bucket_name("loc-other")
    with pytest.raises(ClientError) as exc:
        ec.create_bucket(Bucket=other, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    assert client_error(exc) == ("IllegalLocationConstraintException", 400)
    with pytest.raises(ClientError) as exc:
        ec.head_bucket(Bucket=other)
    assert status_of(exc.value.response) == 404


def test_unspecified_location_constraint_on_regional_server(eu_server, new_bucket_name):
    # AWS refuses this on a regional endpoint other than us-east-1 ("The unspecified location
    # constraint is incompatible ..."). tessera deliberately accepts it and records the
    # server's region: clients configured with a custom region (boto3's create_bucket without
    # a configuration, MinIO-style tools) keep working.
    ec = s3_client(eu_server, region=OTHER_REGION)
    name = new_bucket_name("loc-unspec")
    ec.create_bucket(Bucket=name)
    assert ec.get_bucket_location(Bucket=name).get("LocationConstraint") == OTHER_REGION


# ============================================ 9. Content-Encoding ===
def test_content_encoding_drops_only_aws_chunked(server, c, bucket):
    c.put_object(Bucket=bucket, Key="ce/plain", Body=b"not really compressed", ContentEncoding="deflate, gzip")
    assert c.head_object(Bucket=bucket, Key="ce/plain")["ContentEncoding"] == "deflate, gzip"

    data = random_bytes(150 * KiB + 9, "ce-streamed")
    req = ac.build_streaming_put(
        f"/{bucket}/ce/streamed",
        data,
        host=f"127.0.0.1:{server.port}",
        mode=ac.STREAMING_SIGNED,
        access_key=ROOT_USER,
        secret_key=ROOT_PASSWORD,
        extra_headers={"Content-Encoding": "aws-chunked, deflate, gzip"},
    )
    resp = ac.send("127.0.0.1", server.port, req.method, req.path, req.headers, req.body)
    assert resp.status == 200, (resp.status, resp.body[:500])
    head = c.head_object(Bucket=bucket, Key="ce/streamed")
    assert head.get("ContentEncoding") == "deflate, gzip"
    got = c.get_object(Bucket=bucket, Key="ce/streamed")
    assert got.get("ContentEncoding") == "deflate, gzip"
    assert got["Body"].read() == data


# ====================================== 10. non-ASCII metadata ===
# AWS (UsingMetadata docs): non-US-ASCII metadata values are RFC 2047 decoded before
# storing and RFC 2047 encoded before returning; reports from AWS (boto/boto3#3063,
# minio/minio#21282) show the B form, =?UTF-8?B?<base64 of the UTF-8>?=. HTTP header bytes
# are ISO-8859-1, so a raw 0xE9 byte is "é". botocore 1.43 does not decode the value:
# Metadata carries the encoded word.
def test_non_ascii_metadata_is_rfc2047_encoded(server, c, bucket):
    # (a) A raw Latin-1 "é" on the wire (what botocore sends once its client-side ASCII
    # check is removed, as in boto/boto3#3063).
    loose = s3_client(server)
    loose.meta.events.unregister("before-parameter-build.s3.PutObject", botocore.handlers.validate_ascii_metadata)
    loose.put_object(Bucket=bucket, Key="meta/latin1", Body=b"x", Metadata={"name": "café"})
    head = c.head_object(Bucket=bucket, Key="meta/latin1")
    raw_value = head["ResponseMetadata"]["HTTPHeaders"].get("x-amz-meta-name")
    assert raw_value == "=?UTF-8?B?" + b64("café".encode()) + "?=", raw_value
    assert head["Metadata"]["name"] == raw_value
    assert str(email.header.make_header(email.header.decode_header(raw_value))) == "café"

    # (b) A value the client RFC 2047-encoded itself (the only way to send "日本" in a header).
    encoded = "=?UTF-8?B?" + b64("日本".encode()) + "?="
    resp = raw_request(server, "PUT", f"/{bucket}/meta/cjk", body=b"y", headers={"x-amz-meta-name": encoded})
    assert resp.status == 200, resp.body[:500]
    head = c.head_object(Bucket=bucket, Key="meta/cjk")
    value = head["ResponseMetadata"]["HTTPHeaders"].get("x-amz-meta-name")
    assert value is not None and value.isascii(), value
    assert str(email.header.make_header(email.header.decode_header(value))) == "日本", value
    assert value == encoded

    # ASCII values are returned as they are.
    c.put_object(Bucket=bucket, Key="meta/ascii", Body=b"z", Metadata={"name": "plain ascii"})
    assert c.head_object(Bucket=bucket, Key="meta/ascii")["Metadata"] == {"name": "plain ascii"}


# ===================================== 11. GetObjectAttributes ===
@pytest.fixture(scope="module")
def three_part_crc32_object(c, bucket):
    key = "attrs/three-parts"
    parts = [random_bytes(MIN_PART, "ga-1"), random_bytes(MIN_PART + 3, "ga-2"), random_bytes(200 * KiB, "ga-3")]
    upload_id = c.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32")["UploadId"]
    done = []
    for n, data in enumerate(parts, start=1):
        r = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data, ChecksumAlgorithm="CRC32")
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    etag = complete(c, bucket, key, upload_id, done)["ETag"]
    assert etag == multipart_etag(parts)
    return key, parts, etag


def test_get_object_attributes_etag_has_no_quotes(c, bucket, three_part_crc32_object):
    data = b"attributes of a plain object"
    c.put_object(Bucket=bucket, Key="attrs/plain", Body=data)
    attrs = c.get_object_attributes(Bucket=bucket, Key="attrs/plain", ObjectAttributes=["ETag", "ObjectSize"])
    assert attrs["ETag"] == hashlib.md5(data).hexdigest()
    assert "ObjectParts" not in attrs
    key, _parts, etag = three_part_crc32_object
    attrs = c.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=["ETag"])
    assert attrs["ETag"] == etag.strip('"')


def test_get_object_attributes_object_parts_paging(c, bucket, three_part_crc32_object):
    key, parts, _etag = three_part_crc32_object
    first = c.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=["ObjectParts", "ObjectSize"], MaxParts=2)
    assert first["ObjectSize"] == sum(len(p) for p in parts)
    op = first["ObjectParts"]
    assert op["TotalPartsCount"] == 3
    assert op.get("MaxParts") == 2, op
    assert op.get("IsTruncated") is True, op
    assert op.get("PartNumberMarker", 0) == 0, op
    assert op.get("NextPartNumberMarker") == 2, op
    got = [(p["PartNumber"], p["Size"], p.get("ChecksumCRC32")) for p in op.get("Parts", [])]
    assert got == [(1, len(parts[0]), crc32_b64(parts[0])), (2, len(parts[1]), crc32_b64(parts[1]))], op

    second = c.get_object_attributes(
        Bucket=bucket, Key=key, ObjectAttributes=["ObjectParts"], MaxParts=2, PartNumberMarker=2
    )
    op2 = second["ObjectParts"]
    assert op2["TotalPartsCount"] == 3
    assert op2.get("IsTruncated") is False, op2
    assert op2.get("PartNumberMarker") == 2, op2
    got = [(p["PartNumber"], p["Size"], p.get("ChecksumCRC32")) for p in op2.get("Parts", [])]
    assert got == [(3, len(parts[2]), crc32_b64(parts[2]))], op2


def test_get_object_attributes_version_id(c, vbucket):
    v1 = c.put_object(Bucket=vbucket, Key="attrs/versioned", Body=b"one")["VersionId"]
    v2 = c.put_object(Bucket=vbucket, Key="attrs/versioned", Body=b"two!")["VersionId"]
    latest = c.get_object_attributes(Bucket=vbucket, Key="attrs/versioned", ObjectAttributes=["ObjectSize"])
    assert latest["ObjectSize"] == 4
    assert latest.get("VersionId") == v2, latest
    older = c.get_object_attributes(Bucket=vbucket, Key="attrs/versioned", VersionId=v1, ObjectAttributes=["ObjectSize"])
    assert older["ObjectSize"] == 3, older  # the version asked for, not the latest
    assert older.get("VersionId") == v1, older


# ====================================== 12. multipart checksum types ===
def test_multipart_crc64nvme_is_full_object_by_default(c, bucket):
    key = "cktype/crc64nvme"
    parts = [random_bytes(MIN_PART, "nv-1"), random_bytes(64 * KiB + 5, "nv-2")]
    created = c.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC64NVME")
    assert created.get("ChecksumAlgorithm") == "CRC64NVME"
    assert created.get("ChecksumType") == "FULL_OBJECT"
    upload_id = created["UploadId"]
    done = []
    for n, data in enumerate(parts, start=1):
        value = ac.crc64nvme_b64(data)
        r = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data, ChecksumCRC64NVME=value)
        assert r.get("ChecksumCRC64NVME") == value
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC64NVME": value})
    whole = ac.crc64nvme_b64(b"".join(parts))
    resp = complete(c, bucket, key, upload_id, done)
    assert resp.get("ChecksumType") == "FULL_OBJECT", resp
    assert resp.get("ChecksumCRC64NVME") == whole, resp
    head = c.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC64NVME") == whole
    assert head.get("ChecksumType") == "FULL_OBJECT"


def test_multipart_crc32_full_object(c, bucket):
    key = "cktype/crc32-full"
    parts = [random_bytes(MIN_PART, "fo-1"), random_bytes(MIN_PART + 1, "fo-2"), random_bytes(33 * KiB, "fo-3")]
    created = c.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    assert created.get("ChecksumType") == "FULL_OBJECT"
    upload_id = created["UploadId"]
    done = []
    for n, data in enumerate(parts, start=1):
        r = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data, ChecksumAlgorithm="CRC32")
        assert r.get("ChecksumCRC32") == crc32_b64(data)
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    whole = crc32_b64(b"".join(parts))  # the whole body's CRC32, no "-N" suffix
    resp = complete(c, bucket, key, upload_id, done)
    assert status_of(resp) == 200
    assert resp.get("ChecksumType") == "FULL_OBJECT", resp
    assert resp.get("ChecksumCRC32") == whole, resp
    head = c.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32") == whole
    assert head.get("ChecksumType") == "FULL_OBJECT"
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(parts)


def test_multipart_without_algorithm_gets_a_full_object_crc64nvme(server, c, bucket):
    # As S3 does for uploads that name no algorithm: parts get CRC64NVME by default, the
    # object a full-object CRC64NVME combined from them. The parts carry no checksum header
    # (boto3 adds one by default: turned off here).
    key = "cktype/none"
    parts = [random_bytes(MIN_PART, "none-1"), random_bytes(10 * KiB + 3, "none-2")]
    quiet = s3_client(server, request_checksum_calculation="when_required")
    upload_id = quiet.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = upload_parts(quiet, bucket, key, upload_id, parts)
    complete(quiet, bucket, key, upload_id, done)
    head = c.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC64NVME") == ac.crc64nvme_b64(b"".join(parts)), head
    assert head.get("ChecksumType") == "FULL_OBJECT"
