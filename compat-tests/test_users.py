"""Users, access keys, bucket policies and ACLs (issue 10), black-box with boto3, aws-cli and
the ``tessera admin`` CLI. The bucket policy and ACL tests are in
test_bucket_policies_and_acls.py, which shares the helpers and fixtures below.

CLI (root credentials from TESSERA_ROOT_USER / TESSERA_ROOT_PASSWORD as for every admin
command; ``--json`` is the global admin flag, given before the subcommand):

* ``tessera admin --endpoint URL user add NAME [--policy readwrite|readonly|writeonly]
  [--bucket B | --bucket B/PREFIX ...]`` (default policy readwrite) prints ``name: N``,
  ``access_key: AK``, ``secret_key: SK``, ``policy: P`` and ``buckets: ...`` lines; with
  ``--json`` one object {name, access_key, secret_key, policy, buckets}. An existing name fails.
* ``user list`` (``--json``: {"users": [{name, policy, buckets, enabled, access_keys, created}]},
  never a secret), ``user disable NAME``, ``user enable NAME``, ``user remove NAME``,
  ``user key add NAME`` (``access_key:`` / ``secret_key:`` lines), ``user key remove NAME AK``
  (the last key may go too). A failing admin command exits non-zero.

Semantics:

* readwrite = s3:*, readonly = s3:Get* + s3:List*, writeonly = s3:PutObject +
  s3:AbortMultipartUpload + s3:ListMultipartUploadParts. ``--bucket B`` scopes to B and its
  objects; ``--bucket B/p/`` to keys under p/ and to listings whose prefix starts with p/ (so
  HeadBucket and an unprefixed listing are denied).
* Unscoped readwrite/readonly users see every bucket in ListBuckets; scoped users see the buckets
  they own or are granted something on. A bucket belongs to its creator (ACL owner and
  FetchOwner = the bucket owner, ListBuckets' Owner = the requester, root is "tessera").
* Bucket-policy principals: "*", {"AWS": "*"}, {"AWS": "arn:aws:iam::<account>:user/NAME"}
  (string or list). Root bypasses bucket policies. Conditions: aws:SourceIp (clients here are
  127.0.0.1), aws:SecureTransport (false: plain HTTP; trusted proxies in test_security.py), s3:prefix.
* Denied = AccessDenied 403 (HEAD: bare 403) and nothing changes. DeleteObjects answers 200 with
  an AccessDenied <Error> per denied key and deletes the others, as AWS does. Disabled users and removed keys get
  InvalidAccessKeyId 403 at once. ACL grants to users are tested in test_tenants.py.
* No secret key is ever in the server log or in plain text in any file of its data dirs.
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

from conftest import ROOT_PASSWORD, ROOT_USER, random_bytes, tessera_binary

ACCOUNT = "123456789012"
SEED = b"seed object body"
MiB = 1024 * 1024
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
CANNED_ACLS = [
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
]

# Every secret key handed out in this module (checked against the log and the data dirs).
ISSUED_SECRETS: list[str] = []


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
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`tessera admin {' '.join(args)}` timed out after {timeout}s\n{exc.stderr}", pytrace=False)
    if check and proc.returncode != 0:
        pytest.fail(
            f"`tessera admin {' '.join(args)}` exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
            f"stderr:\n{proc.stderr[-3000:]}\n--- server log ---\n{srv.log_tail()}",
            pytrace=False,
        )
    return proc


def fields(out: str) -> dict[str, str]:
    """The ``name: value`` lines of a text answer."""
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\s*([a-z_]+):[ \t]*(.*)$", out, re.M)}


def keys_from_text(out: str) -> tuple[str, str]:
    f = fields(out)
    assert f.get("access_key") and f.get("secret_key"), f"no access_key:/secret_key: lines in:\n{out}"
    ISSUED_SECRETS.append(f["secret_key"])
    return f["access_key"], f["secret_key"]


def new_user_name() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


def add_user(srv, policy: str | None, *buckets: str, name: str | None = None) -> User:
    name = name or new_user_name()
    args = ["user", "add", name]
    if policy is not None:
        args += ["--policy", policy]
    for b in buckets:
        args += ["--bucket", b]
    return User(name, *keys_from_text(admin(srv, *args).stdout))


def add_key(srv, name: str) -> User:
    return User(name, *keys_from_text(admin(srv, "user", "key", "add", name).stdout))


def list_users(srv) -> dict[str, dict]:
    doc = json.loads(admin(srv, "--json", "user", "list").stdout)
    return {u["name"]: u for u in doc["users"]}


def client_for(s3, srv, user: User | None):
    if user is None:
        return s3(srv, signature_version=UNSIGNED)
    return s3(srv, access_key=user.access_key, secret_key=user.secret_key)


def err(exc) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def outcome(call) -> str:
    """'allowed', 'denied' (403 AccessDenied; HEAD has no body, so botocore says "403"), or
    the test fails on any other error."""
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


def policy_doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def put_policy(c, bucket: str, *statements: dict) -> None:
    c.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy_doc(*statements)))


def stored_policy(c, bucket: str) -> dict:
    return json.loads(c.get_bucket_policy(Bucket=bucket)["Policy"])


def assert_no_policy(c, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        c.get_bucket_policy(Bucket=bucket)
    assert err(exc) == ("NoSuchBucketPolicy", 404)


def is_public(c, bucket: str) -> bool:
    return c.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"]


def keys_in(c, bucket: str, **kw) -> set[str]:
    return {o["Key"] for o in c.list_objects_v2(Bucket=bucket, **kw).get("Contents", [])}


def bucket_names(c) -> set[str]:
    return {b["Name"] for b in c.list_buckets()["Buckets"]}


def grants_of(acl: dict) -> set[tuple[str, str, str]]:
    """{(grantee type, ID or URI, permission)}"""
    return {
        (g["Grantee"]["Type"], g["Grantee"].get("ID") or g["Grantee"].get("URI"), g["Permission"])
        for g in acl["Grants"]
    }


def http_status(url: str) -> int:
    """Status of one plain GET (no signature unless the URL is presigned), without proxies."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url), timeout=10) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def multipart(c, bucket: str, key: str) -> None:
    up = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etag = c.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=b"m" * 1024)["ETag"]
    c.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}
    )


def destroy_bucket(root, name: str) -> None:
    """Best effort: drop policy, uploads and objects, then the bucket (root bypasses policies)."""
    try:
        root.delete_bucket_policy(Bucket=name)
        for up in root.list_multipart_uploads(Bucket=name).get("Uploads", []):
            root.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
        for _ in range(20):
            keys = [{"Key": o["Key"]} for o in root.list_objects_v2(Bucket=name).get("Contents", [])]
            if not keys:
                break
            root.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        root.delete_bucket(Bucket=name)
    except ClientError:
        pass


def files_containing_any(dirs, needles: list[str]) -> list[tuple[Path, int]]:
    """(file, index of the needle) for every file under dirs holding one of the needles."""
    encoded = [n.encode() for n in needles]
    hits = []
    for d in dirs:
        for dirpath, _dirs, names in os.walk(d):
            for n in names:
                p = Path(dirpath) / n
                try:
                    data = p.read_bytes()
                except OSError:
                    continue
                hits.extend((p, i) for i, needle in enumerate(encoded) if needle in data)
    return hits


# =============================================================== fixtures ===
@pytest.fixture(scope="module")
def root(server, s3):
    return s3(server)


@pytest.fixture
def cleanup(root):
    """List of bucket names to remove when the test ends (whoever created them), so public
    policies and ACLs never leak into another test's ListBuckets."""
    names: list[str] = []
    yield names
    for name in names:
        destroy_bucket(root, name)


@pytest.fixture
def bucket(root, bucket_name, cleanup) -> str:
    """A bucket made by root holding one object, ``seed``."""
    root.create_bucket(Bucket=bucket_name)
    cleanup.append(bucket_name)
    root.put_object(Bucket=bucket_name, Key="seed", Body=SEED)
    return bucket_name


@pytest.fixture
def other_bucket(root, new_bucket_name, cleanup) -> str:
    name = new_bucket_name("other")
    root.create_bucket(Bucket=name)
    cleanup.append(name)
    root.put_object(Bucket=name, Key="seed", Body=SEED)
    return name


# ========================================================== user commands ===
def test_user_add_prints_keys_in_text_and_json(server, s3, bucket):
    text_name = new_user_name()
    out = admin(server, "user", "add", text_name, "--policy", "readonly", "--bucket", bucket).stdout
    f = fields(out)
    assert f.get("name") == text_name and f.get("policy") == "readonly", out
    assert bucket in f.get("buckets", ""), out
    text_user = User(text_name, *keys_from_text(out))

    json_name = new_user_name()
    doc = json.loads(admin(server, "--json", "user", "add", json_name).stdout)  # default policy
    assert set(doc) >= {"name", "access_key", "secret_key", "policy", "buckets"}, doc
    assert doc["name"] == json_name and doc["policy"] == "readwrite"
    assert doc["buckets"] in ([], None), doc
    ISSUED_SECRETS.append(doc["secret_key"])
    json_user = User(json_name, doc["access_key"], doc["secret_key"])

    assert len({text_user.access_key, json_user.access_key, ROOT_USER}) == 3, "access keys must be unique"
    assert text_user.secret_key != json_user.secret_key
    for u in (text_user, json_user):
        assert len(u.secret_key) >= 16
    # The new keys work at once.
    assert keys_in(client_for(s3, server, text_user), bucket) == {"seed"}
    assert bucket in bucket_names(client_for(s3, server, json_user))

    listed_text = admin(server, "user", "list").stdout
    listed_json = admin(server, "--json", "user", "list").stdout
    for listed in (listed_text, listed_json):
        assert text_user.name in listed and json_user.name in listed
        assert text_user.secret_key not in listed and json_user.secret_key not in listed
    users = {u["name"]: u for u in json.loads(listed_json)["users"]}
    t, j = users[text_user.name], users[json_user.name]
    for u in (t, j):
        assert set(u) >= {"name", "policy", "buckets", "enabled", "access_keys", "created"}, u
        assert u["enabled"] is True
    assert (t["policy"], t["buckets"], t["access_keys"]) == ("readonly", [bucket], [text_user.access_key])
    assert (j["policy"], j["access_keys"]) == ("readwrite", [json_user.access_key])
    assert j["buckets"] in ([], None)


def test_user_commands_refuse_bad_input_and_change_nothing(server, s3, bucket):
    name = new_user_name()
    u = add_user(server, "readonly", bucket, name=name)
    assert admin(server, "user", "add", name, "--policy", "readwrite", check=False).returncode != 0
    assert admin(server, "user", "add", new_user_name(), "--policy", "superuser", check=False).returncode != 0
    missing = new_user_name()
    for args in (("user", "remove", missing), ("user", "disable", missing), ("user", "key", "add", missing)):
        assert admin(server, *args, check=False).returncode != 0, args
    # Another user's key cannot be removed through this user.
    other = add_user(server, "readonly", bucket)
    assert admin(server, "user", "key", "remove", name, other.access_key, check=False).returncode != 0

    users = list_users(server)
    assert missing not in users
    assert (users[name]["policy"], users[name]["access_keys"]) == ("readonly", [u.access_key])
    assert users[other.name]["access_keys"] == [other.access_key]
    assert keys_in(client_for(s3, server, u), bucket) == {"seed"}
    assert keys_in(client_for(s3, server, other), bucket) == {"seed"}
    assert_denied(lambda: client_for(s3, server, u).put_object(Bucket=bucket, Key="x", Body=b"x"))


def test_unknown_access_key_is_invalid(server, s3):
    c = s3(server, access_key="NOSUCHKEY" + uuid.uuid4().hex[:11].upper(), secret_key="x" * 40)
    assert_bad_key(c.list_buckets)


def test_user_credentials_do_not_open_the_admin_api(server):
    u = add_user(server, "readwrite")
    proc = admin(server, "user", "list", check=False, user=u.access_key, password=u.secret_key)
    assert proc.returncode != 0
    assert "AccessDenied" in proc.stderr + proc.stdout
    proc = admin(server, "user", "add", new_user_name(), check=False, user=u.access_key, password=u.secret_key)
    assert proc.returncode != 0
    assert "AccessDenied" in proc.stderr + proc.stdout
    assert list_users(server)[u.name]["policy"] == "readwrite"


# ====================================================== built-in policies ===
ALL_OPS = ["list", "head_bucket", "location", "get", "head", "get_tagging",
           "put", "multipart", "copy", "put_tagging", "put_policy", "delete"]
READ_OPS = {"list", "head_bucket", "location", "get", "head", "get_tagging"}
EXPECTED = {
    "readwrite": set(ALL_OPS),
    "readonly": READ_OPS,
    "writeonly": {"put", "multipart"},
}


def run_ops(c, b: str) -> dict[str, str]:
    harmless_policy = json.dumps(policy_doc(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": bucket_arn(b)}))
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


@pytest.mark.parametrize("scope", ["all", "this", "other"])
@pytest.mark.parametrize("policy", ["readwrite", "readonly", "writeonly"])
def test_each_policy_allows_exactly_what_it_says(server, s3, root, bucket, other_bucket, policy, scope):
    scoped = {"all": (), "this": (bucket,), "other": (other_bucket,)}[scope]
    u = add_user(server, policy, *scoped)
    got = run_ops(client_for(s3, server, u), bucket)
    allowed = {op for op, r in got.items() if r == "allowed"}
    assert allowed == (set() if scope == "other" else EXPECTED[policy]), got

    # Denied requests changed nothing.
    want_keys = {"seed"} | {k for op, k in [("put", "new-put"), ("multipart", "new-mpu"), ("copy", "new-copy")]
                            if op in allowed}
    if "delete" in allowed:
        want_keys.discard("seed")
    assert keys_in(root, bucket) == want_keys
    if "seed" in want_keys:
        assert root.get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED
        assert root.get_object_tagging(Bucket=bucket, Key="seed")["TagSet"] == []
    if "put_policy" in allowed:
        assert stored_policy(root, bucket)["Statement"][0]["Action"] == "s3:DeleteBucket"
    else:
        assert_no_policy(root, bucket)
    assert root.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert keys_in(root, other_bucket) == {"seed"}


def test_writeonly_user_uploads_and_cleans_up_multipart_but_reads_nothing(server, s3, root, bucket):
    c = client_for(s3, server, add_user(server, "writeonly", bucket))
    up = c.create_multipart_upload(Bucket=bucket, Key="w/mpu")["UploadId"]
    c.upload_part(Bucket=bucket, Key="w/mpu", UploadId=up, PartNumber=1, Body=b"a" * 1024)
    assert [p["PartNumber"] for p in c.list_parts(Bucket=bucket, Key="w/mpu", UploadId=up)["Parts"]] == [1]
    assert_denied(lambda: c.list_multipart_uploads(Bucket=bucket))
    c.abort_multipart_upload(Bucket=bucket, Key="w/mpu", UploadId=up)
    assert root.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    c.put_object(Bucket=bucket, Key="w/obj", Body=b"w")
    assert_denied(lambda: c.get_object(Bucket=bucket, Key="w/obj"))
    assert_denied(lambda: c.head_object(Bucket=bucket, Key="w/obj"))
    assert_denied(lambda: c.list_objects_v2(Bucket=bucket))
    assert_denied(lambda: c.delete_object(Bucket=bucket, Key="w/obj"))
    assert keys_in(root, bucket) == {"seed", "w/obj"}
    assert root.get_object(Bucket=bucket, Key="w/obj")["Body"].read() == b"w"


@pytest.mark.parametrize("policy", ["readonly", "writeonly"])
def test_limited_users_cannot_create_or_delete_buckets(server, s3, root, bucket, new_bucket_name, cleanup, policy):
    c = client_for(s3, server, add_user(server, policy))
    fresh = new_bucket_name("nope")
    cleanup.append(fresh)
    assert_denied(lambda: c.create_bucket(Bucket=fresh))
    assert fresh not in bucket_names(root)
    root.delete_object(Bucket=bucket, Key="seed")
    assert_denied(lambda: c.delete_bucket(Bucket=bucket))
    root.head_bucket(Bucket=bucket)


def test_delete_objects_reports_denied_keys_and_deletes_the_others(server, s3, root, bucket):
    root.put_object(Bucket=bucket, Key="p/a", Body=b"a")
    root.put_object(Bucket=bucket, Key="p/b", Body=b"b")
    everything = {"seed", "p/a", "p/b"}

    # Nothing allowed: 200, every key reported AccessDenied, nothing deleted.
    reader = client_for(s3, server, add_user(server, "readonly", bucket))
    resp = reader.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "p/a"}, {"Key": "p/b"}]})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sorted((e["Key"], e["Code"]) for e in resp["Errors"]) == [("p/a", "AccessDenied"), ("p/b", "AccessDenied")]
    assert resp.get("Deleted", []) == []
    assert keys_in(root, bucket) == everything

    # Allowed on p/ only: the key outside it is reported, the one inside deleted.
    scoped = client_for(s3, server, add_user(server, "readwrite", f"{bucket}/p/"))
    resp = scoped.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "p/a"}, {"Key": "seed"}]})
    assert [d["Key"] for d in resp.get("Deleted", [])] == ["p/a"]
    assert [(e["Key"], e["Code"], e["Message"]) for e in resp["Errors"]] == [("seed", "AccessDenied", "Access Denied")]
    assert keys_in(root, bucket) == {"seed", "p/b"}

    # Quiet mode lists only the errors.
    resp = scoped.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "p/b"}, {"Key": "seed"}], "Quiet": True})
    assert resp.get("Deleted", []) == []
    assert [e["Key"] for e in resp["Errors"]] == ["seed"]
    assert keys_in(root, bucket) == {"seed"}

    # A version delete needs s3:DeleteObjectVersion, checked per key the same way.
    writer = client_for(s3, server, add_user(server, "writeonly", bucket))
    resp = writer.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "seed", "VersionId": "null"}]})
    assert [(e["Key"], e["Code"]) for e in resp["Errors"]] == [("seed", "AccessDenied")]
    assert keys_in(root, bucket) == {"seed"}


def test_copy_needs_read_on_the_source_and_write_on_the_destination(server, s3, root, bucket, other_bucket):
    c = client_for(s3, server, add_user(server, "readwrite", other_bucket))  # nothing on `bucket`
    assert_denied(lambda: c.copy_object(Bucket=other_bucket, Key="stolen", CopySource={"Bucket": bucket, "Key": "seed"}))
    assert_denied(lambda: c.copy_object(Bucket=bucket, Key="pushed", CopySource={"Bucket": other_bucket, "Key": "seed"}))
    assert keys_in(root, other_bucket) == {"seed"} and keys_in(root, bucket) == {"seed"}
    c.copy_object(Bucket=other_bucket, Key="copy", CopySource={"Bucket": other_bucket, "Key": "seed"})
    assert root.get_object(Bucket=other_bucket, Key="copy")["Body"].read() == SEED

    w = client_for(s3, server, add_user(server, "writeonly", other_bucket))  # may write, not read
    assert_denied(lambda: w.copy_object(Bucket=other_bucket, Key="w-copy", CopySource={"Bucket": other_bucket, "Key": "seed"}))
    assert keys_in(root, other_bucket) == {"seed", "copy"}


# ===================================================== scoping, ownership ===
def test_bucket_scoped_users_are_isolated(server, s3, root, bucket, other_bucket, new_bucket_name, cleanup):
    alice = add_user(server, "readwrite", bucket)
    bob = add_user(server, "readonly", other_bucket)
    a, b = client_for(s3, server, alice), client_for(s3, server, bob)

    a.put_object(Bucket=bucket, Key="alice", Body=b"a")
    assert a.get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED
    assert_denied(lambda: a.list_objects_v2(Bucket=other_bucket))
    assert_denied(lambda: a.head_bucket(Bucket=other_bucket))
    assert_denied(lambda: a.get_object(Bucket=other_bucket, Key="seed"))
    assert_denied(lambda: a.put_object(Bucket=other_bucket, Key="alice", Body=b"a"))
    elsewhere = new_bucket_name("elsewhere")
    cleanup.append(elsewhere)
    assert_denied(lambda: a.create_bucket(Bucket=elsewhere))

    assert keys_in(b, other_bucket) == {"seed"}
    assert_denied(lambda: b.put_object(Bucket=other_bucket, Key="bob", Body=b"b"))
    assert_denied(lambda: b.list_objects_v2(Bucket=bucket))
    assert_denied(lambda: b.get_object(Bucket=bucket, Key="alice"))

    assert bucket_names(a) == {bucket}
    assert bucket_names(b) == {other_bucket}
    assert {bucket, other_bucket} <= bucket_names(root)
    assert elsewhere not in bucket_names(root)
    assert keys_in(root, other_bucket) == {"seed"}
    assert keys_in(root, bucket) == {"seed", "alice"}

    # Unscoped readwrite and readonly users see every bucket.
    for policy in ("readwrite", "readonly"):
        assert {bucket, other_bucket} <= bucket_names(client_for(s3, server, add_user(server, policy)))


def test_prefix_scoped_user(server, s3, root, bucket, other_bucket):
    root.put_object(Bucket=bucket, Key="p/a", Body=b"a")
    root.put_object(Bucket=bucket, Key="p/sub/b", Body=b"b")
    root.put_object(Bucket=bucket, Key="q/c", Body=b"c")
    u = add_user(server, "readwrite", f"{bucket}/p/")
    assert list_users(server)[u.name]["buckets"] == [f"{bucket}/p/"]
    c = client_for(s3, server, u)

    c.put_object(Bucket=bucket, Key="p/new", Body=b"n")
    assert c.get_object(Bucket=bucket, Key="p/a")["Body"].read() == b"a"
    c.head_object(Bucket=bucket, Key="p/sub/b")
    assert keys_in(c, bucket, Prefix="p/") == {"p/a", "p/sub/b", "p/new"}
    assert keys_in(c, bucket, Prefix="p/sub/") == {"p/sub/b"}
    c.delete_object(Bucket=bucket, Key="p/new")

    assert_denied(lambda: c.put_object(Bucket=bucket, Key="q/new", Body=b"x"))
    assert_denied(lambda: c.put_object(Bucket=bucket, Key="pnew", Body=b"x"))
    assert_denied(lambda: c.get_object(Bucket=bucket, Key="seed"))
    assert_denied(lambda: c.get_object(Bucket=bucket, Key="q/c"))
    assert_denied(lambda: c.delete_object(Bucket=bucket, Key="q/c"))
    assert_denied(lambda: c.list_objects_v2(Bucket=bucket))
    assert_denied(lambda: c.list_objects_v2(Bucket=bucket, Prefix="q/"))
    assert_denied(lambda: c.head_bucket(Bucket=bucket))
    assert_denied(lambda: c.get_object(Bucket=other_bucket, Key="seed"))
    assert_denied(lambda: c.list_objects_v2(Bucket=other_bucket, Prefix="p/"))
    assert bucket_names(c) == {bucket}
    assert keys_in(root, bucket) == {"seed", "p/a", "p/sub/b", "q/c"}


def test_bucket_belongs_to_its_creator_and_owner_fields_agree(server, s3, root, bucket, new_bucket_name, cleanup):
    name = new_bucket_name("owned")
    cleanup.append(name)
    alice = add_user(server, "readwrite", name)
    a = client_for(s3, server, alice)
    a.create_bucket(Bucket=name)
    a.put_object(Bucket=name, Key="k", Body=b"x")

    acl = a.get_bucket_acl(Bucket=name)
    owner_id = acl["Owner"]["ID"]
    assert re.fullmatch(r"[0-9a-f]{64}", owner_id), owner_id
    assert acl["Owner"]["DisplayName"] == alice.name
    assert grants_of(acl) == {("CanonicalUser", owner_id, "FULL_CONTROL")}
    assert a.list_buckets()["Owner"] == {"DisplayName": alice.name, "ID": owner_id}
    assert bucket_names(a) == {name}
    listed = a.list_objects_v2(Bucket=name, FetchOwner=True)["Contents"]
    assert [(o["Key"], o["Owner"]["ID"], o["Owner"].get("DisplayName")) for o in listed] == [("k", owner_id, alice.name)]
    obj_acl = a.get_object_acl(Bucket=name, Key="k")
    assert obj_acl["Owner"]["ID"] == owner_id
    assert grants_of(obj_acl) == {("CanonicalUser", owner_id, "FULL_CONTROL")}

    # Root sees the same owner; root's own buckets and ListBuckets say "tessera".
    assert root.get_bucket_acl(Bucket=name)["Owner"]["ID"] == owner_id
    assert root.list_objects_v2(Bucket=name, FetchOwner=True)["Contents"][0]["Owner"]["ID"] == owner_id
    assert root.list_buckets()["Owner"] == {"DisplayName": "tessera", "ID": "tessera"}
    assert root.get_bucket_acl(Bucket=bucket)["Owner"]["ID"] == "tessera"
    assert name in bucket_names(root)

    # An unscoped user sees alice's bucket, but ListBuckets names the requester as owner.
    bob = add_user(server, "readwrite")
    listing = client_for(s3, server, bob).list_buckets()
    assert name in {b["Name"] for b in listing["Buckets"]}
    assert listing["Owner"]["DisplayName"] == bob.name
    assert listing["Owner"]["ID"] != owner_id and re.fullmatch(r"[0-9a-f]{64}", listing["Owner"]["ID"])


# ============================================= disable, remove, rotation ===
def test_disabled_user_is_refused_at_once_and_enable_restores(server, s3, root, bucket):
    u = add_user(server, "readwrite", bucket)
    second = add_key(server, u.name)
    c, c2 = client_for(s3, server, u), client_for(s3, server, second)
    c.put_object(Bucket=bucket, Key="before", Body=b"1")
    presigned = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "seed"}, ExpiresIn=600)
    assert http_status(presigned) == 200

    admin(server, "user", "disable", u.name)
    assert list_users(server)[u.name]["enabled"] is False
    assert_bad_key(lambda: c.put_object(Bucket=bucket, Key="while-disabled", Body=b"2"))
    assert_bad_key(lambda: c.get_object(Bucket=bucket, Key="seed"))
    assert_bad_key(lambda: c2.delete_object(Bucket=bucket, Key="seed"))
    assert_bad_key(lambda: c2.list_buckets())
    assert http_status(presigned) == 403
    assert keys_in(root, bucket) == {"seed", "before"}

    admin(server, "user", "enable", u.name)
    assert list_users(server)[u.name]["enabled"] is True
    c.put_object(Bucket=bucket, Key="after", Body=b"3")
    assert c2.get_object(Bucket=bucket, Key="after")["Body"].read() == b"3"
    assert http_status(presigned) == 200
    assert keys_in(root, bucket) == {"seed", "before", "after"}


def test_key_rotation_and_removing_the_last_key(server, s3, root, bucket):
    u = add_user(server, "readwrite", bucket)
    old = client_for(s3, server, u)
    old.put_object(Bucket=bucket, Key="by-old-key", Body=b"old")

    second = add_key(server, u.name)
    assert second.access_key != u.access_key and second.secret_key != u.secret_key
    new = client_for(s3, server, second)
    assert keys_in(old, bucket) == keys_in(new, bucket) == {"seed", "by-old-key"}
    assert sorted(list_users(server)[u.name]["access_keys"]) == sorted([u.access_key, second.access_key])
    assert second.secret_key not in admin(server, "--json", "user", "list").stdout

    admin(server, "user", "key", "remove", u.name, u.access_key)
    assert_bad_key(lambda: old.list_objects_v2(Bucket=bucket))
    assert new.get_object(Bucket=bucket, Key="by-old-key")["Body"].read() == b"old"
    new.put_object(Bucket=bucket, Key="by-new-key", Body=b"new")
    assert list_users(server)[u.name]["access_keys"] == [second.access_key]

    # The last key may go too: the user stays, with no way in, until it gets a new key.
    admin(server, "user", "key", "remove", u.name, second.access_key)
    assert list_users(server)[u.name]["access_keys"] == []
    assert_bad_key(lambda: new.put_object(Bucket=bucket, Key="no-key", Body=b"x"))
    third = add_key(server, u.name)
    assert keys_in(client_for(s3, server, third), bucket) == {"seed", "by-old-key", "by-new-key"}
    assert keys_in(root, bucket) == {"seed", "by-old-key", "by-new-key"}


def test_removed_user_is_refused_and_can_be_recreated_without_its_rights(server, s3, root, new_bucket_name, cleanup):
    name = new_bucket_name("rm")
    cleanup.append(name)
    u = add_user(server, "readwrite", name)
    c = client_for(s3, server, u)
    c.create_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="k", Body=b"x")
    admin(server, "user", "remove", u.name)
    assert u.name not in list_users(server)
    assert_bad_key(lambda: c.list_objects_v2(Bucket=name))
    assert_bad_key(lambda: c.put_object(Bucket=name, Key="k2", Body=b"y"))
    # The bucket and its data stay, reachable by root.
    assert root.get_object(Bucket=name, Key="k")["Body"].read() == b"x"
    again = add_user(server, "readonly", name, name=u.name)
    assert again.access_key != u.access_key
    assert_bad_key(lambda: c.list_objects_v2(Bucket=name))
    c2 = client_for(s3, server, again)
    assert keys_in(c2, name) == {"k"}
    assert_denied(lambda: c2.put_object(Bucket=name, Key="k2", Body=b"y"))
    assert_denied(lambda: c2.delete_object(Bucket=name, Key="k"))
    assert keys_in(root, name) == {"k"}


# ==================================================== aws-cli, persistence ===
def test_awscli_with_user_credentials(server, awscli, root, bucket, tmp_path):
    reader = add_user(server, "readonly", bucket)
    writer = add_user(server, "writeonly", bucket)
    as_reader = {"AWS_ACCESS_KEY_ID": reader.access_key, "AWS_SECRET_ACCESS_KEY": reader.secret_key}
    as_writer = {"AWS_ACCESS_KEY_ID": writer.access_key, "AWS_SECRET_ACCESS_KEY": writer.secret_key}
    src = tmp_path / "file.bin"
    src.write_bytes(random_bytes(3 * MiB, "users-awscli"))

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
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr
    assert keys_in(root, bucket) == {"seed", "from-writer.bin"}
    assert root.get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED


def test_users_persist_and_secrets_are_never_stored_or_logged_in_plain(server, s3, new_bucket_name, cleanup):
    """Last in the file: restarts the module's server, then checks every secret this module
    handed out against the server log and every file under the server's base directory."""
    u = add_user(server, "readwrite")
    k2 = add_key(server, u.name)
    off = add_user(server, "readonly")
    name = new_bucket_name("persist")
    cleanup.append(name)
    client_for(s3, server, u).create_bucket(Bucket=name)
    client_for(s3, server, k2).put_object(Bucket=name, Key="k", Body=b"v")
    admin(server, "user", "disable", off.name)

    server.restart()
    c = client_for(s3, server, u)
    assert name in bucket_names(c)
    assert c.get_bucket_acl(Bucket=name)["Owner"]["DisplayName"] == u.name
    assert client_for(s3, server, k2).get_object(Bucket=name, Key="k")["Body"].read() == b"v"
    assert_bad_key(lambda: client_for(s3, server, off).list_buckets())
    users = list_users(server)
    assert users[off.name]["enabled"] is False
    assert sorted(users[u.name]["access_keys"]) == sorted([u.access_key, k2.access_key])

    assert {u.secret_key, k2.secret_key, off.secret_key} <= set(ISSUED_SECRETS)
    log = server.log_path.read_bytes()
    assert [s for s in ISSUED_SECRETS if s.encode() in log] == [], "a secret key is in the server log"
    # The log lives in server.base, so this covers it again: any plain copy anywhere fails.
    dirs = [server.base, *(d for d in server.dirs if server.base not in d.parents)]
    hits = files_containing_any(dirs, ISSUED_SECRETS)
    assert hits == [], f"secret keys in plain text in {sorted({str(p) for p, _ in hits})}"


def test_root_password_change_locks_users_until_the_old_password_reseals_their_key(make_server, s3):
    srv = make_server()
    u = add_user(srv, "readwrite")
    client_for(s3, srv, u).create_bucket(Bucket="before-change")
    srv.stop()

    new_password = "a-brand-new-root-password"
    srv.env_overrides = {"TESSERA_ROOT_PASSWORD": new_password}
    srv.start()
    # The users' data key does not open with the new password: users are refused, root works.
    assert_bad_key(lambda: client_for(s3, srv, u).list_buckets())
    root_now = s3(srv, access_key=ROOT_USER, secret_key=new_password)
    assert "before-change" in bucket_names(root_now)
    info = json.loads(admin(srv, "--json", "info", password=new_password).stdout)
    assert "TESSERA_PREVIOUS_ROOT_PASSWORD" in (info.get("users_locked") or ""), info
    assert admin(srv, "user", "add", new_user_name(), check=False, password=new_password).returncode != 0
    srv.stop()

    # Given the old password once, the key is re-sealed under the new one and stays so.
    srv.env_overrides = {"TESSERA_ROOT_PASSWORD": new_password, "TESSERA_PREVIOUS_ROOT_PASSWORD": ROOT_PASSWORD}
    srv.start()
    assert "before-change" in bucket_names(client_for(s3, srv, u))
    srv.stop()
    srv.env_overrides = {"TESSERA_ROOT_PASSWORD": new_password}
    srv.start()
    assert "before-change" in bucket_names(client_for(s3, srv, u))
    info = json.loads(admin(srv, "--json", "info", password=new_password).stdout)
    assert info.get("users_locked") is None, info


def _post_form(url: str, fields: dict[str, str], file_body: bytes) -> tuple[int, bytes]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode() + file_body + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_a_root_signed_upload_form_does_not_open_the_admin_api(server, root, bucket):
    # A browser-upload form's signature covers its policy, not the path it is posted to.
    post = root.generate_presigned_post(Bucket=bucket, Key="uploads/x")
    assert _post_form(post["url"], post["fields"], b"upload")[0] in (200, 204)
    name = new_user_name()
    status, body = _post_form(
        f"{server.url}/tessera-admin/v1/users?name={name}&policy=readwrite", post["fields"], b"x"
    )
    assert status == 403 and b"AccessDenied" in body, (status, body)
    assert name not in list_users(server)


def test_a_name_still_named_by_a_bucket_policy_cannot_be_reused(server, s3, root, bucket):
    old = add_user(server, "readonly", "no-such-bucket-scope")
    put_policy(root, bucket, {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{old.name}"},
                              "Action": "s3:GetObject", "Resource": f"{bucket_arn(bucket)}/*"})
    assert client_for(s3, server, old).get_object(Bucket=bucket, Key="seed")["Body"].read() == SEED
    admin(server, "user", "remove", old.name)
    # Re-created, the name would inherit the grant: refused until the policy is changed.
    proc = admin(server, "user", "add", old.name, "--policy", "readonly", check=False)
    assert proc.returncode != 0 and bucket in proc.stderr + proc.stdout, proc.stderr
    assert old.name not in list_users(server)
    root.delete_bucket_policy(Bucket=bucket)
    again = add_user(server, "readonly", "no-such-bucket-scope", name=old.name)
    assert_denied(lambda: client_for(s3, server, again).get_object(Bucket=bucket, Key="seed"))
