"""DRAFT for issue 10, never run: nothing it tests exists yet, and pytest does not collect
this directory. Move it into compat-tests/ (as test_users.py) while building users and
policies, and fix what the real CLI and semantics turn out to be.

Users, access keys, bucket policies and ACLs (issue 10), black-box with boto3 and aws-cli.

ASSUMED CLI (root credentials from TESSERA_ROOT_USER / TESSERA_ROOT_PASSWORD, as for every
``tessera admin`` command; ``--json`` is the existing global admin flag):

* ``tessera admin --endpoint URL user add NAME [--policy readwrite|readonly|writeonly] [--bucket B ...]``
  prints, among other lines, ``access_key: AK`` and ``secret_key: SK`` (one per line);
  with ``--json`` it prints one JSON object containing {"access_key": ..., "secret_key": ...}.
* ``user list --json`` prints ``{"users": [{"name", "policy", "buckets", "enabled",
  "access_keys": [...]}, ...]}`` (a bare list of those objects is accepted too) and never a
  secret key.
* ``user disable NAME``, ``user enable NAME``, ``user remove NAME``.
* ``user key add NAME`` prints ``access_key:`` / ``secret_key:`` lines like ``user add``;
  ``user key remove NAME ACCESS_KEY``.
* A failing admin command exits non-zero.

ASSUMED SEMANTICS (see docs/notes/users-and-policies.md):

* readwrite = s3:*, readonly = s3:Get* + s3:List*, writeonly = s3:PutObject (+ abort of
  multipart uploads); ``--bucket B`` scopes a policy to B and its objects.
* Bucket-policy principals name users as ``arn:aws:iam::<12 digits>:user/NAME`` (the account
  part is ignored); ``"*"`` / ``{"AWS": "*"}`` include anonymous requests.
* Root bypasses bucket policies. A disabled user and a removed key get InvalidAccessKeyId
  (403), like MinIO. DeleteBucketPolicy without a policy is 204 (AWS).
* Anything denied is AccessDenied (403) and changes nothing; DeleteObjects may report the
  denial per key in a 200 answer (AWS, MinIO) or refuse the whole request with 403.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from conftest import ROOT_PASSWORD, ROOT_USER, tessera_binary

ACCOUNT = "123456789012"
SEED = b"seed object body"
MiB = 1024 * 1024


# ================================================================ helpers ===
@dataclass
class User:
    name: str
    access_key: str
    secret_key: str


def admin(srv, *args: str, check: bool = True, user: str = ROOT_USER, password: str = ROOT_PASSWORD, timeout: float = 60):
    """Runs ``tessera admin --endpoint URL ARGS``; fails the test on a non-zero exit if check."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["TESSERA_ROOT_USER"] = user
    env["TESSERA_ROOT_PASSWORD"] = password
    cmd = [str(tessera_binary()), "admin", "--endpoint", srv.url, *args]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        pytest.fail(
            f"`tessera admin {' '.join(args)}` exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
            f"stderr:\n{proc.stderr[-3000:]}\n--- server log ---\n{srv.log_tail()}",
            pytrace=False,
        )
    return proc


def keys_from_text(out: str) -> tuple[str, str]:
    ak = re.search(r"^\s*access_key:\s*(\S+)\s*$", out, re.M)
    sk = re.search(r"^\s*secret_key:\s*(\S+)\s*$", out, re.M)
    assert ak and sk, f"no access_key:/secret_key: lines in:\n{out}"
    return ak.group(1), sk.group(1)


def new_user_name() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


def add_user(srv, policy: str, *buckets: str, name: str | None = None) -> User:
    name = name or new_user_name()
    args = ["user", "add", name, "--policy", policy]
    for b in buckets:
        args += ["--bucket", b]
    return User(name, *keys_from_text(admin(srv, *args).stdout))


def list_users(srv) -> dict[str, dict]:
    doc = json.loads(admin(srv, "--json", "user", "list").stdout)
    users = doc["users"] if isinstance(doc, dict) else doc
    return {u["name"]: u for u in users}


def client_for(s3, srv, user: User | None):
    if user is None:
        return s3(srv, signature_version=UNSIGNED)
    return s3(srv, access_key=user.access_key, secret_key=user.secret_key)


def err(exc) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def outcome(call) -> str:
    """'allowed', 'denied' (403 AccessDenied; HEAD has no body, so botocore says "403"),
    or the test fails on any other error."""
    try:
        call()
        return "allowed"
    except ClientError as e:
        code = e.response["Error"]["Code"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == 403 and code in ("AccessDenied", "403"), f"expected AccessDenied, got {code} {status}"
        return "denied"


def assert_denied(call) -> None:
    assert outcome(call) == "denied"


def assert_bad_key(call) -> None:
    with pytest.raises(ClientError) as exc:
        call()
    assert err(exc) == ("InvalidAccessKeyId", 403)


def bucket_arn(b: str) -> str:
    return f"arn:aws:s3:::{b}"


def objects_arn(b: str, pattern: str = "*") -> str:
    return f"arn:aws:s3:::{b}/{pattern}"


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def put_policy(c, bucket: str, *statements: dict) -> None:
    c.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def keys_in(c, bucket: str) -> set[str]:
    return {o["Key"] for o in c.list_objects_v2(Bucket=bucket).get("Contents", [])}


def http_status(url: str) -> int:
    """Status of one plain GET (no signature unless the URL is presigned), without proxies."""
    req = urllib.request.Request(url)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def unsigned_get(srv, path: str) -> int:
    return http_status(srv.url + path)


def multipart(c, bucket: str, key: str) -> None:
    up = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etag = c.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=b"m" * 1024)["ETag"]
    c.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}
    )


# =============================================================== fixtures ===
@pytest.fixture
def root(server, s3):
    return s3(server)


@pytest.fixture
def bucket(root, bucket_name) -> str:
    """A bucket made by root holding one object, ``seed``."""
    root.create_bucket(Bucket=bucket_name)
    root.put_object(Bucket=bucket_name, Key="seed", Body=SEED)
    return bucket_name


@pytest.fixture
def other_bucket(root, new_bucket_name) -> str:
    name = new_bucket_name("other")
    root.create_bucket(Bucket=name)
    root.put_object(Bucket=name, Key="seed", Body=SEED)
    return name


# ========================================================== user commands ===
def test_user_add_prints_keys_in_text_and_json(server, s3):
    text_user = add_user(server, "readonly")
    name = new_user_name()
    doc = json.loads(admin(server, "--json", "user", "add", name, "--policy", "readwrite").stdout)
    json_user = User(name, doc["access_key"], doc["secret_key"])
    keys = {text_user.access_key, json_user.access_key, ROOT_USER}
    assert len(keys) == 3, "access keys must be unique"
    assert text_user.secret_key != json_user.secret_key
    for u in (text_user, json_user):
        assert len(u.secret_key) >= 16
        client_for(s3, server, u).list_buckets()  # the new key works at once

    listed = admin(server, "user", "list").stdout + admin(server, "--json", "user", "list").stdout
    assert text_user.name in listed and json_user.name in listed
    assert text_user.secret_key not in listed and json_user.secret_key not in listed
    users = list_users(server)
    assert users[text_user.name]["policy"] == "readonly"
    assert users[json_user.name]["policy"] == "readwrite"
    assert text_user.access_key in users[text_user.name]["access_keys"]


def test_user_add_refuses_bad_input(server):
    name = new_user_name()
    add_user(server, "readonly", name=name)
    assert admin(server, "user", "add", name, "--policy", "readonly", check=False).returncode != 0
    assert admin(server, "user", "add", new_user_name(), "--policy", "superuser", check=False).returncode != 0
    assert admin(server, "user", "add", ROOT_USER, "--policy", "readonly", check=False).returncode != 0


def test_unknown_access_key_is_invalid(server, s3):
    c = s3(server, access_key="NOSUCHKEY" + uuid.uuid4().hex[:11].upper(), secret_key="x" * 40)
    assert_bad_key(c.list_buckets)


def test_user_credentials_do_not_open_the_admin_api(server):
    u = add_user(server, "readwrite")
    proc = admin(server, "info", check=False, user=u.access_key, password=u.secret_key)
    assert proc.returncode != 0
    assert "AccessDenied" in proc.stderr + proc.stdout


# ====================================================== built-in policies ===
ALL_OPS = ["list", "head_bucket", "location", "get", "head", "get_tagging",
           "put", "multipart", "copy", "put_tagging", "put_policy", "delete"]
EXPECTED = {
    "readwrite": set(ALL_OPS),
    "readonly": {"list", "head_bucket", "location", "get", "head", "get_tagging"},
    "writeonly": {"put", "multipart"},
}


def run_ops(c, b: str) -> dict[str, str]:
    harmless_policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": bucket_arn(b)}]})
    ops = {
        "list": lambda: c.list_objects_v2(Bucket=b),
        "head_bucket": lambda: c.head_bucket(Bucket=b),
        "location": lambda: c.get_bucket_location(Bucket=b),
        "get": lambda: c.get_object(Bucket=b, Key="seed")["Body"].read(),
        "head": lambda: c.head_object(Bucket=b, Key="seed"),
        "get_tagging": lambda: c.get_object_tagging(Bucket=b, Key="seed"),
        "put": lambda: c.put_object(Bucket=b, Key="new-put", Body=b"p"),
        "multipart": lambda: multipart(c, b, "new-mpu"),
        "copy": lambda: c.copy_object(Bucket=b, Key="new-copy", CopySource={"Bucket": b, "Key": "seed"}),
        "put_tagging": lambda: c.put_object_tagging(
            Bucket=b, Key="seed", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]}),
        "put_policy": lambda: c.put_bucket_policy(Bucket=b, Policy=harmless_policy),
        "delete": lambda: c.delete_object(Bucket=b, Key="seed"),  # last: removes seed
    }
    assert list(ops) == ALL_OPS
    return {name: outcome(op) for name, op in ops.items()}


@pytest.mark.parametrize("policy", ["readwrite", "readonly", "writeonly"])
def test_each_policy_allows_exactly_what_it_says(server, s3, root, bucket, policy):
    u = add_user(server, policy)
    got = run_ops(client_for(s3, server, u), bucket)
    allowed = {op for op, r in got.items() if r == "allowed"}
    assert allowed == EXPECTED[policy], got

    # Denied requests changed nothing.
    want_keys = {"seed"} | {k for op, k in [("put", "new-put"), ("multipart", "new-mpu"), ("copy", "new-copy")]
                            if op in allowed}
    if "delete" in allowed:
        want_keys.discard("seed")
    assert keys_in(root, bucket) == want_keys
    if "seed" in want_keys:
        assert root.get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED
        tags = root.get_object_tagging(Bucket=bucket, Key="seed")["TagSet"]
        assert tags == ([{"Key": "k", "Value": "v"}] if "put_tagging" in allowed else [])
    if "put_policy" not in allowed:
        with pytest.raises(ClientError) as exc:
            root.get_bucket_policy(Bucket=bucket)
        assert err(exc) == ("NoSuchBucketPolicy", 404)
    assert root.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.parametrize("policy", ["readonly", "writeonly"])
def test_limited_users_cannot_create_or_delete_buckets(server, s3, root, bucket, new_bucket_name, policy):
    c = client_for(s3, server, add_user(server, policy))
    fresh = new_bucket_name("nope")
    assert_denied(lambda: c.create_bucket(Bucket=fresh))
    assert fresh not in {b["Name"] for b in root.list_buckets()["Buckets"]}
    root.delete_object(Bucket=bucket, Key="seed")
    assert_denied(lambda: c.delete_bucket(Bucket=bucket))
    root.head_bucket(Bucket=bucket)


def test_delete_objects_by_a_readonly_user_deletes_nothing(server, s3, root, bucket):
    root.put_object(Bucket=bucket, Key="second", Body=b"2")
    c = client_for(s3, server, add_user(server, "readonly"))
    try:
        resp = c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "seed"}, {"Key": "second"}]})
        assert resp.get("Deleted", []) == []
        assert sorted((e["Key"], e["Code"]) for e in resp["Errors"]) == [
            ("second", "AccessDenied"), ("seed", "AccessDenied")]
    except ClientError as e:
        assert (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert keys_in(root, bucket) == {"seed", "second"}


def test_copy_needs_read_on_the_source_and_write_on_the_destination(server, s3, root, bucket, other_bucket):
    u = add_user(server, "readwrite", other_bucket)  # nothing on `bucket`
    c = client_for(s3, server, u)
    assert_denied(lambda: c.copy_object(Bucket=other_bucket, Key="stolen", CopySource={"Bucket": bucket, "Key": "seed"}))
    assert_denied(lambda: c.copy_object(Bucket=bucket, Key="pushed", CopySource={"Bucket": other_bucket, "Key": "seed"}))
    assert keys_in(root, other_bucket) == {"seed"} and keys_in(root, bucket) == {"seed"}
    c.copy_object(Bucket=other_bucket, Key="copy", CopySource={"Bucket": other_bucket, "Key": "seed"})
    assert root.get_object(Bucket=other_bucket, Key="copy")["Body"].read() == SEED


# ===================================================== scoping, ownership ===
def test_bucket_scoped_users_are_isolated(server, s3, root, bucket, other_bucket, new_bucket_name):
    alice = add_user(server, "readwrite", bucket)
    bob = add_user(server, "readonly", other_bucket)
    a, b = client_for(s3, server, alice), client_for(s3, server, bob)

    a.put_object(Bucket=bucket, Key="alice", Body=b"a")
    assert a.get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED
    assert_denied(lambda: a.list_objects_v2(Bucket=other_bucket))
    assert_denied(lambda: a.get_object(Bucket=other_bucket, Key="seed"))
    assert_denied(lambda: a.put_object(Bucket=other_bucket, Key="alice", Body=b"a"))
    assert_denied(lambda: a.create_bucket(Bucket=new_bucket_name("elsewhere")))

    assert keys_in(b, other_bucket) == {"seed"}
    assert_denied(lambda: b.put_object(Bucket=other_bucket, Key="bob", Body=b"b"))
    assert_denied(lambda: b.list_objects_v2(Bucket=bucket))
    assert_denied(lambda: b.get_object(Bucket=bucket, Key="alice"))

    assert {x["Name"] for x in a.list_buckets()["Buckets"]} == {bucket}
    assert {x["Name"] for x in b.list_buckets()["Buckets"]} == {other_bucket}
    assert {bucket, other_bucket} <= {x["Name"] for x in root.list_buckets()["Buckets"]}
    assert keys_in(root, other_bucket) == {"seed"}


def test_bucket_belongs_to_its_creator_and_owner_fields_agree(server, s3, root, new_bucket_name):
    name = new_bucket_name("owned")
    alice = add_user(server, "readwrite", name)
    a = client_for(s3, server, alice)
    a.create_bucket(Bucket=name)
    a.put_object(Bucket=name, Key="k", Body=b"x")

    acl = a.get_bucket_acl(Bucket=name)
    owner_id = acl["Owner"]["ID"]
    assert owner_id
    assert [(g["Grantee"]["Type"], g["Grantee"]["ID"], g["Permission"]) for g in acl["Grants"]] == [
        ("CanonicalUser", owner_id, "FULL_CONTROL")]
    assert a.list_buckets()["Owner"]["ID"] == owner_id
    assert a.list_objects_v2(Bucket=name, FetchOwner=True)["Contents"][0]["Owner"]["ID"] == owner_id
    assert a.get_object_acl(Bucket=name, Key="k")["Owner"]["ID"] == owner_id
    # Root sees the same owner, which is not root.
    assert root.get_bucket_acl(Bucket=name)["Owner"]["ID"] == owner_id
    assert root.list_buckets()["Owner"]["ID"] != owner_id
    assert name in {x["Name"] for x in root.list_buckets()["Buckets"]}


# ============================================= disable, remove, rotation ===
def test_disabled_user_is_refused_at_once_and_enable_restores(server, s3, root, bucket):
    u = add_user(server, "readwrite", bucket)
    c = client_for(s3, server, u)
    c.put_object(Bucket=bucket, Key="before", Body=b"1")
    presigned = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "seed"}, ExpiresIn=600)
    assert http_status(presigned) == 200

    admin(server, "user", "disable", u.name)
    assert list_users(server)[u.name]["enabled"] is False
    assert_bad_key(lambda: c.put_object(Bucket=bucket, Key="while-disabled", Body=b"2"))
    assert_bad_key(lambda: c.get_object(Bucket=bucket, Key="seed"))
    assert http_status(presigned) == 403
    assert keys_in(root, bucket) == {"seed", "before"}

    admin(server, "user", "enable", u.name)
    assert list_users(server)[u.name]["enabled"] is True
    c.put_object(Bucket=bucket, Key="after", Body=b"3")
    assert keys_in(root, bucket) == {"seed", "before", "after"}


def test_key_rotation(server, s3, root, bucket):
    u = add_user(server, "readwrite", bucket)
    old = client_for(s3, server, u)
    old.put_object(Bucket=bucket, Key="by-old-key", Body=b"old")

    out = admin(server, "user", "key", "add", u.name).stdout
    second = User(u.name, *keys_from_text(out))
    assert second.access_key != u.access_key and second.secret_key != u.secret_key
    new = client_for(s3, server, second)
    assert keys_in(old, bucket) == keys_in(new, bucket) == {"seed", "by-old-key"}
    listed = list_users(server)[u.name]
    assert {u.access_key, second.access_key} <= set(listed["access_keys"])
    assert second.secret_key not in admin(server, "--json", "user", "list").stdout

    admin(server, "user", "key", "remove", u.name, u.access_key)
    assert_bad_key(lambda: old.list_objects_v2(Bucket=bucket))
    assert new.get_object(Bucket=bucket, Key="by-old-key")["Body"].read() == b"old"
    new.put_object(Bucket=bucket, Key="by-new-key", Body=b"new")
    assert u.access_key not in list_users(server)[u.name]["access_keys"]


def test_removed_user_is_refused_and_can_be_recreated_without_its_rights(server, s3, root, new_bucket_name):
    name = new_bucket_name("rm")
    u = add_user(server, "readwrite", name)
    c = client_for(s3, server, u)
    c.create_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="k", Body=b"x")
    admin(server, "user", "remove", u.name)
    assert u.name not in list_users(server)
    assert_bad_key(lambda: c.list_objects_v2(Bucket=name))
    # The bucket and its data stay, reachable by root.
    assert root.get_object(Bucket=name, Key="k")["Body"].read() == b"x"
    again = add_user(server, "readonly", name, name=u.name)
    assert_denied(lambda: client_for(s3, server, again).put_object(Bucket=name, Key="k2", Body=b"y"))


# ==================================================== bucket policies ===
def test_anonymous_access_before_and_after_a_public_read_policy(server, s3, root, bucket):
    root.put_object(Bucket=bucket, Key="pub/a.txt", Body=b"public")
    root.put_object(Bucket=bucket, Key="priv/b.txt", Body=b"private")
    anon = client_for(s3, server, None)

    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="pub/a.txt"))
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket))
    assert unsigned_get(server, f"/{bucket}/pub/a.txt") == 403
    for call in (root.get_bucket_policy, root.get_bucket_policy_status):
        with pytest.raises(ClientError) as exc:
            call(Bucket=bucket)
        assert err(exc) == ("NoSuchBucketPolicy", 404)

    put_policy(root, bucket,
               {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": objects_arn(bucket, "pub/*")},
               {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:ListBucket"], "Resource": bucket_arn(bucket)})
    stored = json.loads(root.get_bucket_policy(Bucket=bucket)["Policy"])
    assert len(stored["Statement"]) == 2
    assert root.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True

    assert anon.get_object(Bucket=bucket, Key="pub/a.txt")["Body"].read() == b"public"
    assert unsigned_get(server, f"/{bucket}/pub/a.txt") == 200
    assert keys_in(anon, bucket) == {"seed", "pub/a.txt", "priv/b.txt"}
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="priv/b.txt"))
    assert_denied(lambda: anon.put_object(Bucket=bucket, Key="pub/new", Body=b"x"))
    assert_denied(lambda: anon.delete_object(Bucket=bucket, Key="pub/a.txt"))
    assert_denied(lambda: anon.list_buckets())
    assert keys_in(root, bucket) == {"seed", "pub/a.txt", "priv/b.txt"}

    root.delete_bucket_policy(Bucket=bucket)
    root.delete_bucket_policy(Bucket=bucket)  # idempotent: 204 again
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="pub/a.txt"))
    assert unsigned_get(server, f"/{bucket}/pub/a.txt") == 403


def test_policy_status_is_not_public_for_named_users_or_ip_ranges(server, root, bucket):
    u = add_user(server, "readonly", bucket)
    put_policy(root, bucket, {"Effect": "Allow", "Principal": {"AWS": [user_arn(u.name)]},
                              "Action": "s3:GetObject", "Resource": objects_arn(bucket)})
    assert root.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    put_policy(root, bucket, {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                              "Resource": objects_arn(bucket),
                              "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}})
    assert root.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False


def _malformed(bucket: str) -> list[tuple[str, str]]:
    def doc(**stmt):
        base = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": objects_arn(bucket)}
        base.update(stmt)
        return json.dumps({"Version": "2012-10-17", "Statement": [{k: v for k, v in base.items() if v is not None}]})
    return [
        ("not json", "this is not json"),
        ("array", "[]"),
        ("no statement", json.dumps({"Version": "2012-10-17"})),
        ("empty statement", json.dumps({"Version": "2012-10-17", "Statement": []})),
        ("bad effect", doc(Effect="Maybe")),
        ("no effect", doc(Effect=None)),
        ("no principal", doc(Principal=None)),
        ("string principal", doc(Principal="somebody")),
        ("unknown action", doc(Action="s3:NoSuchAction")),
        ("not an action", doc(Action="invalid_action")),
        ("other bucket", doc(Resource=objects_arn(bucket + "-other"))),
        ("star resource", doc(Resource="*")),
        ("all buckets", doc(Resource="arn:aws:s3:::*")),
        ("object action on bucket", doc(Resource=bucket_arn(bucket))),
        ("unknown operator", doc(Condition={"NoSuchOperator": {"aws:SourceIp": "10.0.0.0/8"}})),
    ]


def test_malformed_policies_are_refused_and_change_nothing(server, root, bucket):
    for label, text in _malformed(bucket):
        with pytest.raises(ClientError) as exc:
            root.put_bucket_policy(Bucket=bucket, Policy=text)
        assert err(exc) == ("MalformedPolicy", 400), label
        with pytest.raises(ClientError) as exc:
            root.get_bucket_policy(Bucket=bucket)
        assert err(exc) == ("NoSuchBucketPolicy", 404), label


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


def test_bucket_policy_grants_a_user_more_than_its_own_policy(server, s3, root, bucket, other_bucket):
    u = add_user(server, "readonly", other_bucket)  # nothing on `bucket` by itself
    c = client_for(s3, server, u)
    assert_denied(lambda: c.put_object(Bucket=bucket, Key="uploads/x", Body=b"x"))
    put_policy(root, bucket, {"Effect": "Allow", "Principal": {"AWS": [user_arn(u.name)]},
                              "Action": "s3:PutObject", "Resource": objects_arn(bucket, "uploads/*")})
    c.put_object(Bucket=bucket, Key="uploads/x", Body=b"x")
    assert_denied(lambda: c.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"x"))
    assert_denied(lambda: c.get_object(Bucket=bucket, Key="uploads/x"))
    # Another user gains nothing from it.
    other = client_for(s3, server, add_user(server, "readonly", other_bucket))
    assert_denied(lambda: other.put_object(Bucket=bucket, Key="uploads/y", Body=b"y"))
    assert keys_in(root, bucket) == {"seed", "uploads/x"}


def test_not_action_and_not_resource(server, s3, root, bucket, other_bucket):
    carol = add_user(server, "readonly", other_bucket)
    c = client_for(s3, server, carol)
    put_policy(root, bucket, {"Effect": "Allow", "Principal": {"AWS": user_arn(carol.name)},
                              "NotAction": ["s3:DeleteObject", "s3:DeleteBucket", "s3:*Policy"],
                              "Resource": [bucket_arn(bucket), objects_arn(bucket)]})
    c.put_object(Bucket=bucket, Key="public/p", Body=b"p")
    c.put_object(Bucket=bucket, Key="private/q", Body=b"q")
    assert keys_in(c, bucket) == {"seed", "public/p", "private/q"}
    assert_denied(lambda: c.delete_object(Bucket=bucket, Key="seed"))

    dave = add_user(server, "readwrite", bucket)
    d = client_for(s3, server, dave)
    put_policy(root, bucket, {"Effect": "Deny", "Principal": {"AWS": user_arn(dave.name)},
                              "Action": "s3:GetObject", "NotResource": objects_arn(bucket, "public/*")})
    assert d.get_object(Bucket=bucket, Key="public/p")["Body"].read() == b"p"
    assert_denied(lambda: d.get_object(Bucket=bucket, Key="private/q"))
    assert keys_in(root, bucket) == {"seed", "public/p", "private/q"}


def test_source_ip_conditions(server, s3, root, bucket):
    anon = client_for(s3, server, None)
    stmt = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": objects_arn(bucket)}
    put_policy(root, bucket, {**stmt, "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.1"]}}})
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="seed"))
    put_policy(root, bucket, {**stmt, "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}})
    assert anon.get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED

    u = add_user(server, "readwrite", bucket)
    c = client_for(s3, server, u)
    put_policy(root, bucket, {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                              "Resource": [bucket_arn(bucket), objects_arn(bucket)],
                              "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    assert_denied(lambda: c.get_object(Bucket=bucket, Key="seed"))
    root.get_object(Bucket=bucket, Key="seed")


def test_secure_transport_condition_over_plain_http(server, s3, root, bucket):
    u = add_user(server, "readwrite", bucket)
    c = client_for(s3, server, u)
    put_policy(root, bucket, {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                              "Resource": [bucket_arn(bucket), objects_arn(bucket)],
                              "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    assert_denied(lambda: c.list_objects_v2(Bucket=bucket))
    assert_denied(lambda: c.put_object(Bucket=bucket, Key="x", Body=b"x"))
    root.delete_bucket_policy(Bucket=bucket)  # root still can
    put_policy(root, bucket, {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                              "Resource": [bucket_arn(bucket), objects_arn(bucket)],
                              "Condition": {"Bool": {"aws:SecureTransport": "true"}}})
    c.put_object(Bucket=bucket, Key="x", Body=b"x")


def test_prefix_conditions_on_listing(server, s3, root, bucket):
    root.put_object(Bucket=bucket, Key="pub/a", Body=b"a")
    root.put_object(Bucket=bucket, Key="priv/b", Body=b"b")
    anon = client_for(s3, server, None)
    put_policy(root, bucket, {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
                              "Resource": bucket_arn(bucket), "Condition": {"StringLike": {"s3:prefix": "pub/*"}}})
    assert [o["Key"] for o in anon.list_objects_v2(Bucket=bucket, Prefix="pub/")["Contents"]] == ["pub/a"]
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket, Prefix="priv/"))
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket))

    put_policy(root, bucket,
               {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": bucket_arn(bucket)},
               {"Effect": "Deny", "Principal": "*", "Action": "s3:ListBucket", "Resource": bucket_arn(bucket),
                "Condition": {"StringNotEquals": {"s3:prefix": ["pub/", "pub/a"]}}})
    assert [o["Key"] for o in anon.list_objects_v2(Bucket=bucket, Prefix="pub/")["Contents"]] == ["pub/a"]
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket, Prefix="priv/"))


# ================================================================= ACLs ===
def test_public_read_object_acl_allows_anonymous_reads(server, s3, root, bucket):
    anon = client_for(s3, server, None)
    root.put_object(Bucket=bucket, Key="open", Body=b"open", ACL="public-read")
    root.put_object(Bucket=bucket, Key="closed", Body=b"closed")
    assert anon.get_object(Bucket=bucket, Key="open")["Body"].read() == b"open"
    assert unsigned_get(server, f"/{bucket}/open") == 200
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="closed"))
    assert_denied(lambda: anon.list_objects_v2(Bucket=bucket))

    acl = root.get_object_acl(Bucket=bucket, Key="open")
    perms = {(g["Grantee"].get("URI") or g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]}
    assert (acl["Owner"]["ID"], "FULL_CONTROL") in perms
    assert ("http://acs.amazonaws.com/groups/global/AllUsers", "READ") in perms

    root.put_object_acl(Bucket=bucket, Key="open", ACL="private")
    assert_denied(lambda: anon.get_object(Bucket=bucket, Key="open"))
    assert [g["Permission"] for g in root.get_object_acl(Bucket=bucket, Key="open")["Grants"]] == ["FULL_CONTROL"]
    root.put_object_acl(Bucket=bucket, Key="closed", ACL="public-read")
    assert anon.get_object(Bucket=bucket, Key="closed")["Body"].read() == b"closed"


def test_canned_acls_are_accepted_on_put(server, s3, root, new_bucket_name):
    name = new_bucket_name("acl")
    root.create_bucket(Bucket=name, ACL="private")
    for acl in ("private", "public-read", "authenticated-read", "bucket-owner-read", "bucket-owner-full-control"):
        root.put_object(Bucket=name, Key=f"k-{acl}", Body=b"x", ACL=acl)
        root.put_object_acl(Bucket=name, Key=f"k-{acl}", ACL=acl)
    root.copy_object(Bucket=name, Key="copied", CopySource={"Bucket": name, "Key": "k-private"}, ACL="public-read")
    up = root.create_multipart_upload(Bucket=name, Key="mpu", ACL="public-read")["UploadId"]
    root.abort_multipart_upload(Bucket=name, Key="mpu", UploadId=up)
    root.put_bucket_acl(Bucket=name, ACL="private")
    anon = client_for(s3, server, None)
    assert anon.get_object(Bucket=name, Key="copied")["Body"].read() == b"x"


# ==================================================== aws-cli, persistence ===
def test_awscli_with_user_credentials(server, awscli, root, bucket, tmp_path):
    reader = add_user(server, "readonly", bucket)
    writer = add_user(server, "writeonly", bucket)
    as_reader = {"AWS_ACCESS_KEY_ID": reader.access_key, "AWS_SECRET_ACCESS_KEY": reader.secret_key}
    as_writer = {"AWS_ACCESS_KEY_ID": writer.access_key, "AWS_SECRET_ACCESS_KEY": writer.secret_key}
    src = tmp_path / "file.bin"
    src.write_bytes(os.urandom(3 * MiB))

    awscli(server, "s3", "cp", str(src), f"s3://{bucket}/from-writer.bin", env=as_writer)
    denied = awscli(server, "s3", "ls", f"s3://{bucket}/", env=as_writer, check=False)
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr

    listing = awscli(server, "s3", "ls", f"s3://{bucket}/", env=as_reader).stdout
    assert "from-writer.bin" in listing and "seed" in listing
    dst = tmp_path / "back.bin"
    awscli(server, "s3", "cp", f"s3://{bucket}/from-writer.bin", str(dst), env=as_reader)
    assert dst.read_bytes() == src.read_bytes()
    denied = awscli(server, "s3", "cp", str(src), f"s3://{bucket}/from-reader.bin", env=as_reader, check=False)
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr
    denied = awscli(server, "s3", "rm", f"s3://{bucket}/seed", env=as_reader, check=False)
    assert denied.returncode != 0
    assert keys_in(root, bucket) == {"seed", "from-writer.bin"}


def _files_containing(dirs, needle: bytes) -> list[Path]:
    hits = []
    for d in dirs:
        for dirpath, _dirs, names in os.walk(d):
            for n in names:
                p = Path(dirpath) / n
                try:
                    if needle in p.read_bytes():
                        hits.append(p)
                except OSError:
                    pass
    return hits


def test_users_persist_and_secrets_are_never_stored_or_logged_in_plain(make_server, s3):
    srv = make_server(1)
    u = add_user(srv, "readwrite")
    k2 = User(u.name, *keys_from_text(admin(srv, "user", "key", "add", u.name).stdout))
    bucket = f"persist-{uuid.uuid4().hex[:8]}"
    client_for(s3, srv, u).create_bucket(Bucket=bucket)
    for secret in (u.secret_key, k2.secret_key):
        assert _files_containing(srv.dirs, secret.encode()) == [], "secret stored in plain text"
    srv.restart()
    c = client_for(s3, srv, u)
    assert bucket in {b["Name"] for b in c.list_buckets()["Buckets"]}
    client_for(s3, srv, k2).head_bucket(Bucket=bucket)
    admin(srv, "user", "disable", u.name)
    srv.restart()
    assert_bad_key(lambda: c.list_buckets())
    for secret in (u.secret_key, k2.secret_key):
        assert _files_containing(srv.dirs, secret.encode()) == []
        assert secret not in srv.log_path.read_text(errors="replace"), "secret in the server log"
