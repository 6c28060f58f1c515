"""aws-cli beyond `aws s3` basics: s3api calls for the features the other issues add
(ranges, copies, metadata, tagging, versioning), `aws s3 presign`, and `aws s3 sync` change
detection."""

import hashlib
import json
import os
import time
import urllib.request

import pytest


def run_json(awscli, server, *args):
    out = awscli(server, *args, "--output", "json").stdout
    return json.loads(out) if out.strip() else {}


@pytest.fixture
def bucket(server, awscli, bucket_name):
    awscli(server, "s3", "mb", f"s3://{bucket_name}")
    return bucket_name


def test_ranged_get_copy_and_metadata(server, awscli, bucket, tmp_path, random_bytes):
    data = random_bytes(3 * 1024 * 1024 + 17, "s3api-range")
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    awscli(server, "s3", "cp", src, f"s3://{bucket}/a/src.bin", "--metadata", "team=storage",
           "--content-type", "application/x-test", "--cache-control", "max-age=60")
    head = run_json(awscli, server, "s3api", "head-object", "--bucket", bucket, "--key", "a/src.bin")
    assert head["Metadata"] == {"team": "storage"}
    assert head["ContentType"] == "application/x-test"
    assert head["CacheControl"] == "max-age=60"
    assert head["ContentLength"] == len(data)

    part = tmp_path / "part.bin"
    got = run_json(awscli, server, "s3api", "get-object", "--bucket", bucket, "--key", "a/src.bin",
                   "--range", "bytes=1048570-1048589", part)
    assert got["ContentRange"] == f"bytes 1048570-1048589/{len(data)}"
    assert part.read_bytes() == data[1048570:1048590]

    # Server-side copies: aws s3 cp between keys, and s3api copy-object with REPLACE.
    awscli(server, "s3", "cp", f"s3://{bucket}/a/src.bin", f"s3://{bucket}/b/copy.bin")
    run_json(awscli, server, "s3api", "copy-object", "--bucket", bucket, "--key", "b/replaced.bin",
             "--copy-source", f"{bucket}/a/src.bin", "--metadata-directive", "REPLACE",
             "--metadata", "team=other", "--content-type", "text/plain")
    replaced = run_json(awscli, server, "s3api", "head-object", "--bucket", bucket, "--key", "b/replaced.bin")
    assert replaced["Metadata"] == {"team": "other"} and replaced["ContentType"] == "text/plain"
    for key in ("b/copy.bin", "b/replaced.bin"):
        dest = tmp_path / key.replace("/", "_")
        awscli(server, "s3", "cp", f"s3://{bucket}/{key}", dest)
        assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_tagging_and_versioning_via_s3api(server, awscli, bucket, tmp_path):
    run_json(awscli, server, "s3api", "put-bucket-versioning", "--bucket", bucket,
             "--versioning-configuration", "Status=Enabled")
    assert run_json(awscli, server, "s3api", "get-bucket-versioning", "--bucket", bucket)["Status"] == "Enabled"
    ids = []
    for body in (b"first", b"second"):
        f = tmp_path / "body"
        f.write_bytes(body)
        ids.append(run_json(awscli, server, "s3api", "put-object", "--bucket", bucket, "--key", "v",
                            "--body", f)["VersionId"])
    assert ids[0] != ids[1]
    versions = run_json(awscli, server, "s3api", "list-object-versions", "--bucket", bucket)["Versions"]
    assert [v["VersionId"] for v in versions] == [ids[1], ids[0]]
    assert [v["IsLatest"] for v in versions] == [True, False]
    old = tmp_path / "old"
    run_json(awscli, server, "s3api", "get-object", "--bucket", bucket, "--key", "v", "--version-id", ids[0], old)
    assert old.read_bytes() == b"first"

    run_json(awscli, server, "s3api", "put-object-tagging", "--bucket", bucket, "--key", "v",
             "--tagging", "TagSet=[{Key=env,Value=test}]")
    tags = run_json(awscli, server, "s3api", "get-object-tagging", "--bucket", bucket, "--key", "v")
    assert tags["TagSet"] == [{"Key": "env", "Value": "test"}]
    old_tags = run_json(awscli, server, "s3api", "get-object-tagging", "--bucket", bucket, "--key", "v",
                        "--version-id", ids[0])
    assert old_tags["TagSet"] == []

    marker = run_json(awscli, server, "s3api", "delete-object", "--bucket", bucket, "--key", "v")
    assert marker["DeleteMarker"] is True
    missing = awscli(server, "s3api", "head-object", "--bucket", bucket, "--key", "v", check=False)
    assert missing.returncode != 0 and "404" in missing.stderr


def test_presign_with_sigv4(server, awscli, bucket, tmp_path):
    f = tmp_path / "p.txt"
    f.write_bytes(b"presigned body")
    awscli(server, "s3", "cp", f, f"s3://{bucket}/p.txt")
    url = awscli(server, "s3", "presign", f"s3://{bucket}/p.txt", "--expires-in", "300").stdout.strip()
    assert "X-Amz-Signature=" in url, url
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as r:
        assert r.read() == b"presigned body"


def test_sync_detects_changes(server, awscli, bucket, tmp_path, random_bytes):
    src = tmp_path / "tree"
    (src / "d").mkdir(parents=True)
    (src / "keep.txt").write_bytes(b"unchanged")
    (src / "d" / "grow.bin").write_bytes(random_bytes(1000, "grow"))
    (src / "gone.txt").write_bytes(b"to be deleted")
    awscli(server, "s3", "sync", src, f"s3://{bucket}/t")
    # Change sizes, delete one file, add one; sync again with --delete.
    (src / "d" / "grow.bin").write_bytes(random_bytes(5000, "grow-2"))
    (src / "gone.txt").unlink()
    (src / "new.txt").write_bytes(b"new file")
    time.sleep(1.1)  # sync compares mtimes with one-second resolution
    out = awscli(server, "s3", "sync", src, f"s3://{bucket}/t", "--delete").stdout
    assert "keep.txt" not in out, f"an unchanged file was uploaded again:\n{out}"
    listed = run_json(awscli, server, "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "t/")
    sizes = {o["Key"]: o["Size"] for o in listed["Contents"]}
    assert sizes == {"t/keep.txt": 9, "t/d/grow.bin": 5000, "t/new.txt": 8}
    back = tmp_path / "back"
    awscli(server, "s3", "sync", f"s3://{bucket}/t", back)
    for rel in ("keep.txt", "d/grow.bin", "new.txt"):
        assert (back / rel).read_bytes() == (src / rel).read_bytes(), rel
    assert not os.path.exists(back / "gone.txt")
