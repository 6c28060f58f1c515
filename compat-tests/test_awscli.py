"""aws-cli (v1, pip) end-to-end: mb, cp up/down (incl. default multipart), ls, sync, rm, rb."""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

KiB = 1024
MiB = 1024 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse_ls(stdout: str) -> tuple[dict[str, int], set[str]]:
    """Parse `aws s3 ls` output into ({name: size}, {common prefixes})."""
    objects: dict[str, int] = {}
    prefixes: set[str] = set()
    for line in stdout.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^\s*PRE (.+)$", line)
        if m:
            prefixes.add(m.group(1))
            continue
        m = re.match(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})\s+(\d+) (.+)$", line)
        assert m, f"unexpected `aws s3 ls` line: {line!r}"
        objects[m.group(4)] = int(m.group(3))
    return objects, prefixes


@pytest.fixture(scope="module", params=["http", "https"])
def server(request, server_factory, tmp_path_factory, test_ca):
    """Every scenario runs against a plain server and one serving HTTPS (aws-cli given the
    test CA in AWS_CA_BUNDLE)."""
    ca = test_ca if request.param == "https" else None
    srv = server_factory(tmp_path_factory.mktemp(f"awscli-{request.param}"), 1, ca=ca)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def cli_bucket(server, awscli, new_bucket_name):
    name = new_bucket_name("cli")
    awscli(server, "s3", "mb", f"s3://{name}")
    return name


def test_mb_creates_bucket(server, awscli, s3, bucket_name):
    proc = awscli(server, "s3", "mb", f"s3://{bucket_name}")
    assert f"make_bucket: {bucket_name}" in proc.stdout
    s3(server).head_bucket(Bucket=bucket_name)
    listing = awscli(server, "s3", "ls").stdout
    names = {line.split()[-1] for line in listing.splitlines() if line.strip()}
    assert bucket_name in names


@pytest.mark.parametrize(
    "size",
    [0, 1, 100 * KiB, 50 * MiB],
    ids=["0B", "1B", "100KiB", "50MiB-multipart"],
)
def test_cp_roundtrip(server, awscli, s3, cli_bucket, random_bytes, tmp_path, size):
    data = random_bytes(size, f"cp-{size}")
    src = tmp_path / "upload.bin"
    src.write_bytes(data)
    key = f"cp/obj-{size}.bin"

    awscli(server, "s3", "cp", str(src), f"s3://{cli_bucket}/{key}", "--only-show-errors")

    head = s3(server).head_object(Bucket=cli_bucket, Key=key)
    assert head["ContentLength"] == size
    if size >= 8 * MiB:
        # aws-cli's default multipart_threshold/chunksize is 8 MiB -> 7 parts for 50 MiB.
        assert re.fullmatch(r'"[0-9a-f]{32}-7"', head["ETag"]), head["ETag"]
    else:
        assert head["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()

    dst = tmp_path / "download.bin"
    awscli(server, "s3", "cp", f"s3://{cli_bucket}/{key}", str(dst), "--only-show-errors")
    assert dst.stat().st_size == size
    assert file_sha256(dst) == sha256(data)
    src.unlink()
    dst.unlink()


def test_ls_shows_objects_with_sizes(server, awscli, s3, bucket_name, random_bytes, tmp_path):
    awscli(server, "s3", "mb", f"s3://{bucket_name}")
    sizes = {"zero.bin": 0, "one.bin": 1, "hundred-k.bin": 100 * KiB, "three-m.bin": 3 * MiB + 17}
    for name, size in sizes.items():
        p = tmp_path / name
        p.write_bytes(random_bytes(size, name))
        awscli(server, "s3", "cp", str(p), f"s3://{bucket_name}/{name}", "--only-show-errors")
    p = tmp_path / "nested.txt"
    p.write_bytes(b"nested")
    awscli(server, "s3", "cp", str(p), f"s3://{bucket_name}/sub/dir/nested.txt", "--only-show-errors")

    objects, prefixes = parse_ls(awscli(server, "s3", "ls", f"s3://{bucket_name}").stdout)
    assert objects == sizes
    assert prefixes == {"sub/"}

    objects, prefixes = parse_ls(awscli(server, "s3", "ls", f"s3://{bucket_name}", "--recursive").stdout)
    assert objects == {**sizes, "sub/dir/nested.txt": 6}
    assert prefixes == set()

    objects, prefixes = parse_ls(awscli(server, "s3", "ls", f"s3://{bucket_name}/sub/").stdout)
    assert objects == {}
    assert prefixes == {"dir/"}


# A tree of 32 files: nested dirs, spaces, unicode, '+', empty files, and sizes
# around the 128 KiB inline limit and the 1 MiB chunk size.
SYNC_DIRS = ["", "alpha", "alpha/beta", "alpha/beta/gamma deep", "with space", "ünïcödé dir", "z/y/x/w"]
SYNC_SIZES = [0, 1, 17, 1000, 4096, 65536, 128 * KiB, 128 * KiB + 1, 300 * KiB, 1 * MiB + 5, 0]
SYNC_NAMES = ["file {i}.bin", "file_{i}.dat", "plus+{i}.txt", "ñame {i}", "UPPER-{i}.TXT"]


def sync_tree_spec() -> dict[str, int]:
    spec: dict[str, int] = {}
    i = 0
    for d in SYNC_DIRS:
        for _ in range(4 if d else 8):
            name = SYNC_NAMES[i % len(SYNC_NAMES)].format(i=i)
            rel = f"{d}/{name}" if d else name
            spec[rel] = SYNC_SIZES[i % len(SYNC_SIZES)]
            i += 1
    return spec


def read_tree(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirnames, filenames in os.walk(root):
        for fn in filenames:
            p = Path(dirpath) / fn
            out[p.relative_to(root).as_posix()] = file_sha256(p)
    return out


def test_sync_tree_up_and_down(server, awscli, s3, cli_bucket, random_bytes, tmp_path):
    spec = sync_tree_spec()
    assert len(spec) == 32
    assert sum(1 for s in spec.values() if s == 0) >= 4

    src = tmp_path / "src"
    old = time.time() - 3600  # older than the uploads, so a re-sync must be a no-op
    expected: dict[str, str] = {}
    for rel, size in spec.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        data = random_bytes(size, f"sync:{rel}")
        p.write_bytes(data)
        os.utime(p, (old, old))
        expected[rel] = sha256(data)

    prefix = "synced/tree"
    up = awscli(server, "s3", "sync", str(src), f"s3://{cli_bucket}/{prefix}", "--no-progress")
    assert up.stdout.count("upload:") == len(spec), up.stdout

    # The server lists exactly the uploaded keys, with the right sizes.
    listed: dict[str, int] = {}
    for page in s3(server).get_paginator("list_objects_v2").paginate(Bucket=cli_bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            listed[obj["Key"]] = obj["Size"]
    assert listed == {f"{prefix}/{rel}": size for rel, size in spec.items()}

    again = awscli(server, "s3", "sync", str(src), f"s3://{cli_bucket}/{prefix}", "--no-progress")
    assert "upload:" not in again.stdout, f"second sync re-uploaded files:\n{again.stdout}"

    dst = tmp_path / "dst"
    dst.mkdir()
    down = awscli(server, "s3", "sync", f"s3://{cli_bucket}/{prefix}", str(dst), "--no-progress")
    assert down.stdout.count("download:") == len(spec), down.stdout
    got = read_tree(dst)
    assert sorted(got) == sorted(expected)
    for rel in expected:
        assert got[rel] == expected[rel], f"content mismatch for {rel!r}"

    again = awscli(server, "s3", "sync", f"s3://{cli_bucket}/{prefix}", str(dst), "--no-progress")
    assert "download:" not in again.stdout, f"second sync re-downloaded files:\n{again.stdout}"


def test_rm_single_and_recursive(server, awscli, s3, bucket_name, tmp_path):
    awscli(server, "s3", "mb", f"s3://{bucket_name}")
    p = tmp_path / "f.txt"
    p.write_bytes(b"payload")
    for key in ["keep.txt", "gone.txt", "dir/a", "dir/b", "dir/sub/c"]:
        awscli(server, "s3", "cp", str(p), f"s3://{bucket_name}/{key}", "--only-show-errors")

    proc = awscli(server, "s3", "rm", f"s3://{bucket_name}/gone.txt")
    assert "delete:" in proc.stdout
    proc = awscli(server, "s3", "rm", f"s3://{bucket_name}/dir/", "--recursive")
    assert proc.stdout.count("delete:") == 3, proc.stdout

    objects, prefixes = parse_ls(awscli(server, "s3", "ls", f"s3://{bucket_name}", "--recursive").stdout)
    assert objects == {"keep.txt": 7}
    assert prefixes == set()
    with pytest.raises(ClientError) as exc:
        s3(server).head_object(Bucket=bucket_name, Key="gone.txt")
    assert exc.value.response["Error"]["Code"] in ("404", "NoSuchKey")


def test_rb_fails_while_not_empty(server, awscli, s3, bucket_name, tmp_path):
    awscli(server, "s3", "mb", f"s3://{bucket_name}")
    p = tmp_path / "f.txt"
    p.write_bytes(b"x" * 10)
    awscli(server, "s3", "cp", str(p), f"s3://{bucket_name}/a/b.txt", "--only-show-errors")

    proc = awscli(server, "s3", "rb", f"s3://{bucket_name}", check=False)
    assert proc.returncode != 0
    assert "BucketNotEmpty" in proc.stderr, proc.stderr
    # Still there, with its object.
    client = s3(server)
    client.head_bucket(Bucket=bucket_name)
    assert client.get_object(Bucket=bucket_name, Key="a/b.txt")["Body"].read() == b"x" * 10

    awscli(server, "s3", "rm", f"s3://{bucket_name}", "--recursive", "--only-show-errors")
    proc = awscli(server, "s3", "rb", f"s3://{bucket_name}")
    assert f"remove_bucket: {bucket_name}" in proc.stdout

    with pytest.raises(ClientError) as exc:
        client.head_bucket(Bucket=bucket_name)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    names = {line.split()[-1] for line in awscli(server, "s3", "ls").stdout.splitlines() if line.strip()}
    assert bucket_name not in names


def test_rb_force_removes_contents(server, awscli, s3, bucket_name, tmp_path, random_bytes):
    awscli(server, "s3", "mb", f"s3://{bucket_name}")
    p = tmp_path / "f.bin"
    p.write_bytes(random_bytes(200 * KiB, "rb-force"))
    for key in ["one", "two/three", "two/four five"]:
        awscli(server, "s3", "cp", str(p), f"s3://{bucket_name}/{key}", "--only-show-errors")
    awscli(server, "s3", "rb", f"s3://{bucket_name}", "--force")
    with pytest.raises(ClientError) as exc:
        s3(server).head_bucket(Bucket=bucket_name)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
