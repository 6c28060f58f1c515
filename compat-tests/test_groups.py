"""Named identity policies and groups: `tessera admin policy add NAME FILE.json|list|remove`,
`group add|remove|list|add-user|remove-user|attach-policy|detach-policy`, and
`user attach-policy|detach-policy`.

Semantics:

* A policy is an AWS IAM identity policy (no Principal; resources `*` or S3 ARNs, any bucket),
  validated like bucket policies; a bad one is 400 MalformedPolicyDocument and nothing changes.
  Built-in names (readwrite, readonly, writeonly, owner) cannot be taken.
* A user's identity policy is the union of its built-in policy, the named policies attached to
  it, and those of its groups: an explicit Deny anywhere wins, else any Allow allows.
* Changes apply from the next request. Removing a policy attached anywhere is refused
  (409 DeleteConflict). Group members are kept by user id: a user removed and re-created under
  the same name is not a member.
"""

from __future__ import annotations

import json

import pytest

from test_users import (  # noqa: F401 (fixtures)
    SEED,
    add_user,
    admin,
    assert_denied,
    bucket,
    bucket_arn,
    cleanup,
    client_for,
    keys_in,
    objects_arn,
    root,
)


def policy_file(tmp_path, name: str, *statements: dict):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))
    return path


def admin_json(server, *args):
    return json.loads(admin(server, "--json", *args).stdout)


def test_group_policy_gives_access_and_removal_takes_it_away(server, s3, root, bucket, tmp_path):
    reader = policy_file(tmp_path, "reader", {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                                               "Resource": [bucket_arn(bucket), objects_arn(bucket)]})
    pname = f"read-{bucket}"
    gname = f"team-{bucket}"
    admin(server, "policy", "add", pname, str(reader))
    admin(server, "group", "add", gname)
    admin(server, "group", "attach-policy", gname, pname)
    # writeonly alone cannot read.
    u = add_user(server, "writeonly", bucket)
    c = client_for(s3, server, u)
    assert_denied(lambda: c.get_object(Bucket=bucket, Key="seed"))
    admin(server, "group", "add-user", gname, u.name)
    assert c.get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED
    assert keys_in(c, bucket) == {"seed"}
    c.put_object(Bucket=bucket, Key="w", Body=b"w")  # the built-in policy still counts
    groups = admin_json(server, "group", "list")["groups"]
    assert {"name": gname, "members": [u.name], "policies": [pname]} in groups
    users = {x["name"]: x for x in admin_json(server, "user", "list")["users"]}
    assert users[u.name]["groups"] == [gname]
    # Out of the group: the access is gone at once.
    admin(server, "group", "remove-user", gname, u.name)
    assert_denied(lambda: c.get_object(Bucket=bucket, Key="seed"))
    # Back in, then the group's policy detached, then the group removed.
    admin(server, "group", "add-user", gname, u.name)
    assert c.get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED
    admin(server, "group", "detach-policy", gname, pname)
    assert_denied(lambda: c.get_object(Bucket=bucket, Key="seed"))
    admin(server, "group", "attach-policy", gname, pname)
    admin(server, "group", "remove", gname)
    assert_denied(lambda: c.get_object(Bucket=bucket, Key="seed"))
    admin(server, "policy", "remove", pname)


def test_named_policy_on_a_user_and_explicit_deny_wins(server, s3, root, bucket, tmp_path):
    no_delete = policy_file(tmp_path, "nodelete", {"Effect": "Deny", "Action": "s3:DeleteObject",
                                                    "Resource": objects_arn(bucket)})
    pname = f"nodelete-{bucket}"
    admin(server, "policy", "add", pname, str(no_delete))
    u = add_user(server, "readwrite", bucket)
    c = client_for(s3, server, u)
    c.put_object(Bucket=bucket, Key="a", Body=b"a")
    admin(server, "user", "attach-policy", u.name, pname)
    assert_denied(lambda: c.delete_object(Bucket=bucket, Key="a"))
    c.put_object(Bucket=bucket, Key="b", Body=b"b")  # everything else still allowed
    policies = {p["name"]: p for p in admin_json(server, "policy", "list")["policies"]}
    assert policies[pname]["users"] == [u.name]
    assert policies[pname]["document"]["Statement"][0]["Effect"] == "Deny"
    # Attached: removing the policy is refused, and nothing changes.
    out = admin(server, "policy", "remove", pname, check=False)
    assert out.returncode != 0 and "DeleteConflict" in out.stderr, out.stderr
    assert_denied(lambda: c.delete_object(Bucket=bucket, Key="a"))
    admin(server, "user", "detach-policy", u.name, pname)
    c.delete_object(Bucket=bucket, Key="a")
    admin(server, "policy", "remove", pname)
    assert pname not in {p["name"] for p in admin_json(server, "policy", "list")["policies"]}


def test_bad_policies_and_names_are_refused(server, tmp_path):
    cases = {
        "principal": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
        "action": {"Effect": "Allow", "Action": "s3:Frobnicate", "Resource": "*"},
        "resource": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:sqs:::q"},
        "effect": {"Effect": "Perhaps", "Action": "s3:GetObject", "Resource": "*"},
    }
    for label, stmt in cases.items():
        out = admin(server, "policy", "add", f"bad-{label}", str(policy_file(tmp_path, label, stmt)), check=False)
        assert out.returncode != 0 and "MalformedPolicyDocument" in out.stderr, (label, out.stderr)
    names = {p["name"] for p in admin_json(server, "policy", "list")["policies"]}
    assert not any(n.startswith("bad-") for n in names)
    ok = policy_file(tmp_path, "ok", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    out = admin(server, "policy", "add", "readonly", str(ok), check=False)
    assert out.returncode != 0 and "built-in" in out.stderr
    for args, code in [
        (["group", "add-user", "no-such-group", "nobody"], "NoSuch"),
        (["group", "attach-policy", "no-such-group", "x"], "NoSuch"),
        (["user", "attach-policy", "no-such-user-x", "no-such-policy"], "NoSuchEntity"),
        (["policy", "remove", "no-such-policy"], "NoSuchEntity"),
    ]:
        out = admin(server, *args, check=False)
        assert out.returncode != 0 and code in out.stderr, (args, out.stderr)


def test_a_recreated_user_is_not_a_member(server, s3, root, bucket, tmp_path):
    reader = policy_file(tmp_path, "r2", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": objects_arn(bucket)})
    pname, gname = f"r2-{bucket}", f"g2-{bucket}"
    admin(server, "policy", "add", pname, str(reader))
    admin(server, "group", "add", gname)
    admin(server, "group", "attach-policy", gname, pname)
    first = add_user(server, "writeonly", bucket)
    admin(server, "group", "add-user", gname, first.name)
    assert client_for(s3, server, first).get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED
    admin(server, "user", "remove", first.name)
    again = add_user(server, "writeonly", bucket, name=first.name)
    assert_denied(lambda: client_for(s3, server, again).get_object(Bucket=bucket, Key="seed"))
    groups = {g["name"]: g for g in admin_json(server, "group", "list")["groups"]}
    assert groups[gname]["members"] == []
