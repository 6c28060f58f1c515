"""rclone (Debian package ``rclone``) end-to-end against the real binary.

The remote ``T:`` is configured only through RCLONE_CONFIG_T_* environment variables
(an empty config file; provider Other, path style, us-east-1). Scenario: mkdir, copy of a
local tree (nested dirs, an empty file, non-ASCII names and a 40 MiB file uploaded in
5 MiB parts), lsjson (names, sizes, MD5s), check, byte-exact download, sync after local
changes (change detection), server-side copyto (incl. multipart copy), ranged cat,
presigned `rclone link`, metadata, versioning, delete/purge/rmdir.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REGION, ROOT_PASSWORD, ROOT_USER, TesseraServer

KiB = 1024
MiB = 1024 * 1024

pytestmark = pytest.mark.timeout(180)

RCLONE = shutil.which("rclone") or "rclone"

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# Flags for every upload: multipart above 5 MiB, in 5 MiB parts.
MULTIPART = ["--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"]


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Rclone:
    def __init__(self, server: TesseraServer, workdir: Path) -> None:
        if shutil.which(RCLONE) is None:
            pytest.fail("rclone not found: scripts/lib.sh ensure_test_deps installs it (apt-get install rclone)", pytrace=False)
        workdir.mkdir(parents=True, exist_ok=True)
        self.server = server
        self.config = workdir / "rclone.conf"
        self.config.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
        # rclone refuses plain http while AWS_CA_BUNDLE is set; the loop above drops it
        # together with every other AWS_* variable.
        env.update(
            RCLONE_CONFIG=str(self.config),
            RCLONE_CONFIG_T_TYPE="s3",
            RCLONE_CONFIG_T_PROVIDER="Other",
            RCLONE_CONFIG_T_ENV_AUTH="false",
            RCLONE_CONFIG_T_ACCESS_KEY_ID=ROOT_USER,
            RCLONE_CONFIG_T_SECRET_ACCESS_KEY=ROOT_PASSWORD,
            RCLONE_CONFIG_T_ENDPOINT=server.url,
            RCLONE_CONFIG_T_REGION=REGION,
            RCLONE_CONFIG_T_FORCE_PATH_STYLE="true",
            # No silent retries: a failing request must fail the command.
            RCLONE_RETRIES="1",
            RCLONE_LOW_LEVEL_RETRIES="1",
            RCLONE_CACHE_DIR=str(workdir / "cache"),
        )
        self.env = env

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [RCLONE, *[str(a) for a in args]]
        try:
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env=self.env
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"rclone timed out: {' '.join(cmd)}\n{exc.stderr}\n{self.server.log_tail()}", pytrace=False)
        if check and proc.returncode != 0:
            pytest.fail(
                f"rclone failed (exit {proc.returncode}): {' '.join(map(str, args))}\n"
                f"--- stdout ---\n{proc.stdout.decode(errors='replace')[-4000:]}\n"
                f"--- stderr ---\n{proc.stderr.decode(errors='replace')[-4000:]}\n"
                f"--- server log tail ---\n{self.server.log_tail()}",
                pytrace=False,
            )
        return proc

    def text(self, *args: str) -> str:
        return self(*args).stdout.decode()

    def lsjson(self, target: str, *flags: str) -> dict[str, dict]:
        return {e["Path"]: e for e in json.loads(self.text("lsjson", target, *flags))}


@pytest.fixture(scope="module")
def rclone(server, tmp_path_factory) -> Rclone:
    return Rclone(server, tmp_path_factory.mktemp("rclone"))


def make_tree(root: Path, random_bytes) -> dict[str, bytes]:
    files = {
        "a.txt": b"hello rclone\n",
        "empty.txt": b"",
        "sub/b.bin": random_bytes(200 * KiB + 3, "rc-b"),
        "sub/deeper/c.txt": b"c" * 1000,
        "sub/deeper/d.txt": b"to be deleted later\n",
        "same-size.txt": b"AAAAAAAAAA",
        "names/caf\u00e9 & spaces+plus.txt": "non-ascii \u2603\n".encode(),
        "big/big.bin": random_bytes(40 * MiB + 77, "rc-big"),
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (root / "emptydir").mkdir()
    return files


def assert_remote_matches(rclone: Rclone, remote: str, files: dict[str, bytes]) -> None:
    listing = rclone.lsjson(remote, "-R", "--files-only", "--hash")
    assert {p: e["Size"] for p, e in listing.items()} == {p: len(d) for p, d in files.items()}
    for p, e in listing.items():
        # The 40 MiB object has a multipart ETag; rclone then reports the MD5 it stored in
        # the X-Amz-Meta-Md5chksum metadata, so every file has a real MD5.
        assert e["Hashes"]["md5"] == hashlib.md5(files[p]).hexdigest(), p


def test_tree_copy_check_sync(rclone, server, s3, bucket_name, tmp_path, random_bytes):
    remote = f"T:{bucket_name}"
    rclone("mkdir", remote)
    s3(server).head_bucket(Bucket=bucket_name)
    assert bucket_name in rclone.text("lsd", "T:")

    local = tmp_path / "local"
    files = make_tree(local, random_bytes)
    rclone("copy", local, remote, *MULTIPART, "--transfers", "4")

    assert_remote_matches(rclone, remote, files)
    big_etag = s3(server).head_object(Bucket=bucket_name, Key="big/big.bin")["ETag"]
    assert big_etag.strip('"').endswith("-9"), big_etag  # 40 MiB + 77 in 5 MiB parts
    rclone("check", local, remote)

    # Non-recursive listing (delimiter "/"): directories are common prefixes.
    top = rclone.lsjson(remote)
    assert {p for p, e in top.items() if e["IsDir"]} == {"big", "names", "sub"}
    assert {p for p, e in top.items() if not e["IsDir"]} == {"a.txt", "empty.txt", "same-size.txt"}
    assert rclone.text("lsf", f"{remote}/sub").splitlines() == ["b.bin", "deeper/"]
    assert rclone.text("lsf", "-R", f"{remote}/sub/deeper").splitlines() == ["c.txt", "d.txt"]

    # Byte-exact download of the whole tree.
    down = tmp_path / "down"
    rclone("copy", remote, down, "--transfers", "4")
    got = {str(p.relative_to(down)): p.read_bytes() for p in down.rglob("*") if p.is_file()}
    assert got.keys() == files.keys()
    for rel, data in files.items():
        assert got[rel] == data, rel
    del got
    shutil.rmtree(down)

    # Ranged reads.
    big = files["big/big.bin"]
    out = rclone("cat", "--offset", str(5 * MiB - 10), "--count", "20", f"{remote}/big/big.bin").stdout
    assert out == big[5 * MiB - 10 : 5 * MiB + 10]
    assert rclone("cat", f"{remote}/sub/deeper/c.txt").stdout == files["sub/deeper/c.txt"]

    # Local changes: one file grows, one keeps its size but changes content (only the
    # modification time tells), one is deleted, one is added.
    time.sleep(1.1)
    (local / "a.txt").write_bytes(b"hello rclone, modified\n")
    files["a.txt"] = b"hello rclone, modified\n"
    (local / "same-size.txt").write_bytes(b"BBBBBBBBBB")
    future = time.time() + 60
    os.utime(local / "same-size.txt", (future, future))
    files["same-size.txt"] = b"BBBBBBBBBB"
    (local / "sub/deeper/d.txt").unlink()
    del files["sub/deeper/d.txt"]
    (local / "sub/new.txt").write_bytes(b"new file\n")
    files["sub/new.txt"] = b"new file\n"

    diff = rclone("check", local, remote, check=False)
    assert diff.returncode != 0
    assert b"4 differences found" in diff.stderr, diff.stderr.decode()

    proc = rclone("sync", local, remote, *MULTIPART, "-v", "--stats-one-line")
    log = proc.stderr.decode()
    assert "a.txt: Copied" in log and "same-size.txt: Copied" in log and "sub/new.txt: Copied" in log, log
    assert "sub/deeper/d.txt: Deleted" in log, log
    assert "big.bin: Copied" not in log, log  # unchanged files are not re-uploaded
    rclone("check", local, remote)
    assert_remote_matches(rclone, remote, files)
    # Nothing left to do: a second sync transfers nothing.
    proc = rclone("sync", local, remote, *MULTIPART, "-v")
    assert "Copied" not in proc.stderr.decode() and "Deleted" not in proc.stderr.decode()

    # Server-side copies: a plain CopyObject, and a multipart copy (UploadPartCopy) of the
    # 40 MiB object forced by --s3-copy-cutoff.
    rclone("copyto", f"{remote}/sub/b.bin", f"{remote}/copies/b-copy.bin", "-v")
    rclone("copyto", f"{remote}/big/big.bin", f"{remote}/copies/big-copy.bin", "--s3-copy-cutoff", "5M", "-v")
    copies = rclone.lsjson(f"{remote}/copies", "--hash")
    assert copies["b-copy.bin"]["Size"] == len(files["sub/b.bin"])
    assert copies["b-copy.bin"]["Hashes"]["md5"] == hashlib.md5(files["sub/b.bin"]).hexdigest()
    assert copies["big-copy.bin"]["Size"] == len(big)
    assert copies["big-copy.bin"]["Hashes"]["md5"] == hashlib.md5(big).hexdigest()
    copy_etag = s3(server).head_object(Bucket=bucket_name, Key="copies/big-copy.bin")["ETag"]
    assert copy_etag.strip('"').endswith("-9"), copy_etag  # assembled from 9 UploadPartCopy parts
    body = s3(server).get_object(Bucket=bucket_name, Key="copies/big-copy.bin")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(big).digest()
    del body
    # moveto = copy + delete.
    rclone("moveto", f"{remote}/copies/b-copy.bin", f"{remote}/copies/moved.bin")
    assert set(rclone.lsjson(f"{remote}/copies")) == {"big-copy.bin", "moved.bin"}

    # Presigned GET URL.
    url = rclone.text("link", "--expire", "1h", f"{remote}/sub/b.bin").strip()
    assert "X-Amz-Signature=" in url, url
    with _OPENER.open(url, timeout=30) as resp:
        assert resp.read() == files["sub/b.bin"]

    # delete (files only, by filter), purge (a directory tree), rmdir (the bucket).
    rclone("delete", remote, "--include", "*.txt")
    left = set(rclone.lsjson(remote, "-R", "--files-only"))
    assert left == {"sub/b.bin", "big/big.bin", "copies/big-copy.bin", "copies/moved.bin"}
    rclone("purge", f"{remote}/copies")
    assert set(rclone.lsjson(remote, "-R", "--files-only")) == {"sub/b.bin", "big/big.bin"}
    assert rclone("rmdir", remote, check=False).returncode != 0  # bucket not empty
    rclone("delete", remote)
    assert rclone.lsjson(remote, "-R") == {}
    rclone("rmdir", remote)
    assert bucket_name not in rclone.text("lsd", "T:")
    assert bucket_name not in {b["Name"] for b in s3(server).list_buckets()["Buckets"]}


def test_metadata_versions_and_purge(rclone, server, s3, bucket_name, tmp_path):
    remote = f"T:{bucket_name}"
    client = s3(server)
    rclone("mkdir", remote)

    src = tmp_path / "doc.txt"
    src.write_bytes(b"first version\n")
    mtime = 1_600_000_000.5
    os.utime(src, (mtime, mtime))
    rclone("copyto", src, f"{remote}/doc.txt", "-M", "--metadata-set", "color=blue", "--metadata-set",
           "content-type=text/x-test")
    head = client.head_object(Bucket=bucket_name, Key="doc.txt")
    assert head["Metadata"]["color"] == "blue"
    assert head["ContentType"] == "text/x-test"
    assert float(head["Metadata"]["mtime"]) == pytest.approx(mtime)
    # rclone reads the modification time back from the metadata.
    entry = rclone.lsjson(remote)["doc.txt"]
    assert entry["ModTime"].startswith("2020-09-13T12:26:40.5")

    # Versioning through rclone's backend command, then old versions in listings.
    assert "Enabled" in rclone.text("backend", "versioning", remote, "Enabled")
    assert client.get_bucket_versioning(Bucket=bucket_name)["Status"] == "Enabled"
    assert "Enabled" in rclone.text("backend", "versioning", remote)
    src.write_bytes(b"second version, longer\n")
    rclone("copyto", src, f"{remote}/doc.txt")
    versions = client.list_object_versions(Bucket=bucket_name)["Versions"]
    assert len(versions) == 2
    listing = rclone.lsjson(remote, "--s3-versions")
    assert listing["doc.txt"]["Size"] == len(b"second version, longer\n")
    old = [p for p in listing if p != "doc.txt"]
    assert len(old) == 1 and old[0].startswith("doc-v") and old[0].endswith(".txt"), listing
    assert listing[old[0]]["Size"] == len(b"first version\n")
    assert rclone("cat", "--s3-versions", f"{remote}/{old[0]}").stdout == b"first version\n"

    # Delete leaves a delete marker; `backend cleanup-hidden` removes every non-current
    # version and marker; purge then removes the (empty) bucket.
    rclone("delete", remote)
    assert rclone.lsjson(remote) == {}
    kinds = client.list_object_versions(Bucket=bucket_name)
    assert len(kinds.get("DeleteMarkers", [])) == 1 and len(kinds["Versions"]) == 2
    rclone("backend", "cleanup-hidden", remote)
    kinds = client.list_object_versions(Bucket=bucket_name)
    assert "Versions" not in kinds or kinds["Versions"] == [], kinds
    assert kinds.get("DeleteMarkers", []) == [], kinds
    rclone("purge", remote)
    assert bucket_name not in {b["Name"] for b in client.list_buckets()["Buckets"]}


def test_paged_listing_version_at_and_upload_cleanup(rclone, server, s3, bucket_name, tmp_path):
    remote = f"T:{bucket_name}"
    client = s3(server)
    rclone("mkdir", remote)

    # Many keys with characters that need URL encoding, listed in pages of 7 with
    # ListObjects v1 (marker) and v2 (continuation token).
    local = tmp_path / "many"
    names = ["sp ace", "plus+sign", "percent%41", "amp&er=eq", "caf\u00e9-\u6f22\u5b57", "lt<gt>", "zz"]
    expected = {}
    for d in ["", "d1/", "d1/d2 x/"]:
        for i in range(12):
            for n in names[: (i % len(names)) + 1]:
                rel = f"{d}{n}-{i:02d}"
                expected[rel] = rel.encode()
                (local / rel).parent.mkdir(parents=True, exist_ok=True)
                (local / rel).write_bytes(rel.encode())
    rclone("copy", local, remote, "--transfers", "8")
    for version in ("1", "2"):
        listing = rclone.lsjson(remote, "-R", "--files-only", "--s3-list-chunk", "7", "--s3-list-version", version)
        assert {p: e["Size"] for p, e in listing.items()} == {p: len(d) for p, d in expected.items()}
        rclone("check", local, remote, "--s3-list-chunk", "7", "--s3-list-version", version)
    top = rclone.lsjson(remote, "--s3-list-chunk", "3")
    assert {p for p, e in top.items() if e["IsDir"]} == {"d1"}
    assert len(top) == 1 + sum(1 for p in expected if "/" not in p)

    # ListObjectVersions in pages of 7 (key-marker / version-id-marker) over the same
    # names: re-uploading every file gives each key a second version.
    rclone("backend", "versioning", remote, "Enabled")
    rclone("copy", local, remote, "--transfers", "8", "--ignore-times")
    versions = rclone.lsjson(remote, "-R", "--files-only", "--s3-versions", "--s3-list-chunk", "7")
    assert len(versions) == 2 * len(expected)
    assert set(expected) <= set(versions)
    assert rclone.lsjson(remote, "-R", "--files-only", "--s3-versions") == versions
    paged = client.get_paginator("list_object_versions").paginate(
        Bucket=bucket_name, PaginationConfig={"PageSize": 5}
    )
    keys = [v["Key"] for page in paged for v in page.get("Versions", [])]
    assert sorted(keys) == sorted(list(expected) * 2)

    # --s3-version-at: the bucket as it was at a point in time.
    doc = tmp_path / "doc.txt"
    doc.write_bytes(b"old")
    rclone("copyto", doc, f"{remote}/doc.txt")
    time.sleep(1.5)
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    time.sleep(1.5)
    doc.write_bytes(b"new content")
    rclone("copyto", doc, f"{remote}/doc.txt")
    assert rclone("cat", f"{remote}/doc.txt").stdout == b"new content"
    assert rclone("cat", "--s3-version-at", at, f"{remote}/doc.txt").stdout == b"old"
    assert rclone.lsjson(remote, "--s3-version-at", at)["doc.txt"]["Size"] == 3

    # Incomplete multipart uploads: listed by rclone, and aborted by `backend cleanup`.
    upload_id = client.create_multipart_upload(Bucket=bucket_name, Key="unfinished.bin")["UploadId"]
    client.upload_part(Bucket=bucket_name, Key="unfinished.bin", UploadId=upload_id, PartNumber=1, Body=b"x" * 100)
    uploads = json.loads(rclone.text("backend", "list-multipart-uploads", remote))[bucket_name]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("unfinished.bin", upload_id)]
    rclone("backend", "cleanup", remote, "-o", "max-age=0s")
    assert json.loads(rclone.text("backend", "list-multipart-uploads", remote))[bucket_name] == []
    assert "Uploads" not in client.list_multipart_uploads(Bucket=bucket_name)

    # Wrong credentials fail cleanly.
    bad = dict(rclone.env, RCLONE_CONFIG_T_SECRET_ACCESS_KEY="wrong-secret")
    proc = subprocess.run([RCLONE, "lsf", remote], env=bad, capture_output=True, timeout=60)
    assert proc.returncode != 0 and b"SignatureDoesNotMatch" in proc.stderr, proc.stderr

    rclone("purge", remote)
    assert bucket_name not in {b["Name"] for b in client.list_buckets()["Buckets"]}
