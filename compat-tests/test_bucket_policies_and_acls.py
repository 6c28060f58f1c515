"""Bucket policies and ACLs against the real binary, with users made by `tessera admin`:
anonymous and cross-user access before and after public policies, policy validation and
status, conditions, explicit denials over grants, canned and granted ACLs on buckets and
objects. (Split from test_users.py, whose helpers and fixtures it shares.)
"""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from test_users import (  # noqa: F401 (root, cleanup, bucket and other_bucket are fixtures)
    ALL_USERS,
    CANNED_ACLS,
    SEED,
    add_user,
    assert_denied,
    assert_no_policy,
    bucket,
    bucket_arn,
    bucket_names,
    cleanup,
    client_for,
    err,
    grants_of,
    http_status,
    is_public,
    keys_in,
    objects_arn,
    other_bucket,
    policy_doc,
    put_policy,
    root,
    stored_policy,
    user_arn,
)


# ==================================================== bucket policies ===
def test_anonymous_access_before_and_after_a_public_read_policy(server, s3, root, bucket, other_bucket):
    root.put_object(Bucket=bucket, Key="pub/a.txt", Body=b"public")
    root.put_object(Bucket=bucket, Key="priv/b.txt", Body=b"private")
    anon = client_for(s3, server, None)
    outsider = client_for(s3, server, add_user(server, "readonly", other_bucket))

    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="pub/a.txt"))
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket))
    assert_denied(lambda: outsider.get_object(Bucket=bucket, Key="pub/a.txt"))
    assert http_status(f"{server.url}/{bucket}/pub/a.txt") == 403
    for call in (root.get_bucket_policy, root.get_bucket_policy_status):
        with pytest.raises(ClientError) as exc:
            call(Bucket=bucket)
        assert err(exc) == ("NoSuchBucketPolicy", 404)

    doc = policy_doc(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": objects_arn(bucket, "pub/*")},
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:ListBucket"], "Resource": bucket_arn(bucket)},
    )
    root.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc))
    assert stored_policy(root, bucket) == doc
    assert is_public(root, bucket) is True

    assert anon.get_object(Bucket=bucket, Key="pub/a.txt")["Body"].read() == b"public"
    assert http_status(f"{server.url}/{bucket}/pub/a.txt") == 200
    assert keys_in(anon, bucket) == {"seed", "pub/a.txt", "priv/b.txt"}
    # "*" covers authenticated users too.
    assert outsider.get_object(Bucket=bucket, Key="pub/a.txt")["Body"].read() == b"public"
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="priv/b.txt"))
    assert_denied(lambda: anon.head_object(Bucket=bucket, Key="seed"))
    assert_denied(lambda: anon.put_object(Bucket=bucket, Key="pub/new", Body=b"x"))
    assert_denied(lambda: anon.delete_object(Bucket=bucket, Key="pub/a.txt"))
    assert_denied(lambda: anon.get_object(Bucket=other_bucket, Key="seed"))
    assert_denied(lambda: anon.list_buckets())
    assert keys_in(root, bucket) == {"seed", "pub/a.txt", "priv/b.txt"}

    assert root.delete_bucket_policy(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert root.delete_bucket_policy(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204  # idempotent
    assert_no_policy(root, bucket)
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="pub/a.txt"))
    assert http_status(f"{server.url}/{bucket}/pub/a.txt") == 403


def test_policy_status_is_not_public_for_named_users_or_ip_ranges(server, root, bucket):
    u = add_user(server, "readonly", bucket)
    put_policy(root, bucket, {"Effect": "Allow", "Principal": {"AWS": [user_arn(u.name)]},
                              "Action": "s3:GetObject", "Resource": objects_arn(bucket)})
    assert is_public(root, bucket) is False
    put_policy(root, bucket, {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                              "Resource": objects_arn(bucket),
                              "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    assert is_public(root, bucket) is False
    put_policy(root, bucket, {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
                              "Resource": objects_arn(bucket)})
    assert is_public(root, bucket) is True


def _malformed(bucket: str) -> list[tuple[str, str]]:
    def doc(**stmt):
        base = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": objects_arn(bucket)}
        base.update(stmt)
        return json.dumps(policy_doc(base))

    return [
        ("not json", "this is not json"),
        ("no statement", json.dumps({"Version": "2012-10-17"})),
        ("bad effect", doc(Effect="Maybe")),
        ("string principal", doc(Principal="someone")),
        ("unknown user", doc(Principal={"AWS": user_arn("nosuchuser" + uuid.uuid4().hex[:8])})),
        ("invalid action", doc(Action="s3:Foo")),
        ("other bucket", doc(Resource=objects_arn(bucket + "-other"))),
        ("unknown operator", doc(Condition={"NoSuchOperator": {"aws:SourceIp": "10.0.0.0/8"}})),
    ]


def test_malformed_policies_are_refused_and_change_nothing(server, root, bucket):
    for label, text in _malformed(bucket):
        with pytest.raises(ClientError) as exc:
            root.put_bucket_policy(Bucket=bucket, Policy=text)
        assert err(exc) == ("MalformedPolicy", 400), label
        assert_no_policy(root, bucket)

    valid = policy_doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                        "Resource": objects_arn(bucket, "pub/*")})
    root.put_bucket_policy(Bucket=bucket, Policy=json.dumps(valid))
    for label, text in _malformed(bucket):
        with pytest.raises(ClientError) as exc:
            root.put_bucket_policy(Bucket=bucket, Policy=text)
        assert err(exc) == ("MalformedPolicy", 400), label
        assert stored_policy(root, bucket) == valid, label


def test_policy_on_missing_bucket(server, root, bucket_name):
    with pytest.raises(ClientError) as exc:
        put_policy(root, bucket_name, {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                       "Resource": objects_arn(bucket_name)})
    assert err(exc) == ("NoSuchBucket", 404)


def test_explicit_deny_in_bucket_policy_beats_the_users_allow(server, s3, root, bucket):
    u = add_user(server, "readwrite", bucket)
    c = client_for(s3, server, u)
    put_policy(root, bucket, {"Effect": "Deny", "Principal": {"AWS": user_arn(u.name)},
                              "Action": "s3:DeleteObject", "Resource": objects_arn(bucket)})
    assert_denied(lambda: c.delete_object(Bucket=bucket, Key="seed"))
    c.put_object(Bucket=bucket, Key="still-can-write", Body=b"w")
    assert keys_in(root, bucket) == {"seed", "still-can-write"}
    root.delete_object(Bucket=bucket, Key="seed")  # root is not bound by bucket policies
    assert keys_in(root, bucket) == {"still-can-write"}


def test_bucket_policy_grants_a_user_more_than_its_own_policy(server, s3, root, bucket, other_bucket):
    u = add_user(server, "readonly", other_bucket)  # nothing on `bucket` by itself
    c = client_for(s3, server, u)
    assert_denied(lambda: c.put_object(Bucket=bucket, Key="uploads/x", Body=b"x"))
    assert bucket not in bucket_names(c)
    put_policy(root, bucket, {"Effect": "Allow", "Principal": {"AWS": [user_arn(u.name)]},
                              "Action": "s3:PutObject", "Resource": objects_arn(bucket, "uploads/*")})
    c.put_object(Bucket=bucket, Key="uploads/x", Body=b"x")
    assert_denied(lambda: c.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"x"))
    assert_denied(lambda: c.get_object(Bucket=bucket, Key="uploads/x"))
    assert bucket_names(c) == {bucket, other_bucket}
    # Another user gains nothing from it.
    other = client_for(s3, server, add_user(server, "readonly", other_bucket))
    assert_denied(lambda: other.put_object(Bucket=bucket, Key="uploads/y", Body=b"y"))
    assert bucket_names(other) == {other_bucket}
    assert keys_in(root, bucket) == {"seed", "uploads/x"}


def test_not_action_and_not_resource(server, s3, root, bucket, other_bucket):
    carol = add_user(server, "readonly", other_bucket)
    c = client_for(s3, server, carol)
    put_policy(root, bucket, {"Effect": "Allow", "Principal": {"AWS": user_arn(carol.name)},
                              "NotAction": ["s3:DeleteObject", "s3:DeleteBucket", "s3:PutBucketPolicy",
                                            "s3:DeleteBucketPolicy"],
                              "Resource": [bucket_arn(bucket), objects_arn(bucket)]})
    c.put_object(Bucket=bucket, Key="public/p", Body=b"p")
    c.put_object(Bucket=bucket, Key="private/q", Body=b"q")
    assert keys_in(c, bucket) == {"seed", "public/p", "private/q"}
    assert_denied(lambda: c.delete_object(Bucket=bucket, Key="seed"))
    assert_denied(lambda: c.delete_bucket_policy(Bucket=bucket))
    assert stored_policy(root, bucket)["Statement"][0]["Principal"] == {"AWS": user_arn(carol.name)}

    dave = add_user(server, "readwrite", bucket)
    d = client_for(s3, server, dave)
    put_policy(root, bucket, {"Effect": "Deny", "Principal": {"AWS": user_arn(dave.name)},
                              "Action": "s3:GetObject", "NotResource": objects_arn(bucket, "public/*")})
    assert d.get_object(Bucket=bucket, Key="public/p")["Body"].read() == b"p"
    assert_denied(lambda: d.get_object(Bucket=bucket, Key="private/q"))
    d.put_object(Bucket=bucket, Key="private/r", Body=b"r")  # only GetObject is denied
    assert keys_in(root, bucket) == {"seed", "public/p", "private/q", "private/r"}


def test_source_ip_conditions(server, s3, root, bucket):
    anon = client_for(s3, server, None)
    stmt = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": objects_arn(bucket)}
    put_policy(root, bucket, {**stmt, "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.1"]}}})
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="seed"))
    put_policy(root, bucket, {**stmt, "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}})
    assert anon.get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED

    u = add_user(server, "readwrite", bucket)
    c = client_for(s3, server, u)
    deny_all = {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [bucket_arn(bucket), objects_arn(bucket)]}
    put_policy(root, bucket, {**deny_all, "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}})
    assert c.get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED  # we are 127.0.0.1
    c.put_object(Bucket=bucket, Key="from-localhost", Body=b"l")
    put_policy(root, bucket, {**deny_all, "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    assert_denied(lambda: c.get_object(Bucket=bucket, Key="seed"))
    assert_denied(lambda: c.put_object(Bucket=bucket, Key="denied", Body=b"x"))
    assert root.get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED
    assert keys_in(root, bucket) == {"seed", "from-localhost"}


def test_secure_transport_is_always_false_over_plain_http(server, s3, root, bucket):
    u = add_user(server, "readwrite", bucket)
    c = client_for(s3, server, u)
    anon = client_for(s3, server, None)
    deny_all = {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [bucket_arn(bucket), objects_arn(bucket)]}
    put_policy(root, bucket, {**deny_all, "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    assert_denied(lambda: c.list_objects_v2(Bucket=bucket))
    assert_denied(lambda: c.put_object(Bucket=bucket, Key="x", Body=b"x"))
    assert keys_in(root, bucket) == {"seed"}
    root.delete_bucket_policy(Bucket=bucket)  # root still can

    put_policy(root, bucket, {**deny_all, "Condition": {"Bool": {"aws:SecureTransport": "true"}}})
    c.put_object(Bucket=bucket, Key="x", Body=b"x")

    get = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": objects_arn(bucket)}
    put_policy(root, bucket, {**get, "Condition": {"Bool": {"aws:SecureTransport": "true"}}})
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="seed"))
    put_policy(root, bucket, {**get, "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    assert anon.get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED


def test_prefix_conditions_on_listing(server, s3, root, bucket):
    root.put_object(Bucket=bucket, Key="pub/a", Body=b"a")
    root.put_object(Bucket=bucket, Key="priv/b", Body=b"b")
    anon = client_for(s3, server, None)
    put_policy(root, bucket, {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
                              "Resource": bucket_arn(bucket), "Condition": {"StringLike": {"s3:prefix": "pub/*"}}})
    assert keys_in(anon, bucket, Prefix="pub/") == {"pub/a"}
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket, Prefix="priv/"))
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket))
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="pub/a"))  # listing only

    put_policy(root, bucket,
               {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": bucket_arn(bucket)},
               {"Effect": "Deny", "Principal": "*", "Action": "s3:ListBucket", "Resource": bucket_arn(bucket),
                "Condition": {"StringNotEquals": {"s3:prefix": ["pub/", "pub/a"]}}})
    assert keys_in(anon, bucket, Prefix="pub/") == {"pub/a"}
    assert keys_in(anon, bucket, Prefix="pub/a") == {"pub/a"}
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket, Prefix="priv/"))
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket))


# ================================================================= ACLs ===
def test_public_read_object_acl_allows_anonymous_reads_of_that_object(server, s3, root, bucket):
    anon = client_for(s3, server, None)
    root.put_object(Bucket=bucket, Key="open", Body=b"open", ACL="public-read")
    root.put_object(Bucket=bucket, Key="closed", Body=b"closed")
    assert anon.get_object(Bucket=bucket, Key="open")["Body"].read() == b"open"
    assert anon.head_object(Bucket=bucket, Key="open")["ContentLength"] == 4
    assert http_status(f"{server.url}/{bucket}/open") == 200
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="closed"))
    assert_denied(lambda: anon.head_object(Bucket=bucket, Key="closed"))
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket))
    assert_denied(lambda: anon.put_object(Bucket=bucket, Key="open", Body=b"overwritten"))
    assert_denied(lambda: anon.delete_object(Bucket=bucket, Key="open"))

    acl = root.get_object_acl(Bucket=bucket, Key="open")
    assert acl["Owner"]["ID"] == "tessera"
    assert grants_of(acl) == {("CanonicalUser", "tessera", "FULL_CONTROL"), ("Group", ALL_USERS, "READ")}

    root.put_object_acl(Bucket=bucket, Key="open", ACL="private")
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="open"))
    assert grants_of(root.get_object_acl(Bucket=bucket, Key="open")) == {("CanonicalUser", "tessera", "FULL_CONTROL")}
    root.put_object_acl(Bucket=bucket, Key="closed", ACL="public-read")
    assert anon.get_object(Bucket=bucket, Key="closed")["Body"].read() == b"closed"
    assert root.get_object(Bucket=bucket, Key="open")["Body"].read() == b"open"
    assert keys_in(root, bucket) == {"seed", "open", "closed"}


@pytest.mark.parametrize("canned", ["public-read", "public-read-write"])
def test_public_bucket_acl_allows_anonymous_listing_only(server, s3, root, bucket, canned):
    anon = client_for(s3, server, None)
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket))
    root.put_bucket_acl(Bucket=bucket, ACL=canned)
    acl = root.get_bucket_acl(Bucket=bucket)
    assert grants_of(acl) == {("CanonicalUser", "tessera", "FULL_CONTROL"), ("Group", ALL_USERS, "READ")}

    assert keys_in(anon, bucket) == {"seed"}
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="seed"))
    # public-read-write gives anonymous READ only: no anonymous writes.
    assert_denied(lambda: anon.put_object(Bucket=bucket, Key="anon", Body=b"x"))
    assert_denied(lambda: anon.delete_object(Bucket=bucket, Key="seed"))
    assert keys_in(root, bucket) == {"seed"}

    root.put_bucket_acl(Bucket=bucket, ACL="private")
    assert grants_of(root.get_bucket_acl(Bucket=bucket)) == {("CanonicalUser", "tessera", "FULL_CONTROL")}
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket))


def test_canned_acls_are_accepted_everywhere(server, s3, root, new_bucket_name, cleanup):
    for acl in CANNED_ACLS:
        name = new_bucket_name(f"acl-{acl}")
        cleanup.append(name)
        root.create_bucket(Bucket=name, ACL=acl)
        root.put_bucket_acl(Bucket=name, ACL=acl)
    name = new_bucket_name("acl")
    cleanup.append(name)
    root.create_bucket(Bucket=name, ACL="private")
    for acl in CANNED_ACLS:
        root.put_object(Bucket=name, Key=f"k-{acl}", Body=b"x", ACL=acl)
        root.put_object_acl(Bucket=name, Key=f"k-{acl}", ACL=acl)
        root.copy_object(Bucket=name, Key=f"c-{acl}", CopySource={"Bucket": name, "Key": "k-private"}, ACL=acl)
        up = root.create_multipart_upload(Bucket=name, Key=f"m-{acl}", ACL=acl)["UploadId"]
        root.abort_multipart_upload(Bucket=name, Key=f"m-{acl}", UploadId=up)
    anon = client_for(s3, server, None)
    assert anon.get_object(Bucket=name, Key="c-public-read")["Body"].read() == b"x"
    assert anon.get_object(Bucket=name, Key="k-public-read")["Body"].read() == b"x"
    assert_denied(lambda: anon.get_object(Bucket=name, Key="c-private"))
    assert_denied(lambda: anon.get_object(Bucket=name, Key="k-authenticated-read"))

    # An ACL given at CreateMultipartUpload applies to the completed object.
    up = root.create_multipart_upload(Bucket=name, Key="mpu-public", ACL="public-read")["UploadId"]
    etag = root.upload_part(Bucket=name, Key="mpu-public", UploadId=up, PartNumber=1, Body=b"mp")["ETag"]
    root.complete_multipart_upload(Bucket=name, Key="mpu-public", UploadId=up,
                                   MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert anon.get_object(Bucket=name, Key="mpu-public")["Body"].read() == b"mp"
