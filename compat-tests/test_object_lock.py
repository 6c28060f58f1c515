"""Object lock (WORM) against the real binary: buckets created with object lock (versioned for
good), the bucket's default retention, retention and legal holds on versions (headers and the
Put/Get calls), and their enforcement: a locked version cannot be removed (COMPLIANCE by no
one, root included; GOVERNANCE only with the bypass header and permission; a legal hold until
it is released), a plain DELETE still adds a delete marker, and locks survive a restart and
`admin check`.
"""

from __future__ import annotations

import datetime
import json

import pytest
from botocore.exceptions import ClientError

from conftest import new_bucket_name, s3_client
from test_encryption import admin_check
from test_users import add_user, admin

UTC = datetime.timezone.utc


def later(days: float = 1) -> datetime.datetime:
    return (datetime.datetime.now(UTC) + datetime.timedelta(days=days)).replace(microsecond=0)


def error_of(call) -> tuple[int, str]:
    with pytest.raises(ClientError) as exc:
        call()
    err = exc.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"]


def lock_bucket(c, prefix: str) -> str:
    c.create_bucket(Bucket=(bucket := new_bucket_name(prefix)), ObjectLockEnabledForBucket=True)
    return bucket


def versions_of(c, bucket: str, key: str) -> list[str]:
    listed = c.list_object_versions(Bucket=bucket, Prefix=key)
    return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == key]


def test_lock_buckets_and_their_configuration(make_server):
    srv = make_server(1)
    c = s3_client(srv)
    bucket = lock_bucket(c, "lock-config")
    assert c.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert error_of(lambda: c.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})) == (409, "InvalidBucketState")
    got = c.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert got == {"ObjectLockEnabled": "Enabled"}
    rule = {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 2}}
    c.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled",
                                                                             "Rule": rule})
    assert c.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]["Rule"] == rule
    bad = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}}}
    assert error_of(lambda: c.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=bad)) == (400, "MalformedXML")

    # The default applies to new objects.
    c.put_object(Bucket=bucket, Key="k", Body=b"data")
    head = c.head_object(Bucket=bucket, Key="k")
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockLegalHoldStatus"] == "OFF"
    until = head["ObjectLockRetainUntilDate"]
    assert later(1.99) < until < later(2.01), until
    assert c.get_object_retention(Bucket=bucket, Key="k")["Retention"]["Mode"] == "GOVERNANCE"

    # A bucket without object lock: no configuration, lock headers refused, and a lock
    # configuration only once versioning is on (which then enables it).
    c.create_bucket(Bucket=(plain := new_bucket_name("lock-plain")))
    assert error_of(lambda: c.get_object_lock_configuration(Bucket=plain)) == (404, "ObjectLockConfigurationNotFoundError")
    assert error_of(lambda: c.put_object(Bucket=plain, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                                         ObjectLockRetainUntilDate=later())) == (400, "InvalidRequest")
    enable = {"ObjectLockEnabled": "Enabled"}
    assert error_of(lambda: c.put_object_lock_configuration(Bucket=plain, ObjectLockConfiguration=enable)) == (409, "InvalidBucketState")
    c.put_bucket_versioning(Bucket=plain, VersioningConfiguration={"Status": "Enabled"})
    c.put_object_lock_configuration(Bucket=plain, ObjectLockConfiguration=enable)
    assert c.get_object_lock_configuration(Bucket=plain)["ObjectLockConfiguration"] == enable
    # Bad lock headers: mode without a date, a date in the past, an unknown mode.
    for params in ({"ObjectLockMode": "GOVERNANCE"},
                   {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": later(-1)},
                   {"ObjectLockMode": "FOREVER", "ObjectLockRetainUntilDate": later()}):
        assert error_of(lambda: c.put_object(Bucket=bucket, Key="bad", Body=b"x", **params)) == (400, "InvalidArgument"), params


def test_compliance_retention_binds_everyone_and_a_plain_delete_adds_a_marker(make_server):
    srv = make_server(1)
    c = s3_client(srv)
    bucket = lock_bucket(c, "lock-compliance")
    until = later(1)
    v = c.put_object(Bucket=bucket, Key="k", Body=b"kept", ObjectLockMode="COMPLIANCE",
                     ObjectLockRetainUntilDate=until)["VersionId"]
    head = c.head_object(Bucket=bucket, Key="k")
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", until)
    # Root, with or without the bypass: refused.
    assert error_of(lambda: c.delete_object(Bucket=bucket, Key="k", VersionId=v)) == (403, "AccessDenied")
    assert error_of(lambda: c.delete_object(Bucket=bucket, Key="k", VersionId=v,
                                            BypassGovernanceRetention=True)) == (403, "AccessDenied")
    gone = c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k", "VersionId": v}]})
    assert [e["Code"] for e in gone.get("Errors", [])] == ["AccessDenied"]
    # Shortening, weakening or removing: refused; extending: allowed.
    for retention in ({"Mode": "COMPLIANCE", "RetainUntilDate": later(0.5)},
                      {"Mode": "GOVERNANCE", "RetainUntilDate": later(2)}):
        assert error_of(lambda: c.put_object_retention(Bucket=bucket, Key="k", VersionId=v,
                                                       Retention=retention, BypassGovernanceRetention=True)) == (403, "AccessDenied")
    c.put_object_retention(Bucket=bucket, Key="k", VersionId=v,
                           Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later(3)})
    assert c.get_object_retention(Bucket=bucket, Key="k", VersionId=v)["Retention"]["RetainUntilDate"] == later(3)
    # A plain DELETE adds a delete marker; the locked version stays and reads.
    marker = c.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True
    assert c.get_object(Bucket=bucket, Key="k", VersionId=v)["Body"].read() == b"kept"
    # The marker itself is not locked: removing it brings the object back.
    c.delete_object(Bucket=bucket, Key="k", VersionId=marker["VersionId"])
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"kept"

    # A restart keeps the lock; `admin check` finds nothing to remove and removes nothing.
    srv.stop()
    srv.start()
    c = s3_client(srv)
    assert error_of(lambda: c.delete_object(Bucket=bucket, Key="k", VersionId=v)) == (403, "AccessDenied")
    rc, report = admin_check(srv)
    assert rc == 0 and report["clean"] is True, report
    assert versions_of(c, bucket, "k") == [v]


def test_governance_yields_only_to_the_bypass_and_its_permission(make_server, tmp_path):
    srv = make_server(1)
    c = s3_client(srv)
    bucket = lock_bucket(c, "lock-governance")
    v = c.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                     ObjectLockRetainUntilDate=later())["VersionId"]
    assert error_of(lambda: c.delete_object(Bucket=bucket, Key="k", VersionId=v)) == (403, "AccessDenied")
    # A user whose policies deny the bypass permission: refused even with the header.
    deny = tmp_path / "no-bypass.json"
    deny.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "s3:BypassGovernanceRetention", "Resource": "*"}]}))
    admin(srv, "policy", "add", "no-bypass", str(deny))
    weak = add_user(srv, "readwrite")
    admin(srv, "user", "attach-policy", weak.name, "no-bypass")
    strong = add_user(srv, "readwrite")
    wc = s3_client(srv, access_key=weak.access_key, secret_key=weak.secret_key)
    sc = s3_client(srv, access_key=strong.access_key, secret_key=strong.secret_key)
    assert error_of(lambda: wc.delete_object(Bucket=bucket, Key="k", VersionId=v,
                                             BypassGovernanceRetention=True)) == (403, "AccessDenied")
    assert error_of(lambda: sc.delete_object(Bucket=bucket, Key="k", VersionId=v)) == (403, "AccessDenied")
    # Shortening a GOVERNANCE retention also needs the bypass.
    assert error_of(lambda: sc.put_object_retention(Bucket=bucket, Key="k", VersionId=v, Retention={
        "Mode": "GOVERNANCE", "RetainUntilDate": later(0.5)})) == (403, "AccessDenied")
    assert versions_of(c, bucket, "k") == [v]
    sc.delete_object(Bucket=bucket, Key="k", VersionId=v, BypassGovernanceRetention=True)
    assert versions_of(c, bucket, "k") == []


def test_a_legal_hold_blocks_until_released(make_server):
    srv = make_server(1)
    c = s3_client(srv)
    bucket = lock_bucket(c, "lock-hold")
    v = c.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert c.get_object_legal_hold(Bucket=bucket, Key="k")["LegalHold"]["Status"] == "ON"
    assert error_of(lambda: c.delete_object(Bucket=bucket, Key="k", VersionId=v,
                                            BypassGovernanceRetention=True)) == (403, "AccessDenied")
    c.put_object_legal_hold(Bucket=bucket, Key="k", VersionId=v, LegalHold={"Status": "OFF"})
    assert c.get_object_legal_hold(Bucket=bucket, Key="k", VersionId=v)["LegalHold"]["Status"] == "OFF"
    assert error_of(lambda: c.get_object_retention(Bucket=bucket, Key="k")) == (404, "NoSuchObjectLockConfiguration")
    # Set again through the API on another version, then released and deleted.
    w = c.put_object(Bucket=bucket, Key="k", Body=b"y")["VersionId"]
    c.put_object_legal_hold(Bucket=bucket, Key="k", VersionId=w, LegalHold={"Status": "ON"})
    assert error_of(lambda: c.delete_object(Bucket=bucket, Key="k", VersionId=w)) == (403, "AccessDenied")
    c.put_object_legal_hold(Bucket=bucket, Key="k", VersionId=w, LegalHold={"Status": "OFF"})
    c.delete_object(Bucket=bucket, Key="k", VersionId=w)
    c.delete_object(Bucket=bucket, Key="k", VersionId=v)
    assert versions_of(c, bucket, "k") == []


def test_multipart_uploads_and_copies_take_locks(make_server):
    srv = make_server(1)
    c = s3_client(srv)
    bucket = lock_bucket(c, "lock-mp")
    up = c.create_multipart_upload(Bucket=bucket, Key="mp", ObjectLockLegalHoldStatus="ON")["UploadId"]
    etag = c.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"part")["ETag"]
    v = c.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up,
                                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})["VersionId"]
    assert c.head_object(Bucket=bucket, Key="mp")["ObjectLockLegalHoldStatus"] == "ON"
    assert error_of(lambda: c.delete_object(Bucket=bucket, Key="mp", VersionId=v)) == (403, "AccessDenied")
    # A copy gets the lock its request names, not its source's.
    copied = c.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "mp"},
                           ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=later())
    head = c.head_object(Bucket=bucket, Key="copy")
    assert (head["ObjectLockMode"], head["ObjectLockLegalHoldStatus"]) == ("GOVERNANCE", "OFF")
    assert error_of(lambda: c.delete_object(Bucket=bucket, Key="copy", VersionId=copied["VersionId"])) == (403, "AccessDenied")


def test_a_put_that_gets_a_retention_must_declare_its_integrity(make_server, raw_s3_request):
    """As on S3: Content-MD5 or a checksum, for a PUT with a retention (asked or the
    bucket's default); none needed for one without."""
    import base64
    import hashlib

    srv = make_server(1)
    c = s3_client(srv)
    bucket = lock_bucket(c, "lock-md5")
    r = raw_s3_request(srv, "PUT", f"/{bucket}/plain", body=b"no lock, no checksum")
    assert r.status == 200, r.body
    c.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    r = raw_s3_request(srv, "PUT", f"/{bucket}/bare", body=b"retained")
    assert (r.status, r.error_code) == (400, "InvalidRequest"), r.body
    md5 = base64.b64encode(hashlib.md5(b"retained").digest()).decode()
    r = raw_s3_request(srv, "PUT", f"/{bucket}/with-md5", headers={"Content-MD5": md5}, body=b"retained")
    assert r.status == 200, r.body
    assert c.head_object(Bucket=bucket, Key="with-md5")["ObjectLockMode"] == "GOVERNANCE"
    assert versions_of(c, bucket, "bare") == []
