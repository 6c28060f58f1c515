"""Bucket lifecycle rules against the real binary, with lifecycle days shortened to 2 seconds
(`TESSERA_LIFECYCLE_DAY_SECS`): the configuration calls and their validation, current versions
expiring (removed, or under a delete marker where versioning is on) with prefix, tag and size
filters, noncurrent versions expiring past NewerNoncurrentVersions, lone delete markers
removed, incomplete multipart uploads aborted, `x-amz-expiration` on PUT, HEAD and GET, locked
versions kept, and every action counted in /metrics.
"""

from __future__ import annotations

import datetime
import os
import time

import pytest
from botocore.exceptions import ClientError

from conftest import MiB, new_bucket_name, s3_client
from test_compression import shard_bytes
from test_encryption import admin_check
from test_object_lock import error_of, later, lock_bucket
from test_observability import scrape

DAY_SECS = 2
# A rule's Days=1 is due within two lifecycle days of a write (rounded up to a day boundary),
# and passes run every second.
WAIT = 20


@pytest.fixture(scope="module")
def lc(server_factory, tmp_path_factory):
    srv = server_factory(tmp_path_factory.mktemp("lifecycle"), 1, start=False)
    srv.env_overrides["TESSERA_LIFECYCLE_DAY_SECS"] = str(DAY_SECS)
    srv.start()
    yield srv
    srv.stop()


def eventually(check, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout}s: {what}", pytrace=False)
        time.sleep(0.3)


def exists(c, bucket: str, key: str) -> bool:
    try:
        c.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        assert e.response["Error"]["Code"] in ("404", "NoSuchKey"), e.response
        return False


def versions(c, bucket: str, prefix: str = "") -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is a delete marker, is latest): versions as listed (newest first per
    key), then delete markers."""
    got = c.list_object_versions(Bucket=bucket, Prefix=prefix)
    return [(v["Key"], v["VersionId"], False, v["IsLatest"]) for v in got.get("Versions", [])] + [
        (m["Key"], m["VersionId"], True, m["IsLatest"]) for m in got.get("DeleteMarkers", [])]


def bucket_with(c, prefix: str, rules: list[dict], *, versioned: bool = False) -> str:
    c.create_bucket(Bucket=(bucket := new_bucket_name(prefix)))
    if versioned:
        c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    c.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    return bucket


def test_configuration_round_trip_and_validation(lc):
    c = s3_client(lc)
    c.create_bucket(Bucket=(bucket := new_bucket_name("lc-config")))
    assert error_of(lambda: c.get_bucket_lifecycle_configuration(Bucket=bucket)) == (404, "NoSuchLifecycleConfiguration")
    rules = [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}},
        {"ID": "tagged", "Status": "Disabled", "Filter": {"Tag": {"Key": "tmp", "Value": "1"}},
         "Expiration": {"Date": datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)}},
        {"ID": "and", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "data/", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}],
                            "ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 1000}},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 3}},
        {"ID": "big", "Status": "Enabled", "Filter": {"ObjectSizeGreaterThan": 1048576},
         "Expiration": {"Days": 1}},
        {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": ""},
         "Expiration": {"ExpiredObjectDeleteMarker": True},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
    ]
    c.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    assert c.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == rules
    # The older rule-level Prefix is answered as given; a rule without an id gets one.
    legacy = [{"Status": "Enabled", "Prefix": "old/", "Expiration": {"Days": 3}}]
    c.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": legacy})
    (got,) = c.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert got["Prefix"] == "old/" and got["Expiration"] == {"Days": 3} and got["ID"], got

    def refused(*rules: dict) -> tuple[int, str]:
        return error_of(lambda: c.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)}))

    def rule(**fields) -> dict:
        return {"ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""}, **fields}

    assert refused(rule(Expiration={"Days": 0})) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as exc:
        c.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule(Expiration={"Days": 0})]})
    assert exc.value.response["Error"]["Message"] == "'Days' for Expiration action must be a positive integer"
    assert refused(rule(Expiration={"Date": datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.timezone.utc)})) == (400, "InvalidArgument")
    assert refused(rule(Expiration={"Days": 1, "Date": datetime.datetime(2030, 1, 1)})) == (400, "MalformedXML")
    assert refused(rule(Expiration={"Days": 1, "ExpiredObjectDeleteMarker": True})) == (400, "MalformedXML")
    assert refused(rule(NoncurrentVersionExpiration={"NoncurrentDays": -1})) == (400, "InvalidArgument")
    assert refused(rule(AbortIncompleteMultipartUpload={"DaysAfterInitiation": 0})) == (400, "InvalidArgument")
    assert refused(rule()) == (400, "InvalidRequest"), "a rule needs an action"
    assert refused(rule(Expiration={"Days": 1}), rule(Expiration={"Days": 2})) == (400, "InvalidArgument"), "same ID"
    assert refused({"ID": "r", "Status": "Enabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}) == (400, "InvalidRequest")
    assert refused({"ID": "r", "Status": "Enabled", "Filter": {"And": {"Prefix": "", "ObjectSizeGreaterThan": 10,
                                                                        "ObjectSizeLessThan": 5}},
                    "Expiration": {"Days": 1}}) == (400, "InvalidArgument")
    assert refused(rule(Transitions=[{"Days": 1, "StorageClass": "GLACIER"}])) == (501, "NotImplemented")
    # Nothing refused replaced the configuration.
    assert c.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["Prefix"] == "old/"

    c.delete_bucket_lifecycle(Bucket=bucket)
    assert error_of(lambda: c.get_bucket_lifecycle_configuration(Bucket=bucket)) == (404, "NoSuchLifecycleConfiguration")
    missing = new_bucket_name("lc-missing")
    assert error_of(lambda: c.put_bucket_lifecycle_configuration(
        Bucket=missing, LifecycleConfiguration={"Rules": [rule(Expiration={"Days": 1})]})) == (404, "NoSuchBucket")


def test_current_versions_expire_by_filter(lc):
    c = s3_client(lc)
    rules = [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}},
        {"ID": "tagged-big", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "t/", "Tags": [{"Key": "exp", "Value": "yes"}], "ObjectSizeGreaterThan": 10}},
         "Expiration": {"Days": 1}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"}, "Expiration": {"Days": 1}},
    ]
    plain = bucket_with(c, "lc-expire", rules)
    versioned = bucket_with(c, "lc-expire-v", rules, versioned=True)
    for bucket in (plain, versioned):
        put = c.put_object(Bucket=bucket, Key="tmp/a", Body=b"expires")
        # x-amz-expiration names the rule, on PUT, HEAD and GET.
        assert 'rule-id="tmp"' in put["Expiration"] and put["Expiration"].startswith('expiry-date="'), put
        assert 'rule-id="tmp"' in c.head_object(Bucket=bucket, Key="tmp/a")["Expiration"]
        assert 'rule-id="tmp"' in c.get_object(Bucket=bucket, Key="tmp/a")["Expiration"]
        c.put_object(Bucket=bucket, Key="keep/b", Body=b"disabled rule")
        assert "Expiration" not in c.head_object(Bucket=bucket, Key="keep/b")
        c.put_object(Bucket=bucket, Key="t/big", Body=b"x" * 100, Tagging="exp=yes")
        c.put_object(Bucket=bucket, Key="t/small", Body=b"x" * 5, Tagging="exp=yes")
        c.put_object(Bucket=bucket, Key="t/untagged", Body=b"x" * 100)
        c.put_object(Bucket=bucket, Key="other", Body=b"no rule")
    for bucket in (plain, versioned):
        eventually(lambda: not exists(c, bucket, "tmp/a") and not exists(c, bucket, "t/big"),
                   f"tmp/a and t/big expire in {bucket}")
        for key in ("keep/b", "t/small", "t/untagged", "other"):
            assert exists(c, bucket, key), (bucket, key)
    # Unversioned: gone. Versioned: hidden under a delete marker, the data kept as a
    # noncurrent version.
    assert versions(c, plain, "tmp/") == []
    assert sorted((k, m, latest) for k, _, m, latest in versions(c, versioned, "tmp/")) == [
        ("tmp/a", False, False), ("tmp/a", True, True)]
    # A delete marker does not expire again.
    time.sleep(2 * DAY_SECS + 1)
    assert len(versions(c, versioned, "tmp/")) == 2


def test_noncurrent_versions_and_lone_delete_markers(lc):
    c = s3_client(lc)
    rules = [
        {"ID": "noncurrent", "Status": "Enabled", "Filter": {"Prefix": "k"},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
        {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": "m/"},
         "Expiration": {"ExpiredObjectDeleteMarker": True},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
    ]
    bucket = bucket_with(c, "lc-noncurrent", rules, versioned=True)
    # 2 MiB of random bytes per version: the chunks of removed versions are collected.
    bodies = [os.urandom(2 * MiB) for _ in range(4)]
    before = shard_bytes(lc)
    ids = [c.put_object(Bucket=bucket, Key="k", Body=body)["VersionId"] for body in bodies]
    written = shard_bytes(lc) - before
    assert written >= 4 * 2 * MiB, written
    c.put_object(Bucket=bucket, Key="m/x", Body=b"deleted soon")
    c.delete_object(Bucket=bucket, Key="m/x")
    c.put_object(Bucket=bucket, Key="n/x", Body=b"deleted, marker stays")
    c.delete_object(Bucket=bucket, Key="n/x")
    # The current version and the newest noncurrent one stay; older noncurrent ones go.
    eventually(lambda: [v for _, v, _, _ in versions(c, bucket, "k")] == [ids[3], ids[2]],
               "noncurrent versions of k beyond the newest one expire")
    # m/x: its version expires, then the marker left alone goes. n/x: no rule there.
    eventually(lambda: versions(c, bucket, "m/") == [], "m/x's lone delete marker is removed")
    assert [m for _, _, m, _ in versions(c, bucket, "n/")] == [False, True]
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == bodies[3]
    # The two removed versions' chunks go once GC's grace has passed: disk use falls by half.
    eventually(lambda: shard_bytes(lc) - before <= written // 2 + MiB // 2,
               "the removed versions' chunks are collected")


def test_incomplete_uploads_are_aborted(lc):
    c = s3_client(lc)
    rules = [{"ID": "abort", "Status": "Enabled", "Filter": {"Prefix": "up/"},
              "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]
    bucket = bucket_with(c, "lc-uploads", rules)
    doomed = c.create_multipart_upload(Bucket=bucket, Key="up/a")["UploadId"]
    c.upload_part(Bucket=bucket, Key="up/a", UploadId=doomed, PartNumber=1, Body=b"part")
    kept = c.create_multipart_upload(Bucket=bucket, Key="other/b")["UploadId"]

    def open_uploads():
        return {u["UploadId"] for u in c.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}

    eventually(lambda: open_uploads() == {kept}, "up/a's upload is aborted")
    assert error_of(lambda: c.list_parts(Bucket=bucket, Key="up/a", UploadId=doomed)) == (404, "NoSuchUpload")


def test_locked_versions_are_never_removed(lc):
    c = s3_client(lc)
    bucket = lock_bucket(c, "lc-lock")
    c.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "all", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
    retained = c.put_object(Bucket=bucket, Key="retained", Body=b"compliance", ObjectLockMode="COMPLIANCE",
                            ObjectLockRetainUntilDate=later(1))["VersionId"]
    held = c.put_object(Bucket=bucket, Key="held", Body=b"legal hold", ObjectLockLegalHoldStatus="ON")["VersionId"]
    free = c.put_object(Bucket=bucket, Key="free", Body=b"no lock")["VersionId"]
    before = scrape(lc).counter("tessera_lifecycle_locked_skipped_total")
    # Expiry hides every current version under a delete marker (allowed under a lock)...
    eventually(lambda: not any(exists(c, bucket, k) for k in ("retained", "held", "free")),
               "current versions get delete markers")
    # ... then removes the noncurrent version without a lock, and keeps the locked ones.
    eventually(lambda: free not in [v for _, v, _, _ in versions(c, bucket, "free")], "the unlocked version goes")
    eventually(lambda: scrape(lc).counter("tessera_lifecycle_locked_skipped_total") >= before + 2,
               "refused removals are counted")
    for key, version, body in (("retained", retained, b"compliance"), ("held", held, b"legal hold")):
        assert c.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read() == body
    rc, report = admin_check(lc)
    assert rc == 0, report
    assert c.get_object(Bucket=bucket, Key="retained", VersionId=retained)["Body"].read() == b"compliance"


def test_actions_are_counted(lc):
    """Runs after the tests above (file order) on the same server: each kind of action happened."""
    m = scrape(lc)
    assert m.counter("tessera_lifecycle_passes_total") >= 1
    assert m.counter("tessera_lifecycle_versions_scanned_total") >= 10
    for name in ("expired_objects", "noncurrent_removed", "delete_markers_removed", "uploads_aborted"):
        assert m.counter(f"tessera_lifecycle_{name}_total") >= 1, name
