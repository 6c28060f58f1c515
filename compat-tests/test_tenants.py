"""Tenants: users with the built-in `owner` policy are accounts of their own. Each creates
buckets, does anything to the buckets it owns, sees only those in ListBuckets, and reaches
another tenant's buckets only once that tenant's bucket policy grants it something. A name
taken by another tenant is 409 BucketAlreadyExists.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from test_users import (  # noqa: F401  (cleanup and root are fixtures)
    add_user,
    assert_denied,
    bucket_arn,
    bucket_names,
    cleanup,
    client_for,
    err,
    objects_arn,
    policy_doc,
    root,
    user_arn,
)


def test_two_tenants_share_one_deployment_without_seeing_each_other(server, s3, root, new_bucket_name, cleanup):
    alice, bob = add_user(server, "owner"), add_user(server, "owner")
    a, b = client_for(s3, server, alice), client_for(s3, server, bob)
    a_bucket, b_bucket = new_bucket_name("tenant-a"), new_bucket_name("tenant-b")
    cleanup.extend([a_bucket, b_bucket])
    a.create_bucket(Bucket=a_bucket)
    b.create_bucket(Bucket=b_bucket)
    # Everything on its own bucket: objects, listing, versioning, its policy.
    a.put_object(Bucket=a_bucket, Key="k", Body=b"alice's")
    assert a.get_object(Bucket=a_bucket, Key="k")["Body"].read() == b"alice's"
    a.put_bucket_versioning(Bucket=a_bucket, VersioningConfiguration={"Status": "Enabled"})
    b.put_object(Bucket=b_bucket, Key="k", Body=b"bob's")
    # ListBuckets: its own only (root sees both).
    assert a_bucket in bucket_names(a) and b_bucket not in bucket_names(a)
    assert b_bucket in bucket_names(b) and a_bucket not in bucket_names(b)
    assert {a_bucket, b_bucket} <= bucket_names(root)
    # Nothing on the other's bucket.
    assert_denied(lambda: a.list_objects_v2(Bucket=b_bucket))
    assert_denied(lambda: a.get_object(Bucket=b_bucket, Key="k"))
    assert_denied(lambda: a.put_object(Bucket=b_bucket, Key="x", Body=b"x"))
    assert_denied(lambda: a.delete_object(Bucket=b_bucket, Key="k"))
    assert_denied(lambda: a.put_bucket_policy(Bucket=b_bucket, Policy=json.dumps(policy_doc(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": objects_arn(b_bucket)}))))
    assert_denied(lambda: a.delete_bucket(Bucket=b_bucket))
    # A taken name: BucketAlreadyExists for the other tenant, AlreadyOwnedByYou for the owner.
    with pytest.raises(ClientError) as exc:
        b.create_bucket(Bucket=a_bucket)
    assert err(exc) == ("BucketAlreadyExists", 409)
    with pytest.raises(ClientError) as exc:
        a.create_bucket(Bucket=a_bucket)
    assert err(exc) == ("BucketAlreadyOwnedByYou", 409)

    # Bob grants Alice reading through his bucket policy: she lists and reads, still cannot write.
    b.put_bucket_policy(Bucket=b_bucket, Policy=json.dumps(policy_doc(
        {"Effect": "Allow", "Principal": {"AWS": [user_arn(alice.name)]},
         "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [bucket_arn(b_bucket), objects_arn(b_bucket)]},
    )))
    assert a.get_object(Bucket=b_bucket, Key="k")["Body"].read() == b"bob's"
    assert [o["Key"] for o in a.list_objects_v2(Bucket=b_bucket)["Contents"]] == ["k"]
    assert b_bucket in bucket_names(a)
    assert_denied(lambda: a.put_object(Bucket=b_bucket, Key="x", Body=b"x"))
    # An explicit deny in the owner's own bucket policy holds against the owner's user too.
    a.put_bucket_policy(Bucket=a_bucket, Policy=json.dumps(policy_doc(
        {"Effect": "Deny", "Principal": {"AWS": [user_arn(alice.name)]}, "Action": "s3:DeleteObject",
         "Resource": objects_arn(a_bucket)},
    )))
    assert_denied(lambda: a.delete_object(Bucket=a_bucket, Key="k"))


def test_the_owner_policy_takes_no_bucket_scope(server):
    from test_users import admin

    proc = admin(server, "user", "add", "scoped-owner", "--policy", "owner", "--bucket", "b", check=False)
    assert proc.returncode != 0 and "takes no --bucket" in proc.stderr + proc.stdout


def test_grants_to_an_email_address_are_unresolvable(server, root, new_bucket_name, cleanup):
    name = new_bucket_name("email-grant")
    cleanup.append(name)
    root.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        root.put_object(Bucket=name, Key="k", Body=b"x", GrantRead='emailAddress="nobody@example.com"')
    assert err(exc) == ("UnresolvableGrantByEmailAddress", 400)
    owner = root.get_bucket_acl(Bucket=name)["Owner"]
    with pytest.raises(ClientError) as exc:
        root.put_bucket_acl(Bucket=name, AccessControlPolicy={
            "Owner": owner,
            "Grants": [{"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "nobody@example.com"},
                        "Permission": "READ"}],
        })
    assert err(exc) == ("UnresolvableGrantByEmailAddress", 400)
    # Nothing was stored.
    with pytest.raises(ClientError):
        root.head_object(Bucket=name, Key="k")


def test_acl_grants_to_a_user_by_canonical_id(server, s3, new_bucket_name, cleanup):
    alice, bob = add_user(server, "owner"), add_user(server, "owner")
    a, b = client_for(s3, server, alice), client_for(s3, server, bob)
    name = new_bucket_name("granted")
    cleanup.append(name)
    b.create_bucket(Bucket=name)
    b.put_object(Bucket=name, Key="doc", Body=b"bob's doc")
    b.put_object(Bucket=name, Key="other", Body=b"not shared")
    alice_id = a.list_buckets()["Owner"]["ID"]
    bob_owner = b.get_bucket_acl(Bucket=name)["Owner"]
    assert_denied(lambda: a.get_object(Bucket=name, Key="doc"))

    # READ on one object, by header: that object only.
    b.put_object_acl(Bucket=name, Key="doc", GrantRead=f'id="{alice_id}"')
    assert a.get_object(Bucket=name, Key="doc")["Body"].read() == b"bob's doc"
    assert_denied(lambda: a.get_object(Bucket=name, Key="other"))
    assert_denied(lambda: a.list_objects_v2(Bucket=name))
    acl = b.get_object_acl(Bucket=name, Key="doc")
    assert {(g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]} == {
        (bob_owner["ID"], "FULL_CONTROL"), (alice_id, "READ"),
    }
    assert any(g["Grantee"].get("DisplayName") == alice.name for g in acl["Grants"])

    # READ and WRITE on the bucket, by ACL document: listing and uploads, not reading others.
    b.put_bucket_acl(Bucket=name, AccessControlPolicy={
        "Owner": bob_owner,
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": bob_owner["ID"]}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "CanonicalUser", "ID": alice_id}, "Permission": "READ"},
            {"Grantee": {"Type": "CanonicalUser", "ID": alice_id}, "Permission": "WRITE"},
        ],
    })
    assert sorted(o["Key"] for o in a.list_objects_v2(Bucket=name)["Contents"]) == ["doc", "other"]
    a.put_object(Bucket=name, Key="from-alice", Body=b"hi")
    assert_denied(lambda: a.get_object(Bucket=name, Key="other"))
    assert_denied(lambda: a.put_bucket_acl(Bucket=name, ACL="private"))  # no WRITE_ACP
    assert_denied(lambda: a.delete_bucket(Bucket=name))

    # Taking the grants away takes the access away.
    b.put_bucket_acl(Bucket=name, ACL="private")
    b.put_object_acl(Bucket=name, Key="doc", ACL="private")
    assert_denied(lambda: a.list_objects_v2(Bucket=name))
    assert_denied(lambda: a.get_object(Bucket=name, Key="doc"))
    assert_denied(lambda: a.put_object(Bucket=name, Key="again", Body=b"x"))
