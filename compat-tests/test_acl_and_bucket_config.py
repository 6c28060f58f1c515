"""ACLs and bucket configuration sub-resources that clients (s3cmd info, SDK tooling) probe.

Tessera has a single owner: ACLs read back as the owner's FULL_CONTROL, a private ACL can be
set (a no-op), and anything granting others access is refused instead of being ignored.
Policy, CORS and lifecycle answer S3's "not configured" errors."""

import pytest
from botocore.exceptions import ClientError


def code(exc):
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def c(server, s3):
    return s3(server)


def test_acls_report_owner_full_control(c, bucket_name):
    c.create_bucket(Bucket=bucket_name)
    c.put_object(Bucket=bucket_name, Key="k", Body=b"x")
    for acl in (c.get_bucket_acl(Bucket=bucket_name), c.get_object_acl(Bucket=bucket_name, Key="k")):
        assert acl["Owner"]["ID"]
        assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
        assert acl["Grants"][0]["Grantee"]["Type"] == "CanonicalUser"


def test_private_acl_is_accepted_and_public_is_refused(c, bucket_name):
    c.create_bucket(Bucket=bucket_name)
    c.put_object(Bucket=bucket_name, Key="k", Body=b"x")
    c.put_bucket_acl(Bucket=bucket_name, ACL="private")
    c.put_object_acl(Bucket=bucket_name, Key="k", ACL="private")
    with pytest.raises(ClientError) as exc:
        c.put_object_acl(Bucket=bucket_name, Key="k", ACL="public-read")
    assert code(exc) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as exc:
        c.put_bucket_acl(Bucket=bucket_name, ACL="public-read-write")
    assert code(exc) == ("NotImplemented", 501)


def test_acl_of_missing_things(c, bucket_name):
    with pytest.raises(ClientError) as exc:
        c.get_bucket_acl(Bucket=bucket_name)
    assert code(exc) == ("NoSuchBucket", 404)
    c.create_bucket(Bucket=bucket_name)
    with pytest.raises(ClientError) as exc:
        c.get_object_acl(Bucket=bucket_name, Key="missing")
    assert code(exc) == ("NoSuchKey", 404)


def test_unconfigured_bucket_settings_answer_like_s3(c, bucket_name):
    c.create_bucket(Bucket=bucket_name)
    cases = [
        (lambda: c.get_bucket_policy(Bucket=bucket_name), "NoSuchBucketPolicy"),
        (lambda: c.get_bucket_cors(Bucket=bucket_name), "NoSuchCORSConfiguration"),
        (lambda: c.get_bucket_lifecycle_configuration(Bucket=bucket_name), "NoSuchLifecycleConfiguration"),
    ]
    for call, expected in cases:
        with pytest.raises(ClientError) as exc:
            call()
        assert code(exc) == (expected, 404)
    with pytest.raises(ClientError) as exc:
        c.get_bucket_policy(Bucket=bucket_name + "-missing")
    assert code(exc) == ("NoSuchBucket", 404)
