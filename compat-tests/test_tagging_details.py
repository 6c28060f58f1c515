"""Object tagging (Put/Get/DeleteObjectTagging, x-amz-tagging on PUT and multipart,
x-amz-tagging-count, copy with TaggingDirective, limits), response header overrides,
stored standard headers, CopyObject MetadataDirective, storage classes and canned ACLs."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib

import pytest
from botocore.exceptions import ClientError

KiB = 1024
MiB = 1024 * 1024


def status_of(exc_info) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def code_of(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def tags_of(c, bucket, key) -> dict[str, str]:
    tagset = c.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    out = {t["Key"]: t["Value"] for t in tagset}
    assert len(out) == len(tagset), f"duplicate keys in {tagset}"
    return out


def tagset(d: dict[str, str]) -> dict:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in d.items()]}


def raw_header(resp, name: str):
    return resp["ResponseMetadata"]["HTTPHeaders"].get(name.lower())


@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server)


@pytest.fixture(scope="module")
def bucket(c, new_bucket_name):
    name = new_bucket_name("tagging")
    c.create_bucket(Bucket=name)
    return name


# ---------------------------------------------------------------- tagging ---
def test_put_get_delete_object_tagging(c, bucket):
    c.put_object(Bucket=bucket, Key="tags/basic", Body=b"tagged")
    assert tags_of(c, bucket, "tags/basic") == {}
    want = {"project": "tessera", "env": "test", "with space": "a value/with:chars+=.@-_"}
    c.put_object_tagging(Bucket=bucket, Key="tags/basic", Tagging=tagset(want))
    assert tags_of(c, bucket, "tags/basic") == want
    # PutObjectTagging replaces the whole set.
    c.put_object_tagging(Bucket=bucket, Key="tags/basic", Tagging=tagset({"only": "one"}))
    assert tags_of(c, bucket, "tags/basic") == {"only": "one"}
    got = c.get_object(Bucket=bucket, Key="tags/basic")
    assert got["TagCount"] == 1
    assert got["Body"].read() == b"tagged"  # tagging does not touch the data
    resp = c.delete_object_tagging(Bucket=bucket, Key="tags/basic")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tags_of(c, bucket, "tags/basic") == {}
    assert "TagCount" not in c.get_object(Bucket=bucket, Key="tags/basic")


def test_empty_tag_set_clears_tags(c, bucket):
    c.put_object(Bucket=bucket, Key="tags/clear", Body=b"x", Tagging="a=1")
    c.put_object_tagging(Bucket=bucket, Key="tags/clear", Tagging={"TagSet": []})
    assert tags_of(c, bucket, "tags/clear") == {}


def test_tagging_header_on_put(c, bucket):
    c.put_object(Bucket=bucket, Key="tags/header", Body=b"x", Tagging="a=1&b=2")
    assert tags_of(c, bucket, "tags/header") == {"a": "1", "b": "2"}
    got = c.get_object(Bucket=bucket, Key="tags/header")
    assert got["TagCount"] == 2
    assert raw_header(got, "x-amz-tagging-count") == "2"


def test_tagging_header_is_url_encoded(c, bucket):
    # The header is a URL query string: %20, %2B, %26 and %3D are data.
    c.put_object(Bucket=bucket, Key="tags/encoded", Body=b"x", Tagging="sp%20ace=x%2By&amp%26=eq%3D&empty=")
    assert tags_of(c, bucket, "tags/encoded") == {"sp ace": "x+y", "amp&": "eq=", "empty": ""}


def test_tagging_on_multipart_upload(c, bucket, random_bytes):
    data = random_bytes(5 * MiB + 1, "tags-mpu")
    mpu = c.create_multipart_upload(Bucket=bucket, Key="tags/mpu", Tagging="stage=mpu&n=2")
    parts = []
    for n, off in enumerate(range(0, len(data), 5 * MiB), start=1):
        r = c.upload_part(Bucket=bucket, Key="tags/mpu", UploadId=mpu["UploadId"], PartNumber=n, Body=data[off : off + 5 * MiB])
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    c.complete_multipart_upload(Bucket=bucket, Key="tags/mpu", UploadId=mpu["UploadId"], MultipartUpload={"Parts": parts})
    assert tags_of(c, bucket, "tags/mpu") == {"stage": "mpu", "n": "2"}


def test_overwrite_without_tagging_drops_tags(c, bucket):
    c.put_object(Bucket=bucket, Key="tags/overwrite", Body=b"v1", Tagging="a=1")
    c.put_object(Bucket=bucket, Key="tags/overwrite", Body=b"v2")
    assert tags_of(c, bucket, "tags/overwrite") == {}


def test_copy_object_tagging_directive(c, bucket):
    c.put_object(Bucket=bucket, Key="tags/src", Body=b"source", Tagging="color=red&size=xl")
    # Default directive: COPY.
    c.copy_object(Bucket=bucket, Key="tags/copy-default", CopySource={"Bucket": bucket, "Key": "tags/src"})
    assert tags_of(c, bucket, "tags/copy-default") == {"color": "red", "size": "xl"}
    c.copy_object(
        Bucket=bucket, Key="tags/copy-copy", CopySource={"Bucket": bucket, "Key": "tags/src"}, TaggingDirective="COPY"
    )
    assert tags_of(c, bucket, "tags/copy-copy") == {"color": "red", "size": "xl"}
    c.copy_object(
        Bucket=bucket,
        Key="tags/copy-replace",
        CopySource={"Bucket": bucket, "Key": "tags/src"},
        TaggingDirective="REPLACE",
        Tagging="color=blue",
    )
    assert tags_of(c, bucket, "tags/copy-replace") == {"color": "blue"}
    c.copy_object(
        Bucket=bucket, Key="tags/copy-replace-none", CopySource={"Bucket": bucket, "Key": "tags/src"}, TaggingDirective="REPLACE"
    )
    assert tags_of(c, bucket, "tags/copy-replace-none") == {}
    # The source keeps its tags.
    assert tags_of(c, bucket, "tags/src") == {"color": "red", "size": "xl"}


def test_tag_limits(c, bucket):
    key = "tags/limits"
    c.put_object(Bucket=bucket, Key=key, Body=b"x")
    c.put_object_tagging(Bucket=bucket, Key=key, Tagging=tagset({"keep": "me"}))

    # Exactly at the limits is fine: 10 tags, 128-character key, 256-character value.
    ten = {f"k{i}": f"v{i}" for i in range(10)}
    c.put_object_tagging(Bucket=bucket, Key=key, Tagging=tagset(ten))
    assert tags_of(c, bucket, key) == ten
    edge = {"k" * 128: "v" * 256}
    c.put_object_tagging(Bucket=bucket, Key=key, Tagging=tagset(edge))
    assert tags_of(c, bucket, key) == edge

    bad = [
        ("11 tags", tagset({f"k{i}": "v" for i in range(11)}), ("BadRequest", "InvalidTag")),
        ("129-char key", tagset({"k" * 129: "v"}), ("InvalidTag",)),
        ("257-char value", tagset({"k": "v" * 257}), ("InvalidTag",)),
        ("duplicate key", {"TagSet": [{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}]}, ("InvalidTag",)),
    ]
    failures = []
    for name, tagging, codes in bad:
        try:
            c.put_object_tagging(Bucket=bucket, Key=key, Tagging=tagging)
            failures.append(f"{name}: accepted")
            continue
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            code = exc.response["Error"]["Code"]
        if status != 400 or code not in codes:
            failures.append(f"{name}: got {status} {code}, expected 400 {'/'.join(codes)}")
    assert not failures, "\n".join(failures)
    # Rejected sets changed nothing.
    assert tags_of(c, bucket, key) == edge


def test_tag_limits_on_put_header(c, bucket):
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key="tags/too-many", Body=b"x", Tagging="&".join(f"k{i}=v" for i in range(11)))
    assert status_of(exc) == 400 and code_of(exc) in ("BadRequest", "InvalidTag")
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key="tags/long-key", Body=b"x", Tagging="k" * 129 + "=v")
    assert status_of(exc) == 400 and code_of(exc) == "InvalidTag"
    for key in ("tags/too-many", "tags/long-key"):
        with pytest.raises(ClientError) as exc:
            c.head_object(Bucket=bucket, Key=key)
        assert status_of(exc) == 404


def test_tagging_missing_key(c, bucket):
    for call in (
        lambda: c.get_object_tagging(Bucket=bucket, Key="tags/missing"),
        lambda: c.put_object_tagging(Bucket=bucket, Key="tags/missing", Tagging=tagset({"a": "b"})),
        lambda: c.delete_object_tagging(Bucket=bucket, Key="tags/missing"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert status_of(exc) == 404 and code_of(exc) == "NoSuchKey"
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key="tags/missing")
    assert status_of(exc) == 404


def test_tags_removed_with_object(c, bucket):
    c.put_object(Bucket=bucket, Key="tags/deleted", Body=b"x", Tagging="a=1")
    c.delete_object(Bucket=bucket, Key="tags/deleted")
    c.put_object(Bucket=bucket, Key="tags/deleted", Body=b"y")
    assert tags_of(c, bucket, "tags/deleted") == {}


# ------------------------------------------------- response overrides ---
def test_response_header_overrides(c, bucket):
    c.put_object(
        Bucket=bucket,
        Key="hdr/override",
        Body=b"override",
        ContentType="text/plain",
        CacheControl="no-cache",
    )
    expires = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    got = c.get_object(
        Bucket=bucket,
        Key="hdr/override",
        ResponseContentType="application/x-overridden",
        ResponseContentDisposition='attachment; filename="o.bin"',
        ResponseCacheControl="max-age=42",
        ResponseContentLanguage="fr-CA",
        ResponseContentEncoding="identity",
        ResponseExpires=expires,
    )
    assert got["Body"].read() == b"override"
    h = got["ResponseMetadata"]["HTTPHeaders"]
    assert h.get("content-type") == "application/x-overridden"
    assert h.get("content-disposition") == 'attachment; filename="o.bin"'
    assert h.get("cache-control") == "max-age=42"
    assert h.get("content-language") == "fr-CA"
    assert h.get("content-encoding") == "identity"
    assert email.utils.parsedate_to_datetime(h["expires"]) == expires
    # Overrides apply to that response only.
    head = c.head_object(Bucket=bucket, Key="hdr/override")
    assert head["ContentType"] == "text/plain"
    assert head["CacheControl"] == "no-cache"


def test_standard_headers_stored_and_returned(c, bucket):
    expires = dt.datetime(2030, 6, 7, 8, 9, 10, tzinfo=dt.timezone.utc)
    c.put_object(
        Bucket=bucket,
        Key="hdr/stored",
        Body=b"stored headers",
        CacheControl="public, max-age=600",
        ContentEncoding="br",
        ContentDisposition="inline",
        ContentLanguage="en-GB",
        Expires=expires,
        ContentType="text/markdown",
    )
    for resp in (c.head_object(Bucket=bucket, Key="hdr/stored"), c.get_object(Bucket=bucket, Key="hdr/stored")):
        h = resp["ResponseMetadata"]["HTTPHeaders"]
        assert h.get("cache-control") == "public, max-age=600"
        assert h.get("content-encoding") == "br"
        assert h.get("content-disposition") == "inline"
        assert h.get("content-language") == "en-GB"
        assert h.get("content-type") == "text/markdown"
        assert "expires" in h, h
        assert email.utils.parsedate_to_datetime(h["expires"]) == expires


# ------------------------------------------------- metadata directive ---
def test_copy_metadata_directive(c, bucket):
    c.put_object(
        Bucket=bucket,
        Key="meta/src",
        Body=b"meta source",
        ContentType="text/plain",
        CacheControl="max-age=1",
        ContentDisposition="inline",
        Metadata={"a": "1", "shared": "src"},
    )
    src = {"Bucket": bucket, "Key": "meta/src"}
    c.copy_object(Bucket=bucket, Key="meta/copy", CopySource=src)
    h = c.head_object(Bucket=bucket, Key="meta/copy")
    assert h["ContentType"] == "text/plain"
    assert h["CacheControl"] == "max-age=1"
    assert h["ContentDisposition"] == "inline"
    assert h["Metadata"] == {"a": "1", "shared": "src"}

    # COPY ignores metadata given with the request.
    c.copy_object(Bucket=bucket, Key="meta/copy-explicit", CopySource=src, MetadataDirective="COPY", Metadata={"x": "y"})
    assert c.head_object(Bucket=bucket, Key="meta/copy-explicit")["Metadata"] == {"a": "1", "shared": "src"}

    c.copy_object(
        Bucket=bucket,
        Key="meta/replaced",
        CopySource=src,
        MetadataDirective="REPLACE",
        ContentType="application/json",
        Metadata={"b": "2"},
    )
    h = c.head_object(Bucket=bucket, Key="meta/replaced")
    assert h["ContentType"] == "application/json"
    assert h["Metadata"] == {"b": "2"}
    assert "CacheControl" not in h and "ContentDisposition" not in h
    assert c.get_object(Bucket=bucket, Key="meta/replaced")["Body"].read() == b"meta source"


def test_copy_onto_itself(c, bucket):
    put = c.put_object(Bucket=bucket, Key="meta/self", Body=b"self", ContentType="text/plain", Metadata={"v": "1"})
    src = {"Bucket": bucket, "Key": "meta/self"}
    with pytest.raises(ClientError) as exc:
        c.copy_object(Bucket=bucket, Key="meta/self", CopySource=src)
    assert status_of(exc) == 400 and code_of(exc) == "InvalidRequest"
    with pytest.raises(ClientError) as exc:
        c.copy_object(Bucket=bucket, Key="meta/self", CopySource=src, MetadataDirective="COPY")
    assert status_of(exc) == 400 and code_of(exc) == "InvalidRequest"
    h = c.head_object(Bucket=bucket, Key="meta/self")
    assert h["Metadata"] == {"v": "1"} and h["ContentType"] == "text/plain"

    c.copy_object(
        Bucket=bucket, Key="meta/self", CopySource=src, MetadataDirective="REPLACE", ContentType="text/csv", Metadata={"v": "2"}
    )
    h = c.head_object(Bucket=bucket, Key="meta/self")
    assert h["Metadata"] == {"v": "2"} and h["ContentType"] == "text/csv"
    assert h["ETag"] == put["ETag"]
    assert c.get_object(Bucket=bucket, Key="meta/self")["Body"].read() == b"self"


# ------------------------------------------------------ storage class ---
def _listed_class(c, bucket, key, v1=False):
    resp = c.list_objects(Bucket=bucket, Prefix=key) if v1 else c.list_objects_v2(Bucket=bucket, Prefix=key)
    [obj] = [o for o in resp["Contents"] if o["Key"] == key]
    return obj.get("StorageClass")


def test_storage_class_standard(c, bucket):
    c.put_object(Bucket=bucket, Key="sc/standard", Body=b"s", StorageClass="STANDARD")
    # HeadObject omits x-amz-storage-class for STANDARD objects.
    assert c.head_object(Bucket=bucket, Key="sc/standard").get("StorageClass") in (None, "STANDARD")
    assert _listed_class(c, bucket, "sc/standard") == "STANDARD"
    assert _listed_class(c, bucket, "sc/standard", v1=True) == "STANDARD"
    c.put_object(Bucket=bucket, Key="sc/default", Body=b"d")
    assert _listed_class(c, bucket, "sc/default") == "STANDARD"


def test_storage_class_reduced_redundancy(c, bucket):
    c.put_object(Bucket=bucket, Key="sc/rrs", Body=b"r", StorageClass="REDUCED_REDUNDANCY")
    assert c.head_object(Bucket=bucket, Key="sc/rrs").get("StorageClass") == "REDUCED_REDUNDANCY"
    assert c.get_object(Bucket=bucket, Key="sc/rrs").get("StorageClass") == "REDUCED_REDUNDANCY"
    assert _listed_class(c, bucket, "sc/rrs") == "REDUCED_REDUNDANCY"
    assert _listed_class(c, bucket, "sc/rrs", v1=True) == "REDUCED_REDUNDANCY"
    assert c.get_object(Bucket=bucket, Key="sc/rrs")["Body"].read() == b"r"


def test_storage_class_change_by_copy(c, bucket):
    c.put_object(Bucket=bucket, Key="sc/change", Body=b"c", Metadata={"m": "1"})
    # Changing only the storage class is a legal copy onto itself.
    c.copy_object(
        Bucket=bucket, Key="sc/change", CopySource={"Bucket": bucket, "Key": "sc/change"}, StorageClass="REDUCED_REDUNDANCY"
    )
    h = c.head_object(Bucket=bucket, Key="sc/change")
    assert h.get("StorageClass") == "REDUCED_REDUNDANCY"
    assert h["Metadata"] == {"m": "1"}


def test_invalid_storage_class(c, bucket):
    with pytest.raises(ClientError) as exc:
        c.put_object(Bucket=bucket, Key="sc/bogus", Body=b"b", StorageClass="NOT_A_CLASS")
    assert status_of(exc) == 400 and code_of(exc) == "InvalidStorageClass"
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key="sc/bogus")
    assert status_of(exc) == 404


# --------------------------------------------------------- canned ACLs ---
@pytest.mark.parametrize("acl", ["private", "public-read", "bucket-owner-full-control", "authenticated-read"])
def test_canned_acl_on_put_object(c, bucket, acl):
    key = f"acl/{acl}"
    resp = c.put_object(Bucket=bucket, Key=key, Body=acl.encode(), ACL=acl)
    assert resp["ETag"] == '"%s"' % hashlib.md5(acl.encode()).hexdigest()
    assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == acl.encode()
    c.copy_object(Bucket=bucket, Key=key + "-copy", CopySource={"Bucket": bucket, "Key": key}, ACL=acl)
    assert c.get_object(Bucket=bucket, Key=key + "-copy")["Body"].read() == acl.encode()


@pytest.mark.parametrize("acl", ["private", "public-read"])
def test_canned_acl_on_create_bucket(c, new_bucket_name, acl):
    name = new_bucket_name(f"acl-{acl}")
    c.create_bucket(Bucket=name, ACL=acl)
    c.head_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="k", Body=b"v")
    assert c.get_object(Bucket=name, Key="k")["Body"].read() == b"v"
    c.delete_object(Bucket=name, Key="k")
    c.delete_bucket(Bucket=name)


def test_canned_acl_on_multipart(c, bucket):
    mpu = c.create_multipart_upload(Bucket=bucket, Key="acl/mpu", ACL="private")
    part = c.upload_part(Bucket=bucket, Key="acl/mpu", UploadId=mpu["UploadId"], PartNumber=1, Body=b"tiny")
    c.complete_multipart_upload(
        Bucket=bucket, Key="acl/mpu", UploadId=mpu["UploadId"], MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    )
    assert c.get_object(Bucket=bucket, Key="acl/mpu")["Body"].read() == b"tiny"
