"""ACLs and bucket configuration sub-resources that clients (s3cmd info, SDK tooling) probe.

ACLs read back as the owner's FULL_CONTROL, plus AllUsers READ for the public canned ACLs.
Every canned ACL can be set; grants to a canonical id that names no user are refused with
InvalidArgument, group grants other than READ with NotImplemented, instead of being ignored
(grants to users are tested in test_tenants.py). Bucket
policies are stored and read back (their effect is tested in test_users.py); CORS (set and
enforced in test_conformance_fixes.py) and lifecycle answer S3's "not configured" errors on a
bucket without them."""

import json

import pytest
from botocore.exceptions import ClientError


def code(exc):
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def grants(acl):
    return sorted((g["Grantee"]["Type"], g["Grantee"].get("ID") or g["Grantee"].get("URI"), g["Permission"])
                  for g in acl["Grants"])


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


def test_canned_acls_and_grants_to_unknown_ids(c, bucket_name):
    c.create_bucket(Bucket=bucket_name)
    c.put_object(Bucket=bucket_name, Key="k", Body=b"x")
    owner = c.get_bucket_acl(Bucket=bucket_name)["Owner"]["ID"]
    private = [("CanonicalUser", owner, "FULL_CONTROL")]
    public = sorted(private + [("Group", ALL_USERS, "READ")])

    c.put_bucket_acl(Bucket=bucket_name, ACL="private")
    c.put_object_acl(Bucket=bucket_name, Key="k", ACL="private")
    assert grants(c.get_object_acl(Bucket=bucket_name, Key="k")) == private
    c.put_object_acl(Bucket=bucket_name, Key="k", ACL="public-read")
    assert grants(c.get_object_acl(Bucket=bucket_name, Key="k")) == public
    c.put_bucket_acl(Bucket=bucket_name, ACL="public-read-write")  # anonymous READ only
    assert grants(c.get_bucket_acl(Bucket=bucket_name)) == public
    c.put_bucket_acl(Bucket=bucket_name, ACL="private")
    assert grants(c.get_bucket_acl(Bucket=bucket_name)) == private

    other = "0" * 64
    acp = {
        "Owner": {"ID": owner},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": owner}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "CanonicalUser", "ID": other}, "Permission": "READ"},
        ],
    }
    # A canonical id that names no user: 400 InvalidArgument, as on S3.
    refused = [
        lambda: c.put_bucket_acl(Bucket=bucket_name, GrantFullControl=f'id="{other}"'),
        lambda: c.put_object_acl(Bucket=bucket_name, Key="k", AccessControlPolicy=acp),
        lambda: c.put_bucket_acl(Bucket=bucket_name, AccessControlPolicy=acp),
    ]
    for call in refused:
        with pytest.raises(ClientError) as exc:
            call()
        assert code(exc) == ("InvalidArgument", 400)
    # Group grants other than READ (anonymous writes) are not supported.
    with pytest.raises(ClientError) as exc:
        c.put_bucket_acl(Bucket=bucket_name, GrantWrite=f'uri="{ALL_USERS}"')
    assert code(exc) == ("NotImplemented", 501)
    # Nothing changed.
    assert grants(c.get_object_acl(Bucket=bucket_name, Key="k")) == public
    assert grants(c.get_bucket_acl(Bucket=bucket_name)) == private
    # A READ grant header to AllUsers is the public-read canned ACL.
    c.put_object_acl(Bucket=bucket_name, Key="k", ACL="private")
    c.put_object_acl(Bucket=bucket_name, Key="k", GrantRead=f'uri="{ALL_USERS}"')
    assert grants(c.get_object_acl(Bucket=bucket_name, Key="k")) == public


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
        (lambda: c.get_bucket_policy_status(Bucket=bucket_name), "NoSuchBucketPolicy"),
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


def test_bucket_policy_round_trip(c, bucket_name):
    c.create_bucket(Bucket=bucket_name)
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket_name}/public/*",
            }
        ],
    }
    c.put_bucket_policy(Bucket=bucket_name, Policy=json.dumps(doc))
    assert json.loads(c.get_bucket_policy(Bucket=bucket_name)["Policy"]) == doc
    assert c.get_bucket_policy_status(Bucket=bucket_name)["PolicyStatus"]["IsPublic"] is True
    assert c.delete_bucket_policy(Bucket=bucket_name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        c.get_bucket_policy(Bucket=bucket_name)
    assert code(exc) == ("NoSuchBucketPolicy", 404)
    # Deleting a policy that is not there is not an error (as on S3).
    assert c.delete_bucket_policy(Bucket=bucket_name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        c.put_bucket_policy(Bucket=bucket_name, Policy="not a policy")
    assert code(exc) == ("MalformedPolicy", 400)
