"""Bucket configuration, with AWS S3 as the reference: tagging, ownership controls (ACLs
disabled by BucketOwnerEnforced), logging (empty; enabling refused with AWS's error), the
public access block and CORS (configuration, browser preflight, headers on actual and
presigned responses), each checked for what it stores and what it enforces.
"""

from __future__ import annotations

import json

import pytest
import requests
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from test_conformance_fixes import client_error, status_of


@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server)


# ============================== bucket tagging, ownership, logging ===
def test_bucket_tagging(c, new_bucket_name):
    name = new_bucket_name("btags")
    c.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        c.get_bucket_tagging(Bucket=name)
    assert client_error(exc) == ("NoSuchTagSet", 404)
    tags = [{"Key": f"k{i}", "Value": f"v{i}"} for i in range(12)]  # more than an object may carry
    c.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
    got = c.get_bucket_tagging(Bucket=name)["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in got) == sorted((t["Key"], t["Value"]) for t in tags)
    with pytest.raises(ClientError) as exc:
        c.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]})
    assert client_error(exc) == ("InvalidTag", 400)
    with pytest.raises(ClientError) as exc:
        c.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]})
    assert client_error(exc) == ("InvalidTag", 400)
    # A refused put leaves the tags as they were.
    assert len(c.get_bucket_tagging(Bucket=name)["TagSet"]) == 12
    c.delete_bucket_tagging(Bucket=name)
    with pytest.raises(ClientError) as exc:
        c.get_bucket_tagging(Bucket=name)
    assert client_error(exc) == ("NoSuchTagSet", 404)


def test_ownership_controls_bucket_owner_enforced_disables_acls(c, new_bucket_name):
    name = new_bucket_name("owner")
    c.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        c.get_bucket_ownership_controls(Bucket=name)
    assert client_error(exc) == ("OwnershipControlsNotFoundError", 404)
    c.put_bucket_ownership_controls(
        Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    got = c.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
    assert got == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    # ACLs that grant access are refused; writes without one go on.
    for call in (
        lambda: c.put_object(Bucket=name, Key="k", Body=b"x", ACL="public-read"),
        lambda: c.put_bucket_acl(Bucket=name, ACL="public-read"),
        lambda: c.create_multipart_upload(Bucket=name, Key="m", ACL="public-read"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert client_error(exc) == ("AccessControlListNotSupported", 400)
    c.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        c.put_object_acl(Bucket=name, Key="k", ACL="public-read")
    assert client_error(exc) == ("AccessControlListNotSupported", 400)
    # ObjectWriter turns ACLs back on.
    c.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    c.put_object_acl(Bucket=name, Key="k", ACL="public-read")
    c.delete_bucket_ownership_controls(Bucket=name)
    with pytest.raises(ClientError) as exc:
        c.get_bucket_ownership_controls(Bucket=name)
    assert client_error(exc) == ("OwnershipControlsNotFoundError", 404)
    # ACLs cannot be disabled while the bucket's own ACL grants access.
    c.put_bucket_acl(Bucket=name, ACL="public-read")
    with pytest.raises(ClientError) as exc:
        c.put_bucket_ownership_controls(
            Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        )
    assert client_error(exc) == ("InvalidBucketAclWithObjectOwnership", 400)


def test_bucket_logging_is_empty_and_enabling_it_is_refused(c, new_bucket_name):
    name = new_bucket_name("logging")
    c.create_bucket(Bucket=name)
    got = c.get_bucket_logging(Bucket=name)
    assert "LoggingEnabled" not in got and status_of(got) == 200
    c.put_bucket_logging(Bucket=name, BucketLoggingStatus={})  # disabling: accepted
    with pytest.raises(ClientError) as exc:
        c.put_bucket_logging(
            Bucket=name,
            BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": name, "TargetPrefix": "logs/"}},
        )
    code, status = client_error(exc)
    assert (code, status) == ("InvalidTargetBucketForLogging", 400)
    with pytest.raises(ClientError) as exc:
        c.get_bucket_logging(Bucket=new_bucket_name("logging-missing"))
    assert client_error(exc) == ("NoSuchBucket", 404)


# ===================================================== public access block ===
def test_public_access_block(server, s3, c, new_bucket_name):
    anon = s3(server, signature_version=UNSIGNED)
    name = new_bucket_name("pab")
    c.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        c.get_public_access_block(Bucket=name)
    assert client_error(exc) == ("NoSuchPublicAccessBlockConfiguration", 404)
    c.put_object(Bucket=name, Key="open", Body=b"open", ACL="public-read")
    public_policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{name}/pol/*"}],
    })
    c.put_bucket_policy(Bucket=name, Policy=public_policy)
    c.put_object(Bucket=name, Key="pol/x", Body=b"by policy")
    assert anon.get_object(Bucket=name, Key="open")["Body"].read() == b"open"
    assert anon.get_object(Bucket=name, Key="pol/x")["Body"].read() == b"by policy"

    def block(**settings):
        full = {k: False for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}
        full.update(settings)
        c.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=full)
        assert c.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"] == full

    # IgnorePublicAcls: the public-read object is no longer readable anonymously.
    block(IgnorePublicAcls=True)
    with pytest.raises(ClientError) as exc:
        anon.get_object(Bucket=name, Key="open")
    assert client_error(exc)[1] == 403
    assert anon.get_object(Bucket=name, Key="pol/x")["Body"].read() == b"by policy"
    # BlockPublicAcls: setting a public ACL is refused; a private write goes on.
    block(BlockPublicAcls=True)
    for call in (
        lambda: c.put_object(Bucket=name, Key="more", Body=b"x", ACL="public-read"),
        lambda: c.put_object_acl(Bucket=name, Key="open", ACL="public-read"),
        lambda: c.put_bucket_acl(Bucket=name, ACL="public-read"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert client_error(exc) == ("AccessDenied", 403)
    c.put_object(Bucket=name, Key="more", Body=b"x")
    assert anon.get_object(Bucket=name, Key="open")["Body"].read() == b"open"  # not ignored now
    # RestrictPublicBuckets: the public policy grants anonymous callers nothing.
    block(RestrictPublicBuckets=True)
    with pytest.raises(ClientError) as exc:
        anon.get_object(Bucket=name, Key="pol/x")
    assert client_error(exc)[1] == 403
    assert c.get_object(Bucket=name, Key="pol/x")["Body"].read() == b"by policy"
    # BlockPublicPolicy: a public policy is refused.
    block(BlockPublicPolicy=True)
    with pytest.raises(ClientError) as exc:
        c.put_bucket_policy(Bucket=name, Policy=public_policy)
    assert client_error(exc) == ("AccessDenied", 403)
    c.delete_public_access_block(Bucket=name)
    with pytest.raises(ClientError) as exc:
        c.get_public_access_block(Bucket=name)
    assert client_error(exc) == ("NoSuchPublicAccessBlockConfiguration", 404)
    assert anon.get_object(Bucket=name, Key="pol/x")["Body"].read() == b"by policy"


# ================================================================== CORS ===
def test_cors_configuration_preflight_and_actual_responses(server, c, new_bucket_name):
    name = new_bucket_name("cors")
    c.create_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="page.txt", Body=b"hello")
    with pytest.raises(ClientError) as exc:
        c.get_bucket_cors(Bucket=name)
    assert client_error(exc) == ("NoSuchCORSConfiguration", 404)

    def preflight(origin, method, headers=None):
        h = {"Origin": origin, "Access-Control-Request-Method": method}
        if headers:
            h["Access-Control-Request-Headers"] = headers
        with requests.Session() as s:
            s.trust_env = False
            return s.options(f"{server.url}/{name}/page.txt", headers=h, timeout=30)

    # No configuration: every preflight is refused.
    r = preflight("https://app.example.com", "GET")
    assert r.status_code == 403 and b"AccessForbidden" in r.content, r.content

    rules = [
        {"AllowedOrigins": ["https://*.example.com"], "AllowedMethods": ["GET", "HEAD"],
         "ExposeHeaders": ["ETag", "x-amz-request-id"], "MaxAgeSeconds": 600},
        {"AllowedOrigins": ["*"], "AllowedMethods": ["PUT"], "AllowedHeaders": ["content-type", "x-amz-*"]},
    ]
    for bad, code in (
        ([{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}], "InvalidRequest"),
        ([{"AllowedOrigins": ["https://*.*.example.com"], "AllowedMethods": ["GET"]}], "InvalidRequest"),
    ):
        with pytest.raises(ClientError) as exc:
            c.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": bad})
        assert client_error(exc) == (code, 400), bad
    c.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
    got = c.get_bucket_cors(Bucket=name)["CORSRules"]
    assert [g["AllowedOrigins"] for g in got] == [["https://*.example.com"], ["*"]]
    assert got[0]["MaxAgeSeconds"] == 600 and got[1]["AllowedHeaders"] == ["content-type", "x-amz-*"]

    r = preflight("https://app.example.com", "GET")
    assert r.status_code == 200, r.content
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD"
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in r.headers.get("Vary", "")
    r = preflight("https://elsewhere.org", "PUT", "Content-Type, X-Amz-Date")
    assert r.status_code == 200, r.content
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Allow-Headers"] == "Content-Type, X-Amz-Date"
    for origin, method, headers in (
        ("https://elsewhere.org", "GET", None),  # GET only for example.com
        ("https://elsewhere.org", "PUT", "Authorization"),  # header not allowed
        ("https://app.example.com", "DELETE", None),
    ):
        r = preflight(origin, method, headers)
        assert r.status_code == 403, (origin, method, headers, r.status_code)
    with requests.Session() as s:
        s.trust_env = False
        r = s.options(f"{server.url}/{name}/page.txt", timeout=30)
    assert r.status_code == 400

    # Actual requests from an allowed origin get the headers, presigned ones included.
    url = c.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "page.txt"}, ExpiresIn=300)
    with requests.Session() as s:
        s.trust_env = False
        r = s.get(url, headers={"Origin": "https://app.example.com"}, timeout=30)
        assert r.status_code == 200 and r.content == b"hello"
        assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        assert r.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-request-id"
        r = s.get(url, headers={"Origin": "https://elsewhere.org"}, timeout=30)
        assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    c.delete_bucket_cors(Bucket=name)
    assert preflight("https://app.example.com", "GET").status_code == 403
