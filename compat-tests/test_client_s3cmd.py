"""s3cmd (PyPI ``s3cmd``) end-to-end against the real binary.

s3cmd runs with a generated config: path style (host_bucket without %(bucket)s), plain
http, SigV4, us-east-1. Scenario: mb, put (small, and 30 MiB in 5 MiB parts), byte-exact
get, ls (buckets, prefixes, recursive), la, du, sync up (then local changes and a second
sync with --delete-removed) and down, info (object and bucket), modify (metadata via
CopyObject), tagging, versioning, cp, mv, del, rb, and a SigV2 signurl.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REGION, ROOT_PASSWORD, ROOT_USER, TesseraServer

KiB = 1024
MiB = 1024 * 1024

pytestmark = pytest.mark.timeout(180)

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class S3cmd:
    def __init__(self, server: TesseraServer, workdir: Path) -> None:
        # Prefer the script pip installed next to this interpreter (a fresh pyenv has no
        # shim for it until `pyenv rehash`), then PATH.
        local = Path(sysconfig.get_path("scripts")) / "s3cmd"
        exe = str(local) if local.is_file() else shutil.which("s3cmd")
        if exe is None:
            pytest.fail("s3cmd not found: pip install -r compat-tests/requirements.txt", pytrace=False)
        self.exe = exe
        self.server = server
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "s3cfg"
        hostport = f"127.0.0.1:{server.port}"
        self.config.write_text(
            "[default]\n"
            f"access_key = {ROOT_USER}\n"
            f"secret_key = {ROOT_PASSWORD}\n"
            f"host_base = {hostport}\n"
            f"host_bucket = {hostport}\n"
            f"bucket_location = {REGION}\n"
            "use_https = False\n"
            "signature_v2 = False\n"
            "check_ssl_certificate = False\n"
            "proxy_host = \n"
            "proxy_port = 0\n"
            "progress_meter = False\n"
            "max_retries = 1\n"
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update(HOME=str(workdir), LC_ALL="C.UTF-8", LANG="C.UTF-8", PYTHONIOENCODING="utf-8")

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [self.exe, "-c", str(self.config), "--no-progress", *[str(a) for a in args]]
        try:
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=self.env
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"s3cmd timed out: {' '.join(cmd)}\n{exc.stderr}\n{self.server.log_tail()}", pytrace=False)
        if check and proc.returncode != 0:
            pytest.fail(
                f"s3cmd failed (exit {proc.returncode}): {' '.join(map(str, args))}\n"
                f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}\n"
                f"--- server log tail ---\n{self.server.log_tail()}",
                pytrace=False,
            )
        return proc

    def ls(self, *args: str) -> tuple[dict[str, int], set[str]]:
        """Parse `s3cmd ls`: ({s3 url: size}, {DIR urls})."""
        objects: dict[str, int] = {}
        dirs: set[str] = set()
        for line in self(*("ls", *args)).stdout.splitlines():
            if not line.strip():
                continue
            m = re.match(r"^\s+DIR\s+(s3://.+)$", line)
            if m:
                dirs.add(m.group(1))
                continue
            m = re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}\s+(\d+)\s+(s3://.+)$", line)
            assert m, f"unexpected `s3cmd ls` line: {line!r}"
            objects[m.group(2)] = int(m.group(1))
        return objects, dirs

    def info(self, url: str) -> dict[str, str]:
        out = {}
        for line in self("info", url).stdout.splitlines()[1:]:
            key, _, value = line.strip().partition(":")
            out[key.strip()] = value.strip()
        return out


@pytest.fixture(scope="module")
def s3cmd(server, tmp_path_factory) -> S3cmd:
    return S3cmd(server, tmp_path_factory.mktemp("s3cmd"))


def test_put_get_ls_cp_mv_del(s3cmd, server, s3, bucket_name, tmp_path, random_bytes):
    b = f"s3://{bucket_name}"
    assert f"Bucket '{b}/' created" in s3cmd("mb", b).stdout
    assert b in s3cmd("ls").stdout
    # Making it again fails (BucketAlreadyOwnedByYou / BucketAlreadyExists).
    dup = s3cmd("mb", b, check=False)
    assert dup.returncode != 0 and "BucketAlready" in dup.stderr, dup.stderr

    small = random_bytes(64 * KiB + 5, "s3cmd-small")
    (tmp_path / "small.bin").write_bytes(small)
    big = random_bytes(30 * MiB + 999, "s3cmd-big")
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "empty").write_bytes(b"")

    s3cmd("put", tmp_path / "small.bin", f"{b}/data/small.bin", "--add-header=x-amz-meta-origin:s3cmd")
    s3cmd("put", tmp_path / "empty", f"{b}/data/empty")
    s3cmd("put", tmp_path / "big.bin", f"{b}/data/big/big.bin", "--multipart-chunk-size-mb=5")
    head = s3(server).head_object(Bucket=bucket_name, Key="data/big/big.bin")
    assert head["ContentLength"] == len(big)
    assert head["ETag"].strip('"').endswith("-7"), head["ETag"]  # 30 MiB + 999 B in 5 MiB parts

    # Byte-exact downloads.
    s3cmd("get", f"{b}/data/big/big.bin", tmp_path / "big.down")
    assert sha256((tmp_path / "big.down").read_bytes()) == sha256(big)
    s3cmd("get", f"{b}/data/small.bin", tmp_path / "small.down")
    assert (tmp_path / "small.down").read_bytes() == small
    s3cmd("get", f"{b}/data/empty", tmp_path / "empty.down")
    assert (tmp_path / "empty.down").read_bytes() == b""
    # get refuses to overwrite without --force, and overwrites with it.
    (tmp_path / "small.down").write_bytes(b"stale")
    assert s3cmd("get", f"{b}/data/small.bin", tmp_path / "small.down", check=False).returncode != 0
    s3cmd("get", "--force", f"{b}/data/small.bin", tmp_path / "small.down")
    assert (tmp_path / "small.down").read_bytes() == small

    # ls: delimiter listing, prefix listing, recursive listing, la, du.
    objects, dirs = s3cmd.ls(b)
    assert objects == {} and dirs == {f"{b}/data/"}
    objects, dirs = s3cmd.ls(f"{b}/data/")
    assert objects == {f"{b}/data/small.bin": len(small), f"{b}/data/empty": 0}
    assert dirs == {f"{b}/data/big/"}
    objects, dirs = s3cmd.ls(f"{b}/data/s")  # a plain key prefix, not a "directory"
    assert objects == {f"{b}/data/small.bin": len(small)} and dirs == set()
    objects, _ = s3cmd.ls("--recursive", b)
    assert objects == {
        f"{b}/data/small.bin": len(small),
        f"{b}/data/empty": 0,
        f"{b}/data/big/big.bin": len(big),
    }
    la = s3cmd("la").stdout
    assert f"{b}/data/" in la
    du = s3cmd("du", b).stdout.split()
    assert int(du[0]) == len(small) + len(big) and du[1] == "3", du

    # info on an object: size, MD5 (s3cmd's stored MD5 for the multipart one), metadata.
    info = s3cmd.info(f"{b}/data/small.bin")
    assert info["File size"] == str(len(small))
    assert info["MD5 sum"] == hashlib.md5(small).hexdigest()
    assert info["x-amz-meta-origin"] == "s3cmd"
    info = s3cmd.info(f"{b}/data/big/big.bin")
    assert info["File size"] == str(len(big))
    assert info["MD5 sum"] == hashlib.md5(big).hexdigest()

    # modify: CopyObject onto itself with a replaced header set.
    s3cmd("modify", "--add-header=x-amz-meta-color:green", "--mime-type=text/x-modified", f"{b}/data/small.bin")
    head = s3(server).head_object(Bucket=bucket_name, Key="data/small.bin")
    assert head["Metadata"]["color"] == "green"
    assert head["ContentType"] == "text/x-modified"
    assert s3(server).get_object(Bucket=bucket_name, Key="data/small.bin")["Body"].read() == small

    # Tagging.
    s3cmd("settagging", f"{b}/data/small.bin", "team=storage&tier=hot")
    tags = s3cmd("gettagging", f"{b}/data/small.bin").stdout
    assert re.search(r"team:\s+storage", tags) and re.search(r"tier:\s+hot", tags), tags
    got = s3(server).get_object_tagging(Bucket=bucket_name, Key="data/small.bin")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in got) == [("team", "storage"), ("tier", "hot")]
    s3cmd("deltagging", f"{b}/data/small.bin")
    assert s3(server).get_object_tagging(Bucket=bucket_name, Key="data/small.bin")["TagSet"] == []

    # cp (server-side, also of the 30 MiB object), mv, del.
    s3cmd("cp", f"{b}/data/small.bin", f"{b}/copy/small.bin")
    s3cmd("cp", f"{b}/data/big/big.bin", f"{b}/copy/big.bin")
    s3cmd("get", f"{b}/copy/big.bin", tmp_path / "big.copy")
    assert sha256((tmp_path / "big.copy").read_bytes()) == sha256(big)
    s3cmd("mv", f"{b}/copy/small.bin", f"{b}/moved/small.bin")
    objects, _ = s3cmd.ls("--recursive", f"{b}/copy/")
    assert objects == {f"{b}/copy/big.bin": len(big)}
    s3cmd("get", f"{b}/moved/small.bin", tmp_path / "moved.down")
    assert (tmp_path / "moved.down").read_bytes() == small

    s3cmd("del", f"{b}/moved/small.bin")
    assert s3cmd.ls("--recursive", f"{b}/moved/")[0] == {}
    rb = s3cmd("rb", b, check=False)
    assert rb.returncode != 0 and "BucketNotEmpty" in rb.stderr, rb.stderr
    s3cmd("del", "--recursive", "--force", b)
    assert s3cmd.ls("--recursive", b)[0] == {}
    s3cmd("rb", b)
    assert b not in s3cmd("ls").stdout
    assert s3cmd("ls", b, check=False).returncode != 0  # NoSuchBucket


def test_sync_change_detection(s3cmd, server, s3, bucket_name, tmp_path, random_bytes):
    b = f"s3://{bucket_name}"
    s3cmd("mb", b)
    src = tmp_path / "src"
    files = {
        "one.txt": b"one\n",
        "same-size.txt": b"0123456789",
        "nested/two.bin": random_bytes(150 * KiB, "s3cmd-two"),
        "nested/deep/three.txt": b"three\n" * 50,
        "nested/deep/gone.txt": b"will be removed\n",
        "big.bin": random_bytes(12 * MiB + 1, "s3cmd-sync-big"),
    }
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)

    def uploads(out: str) -> set[str]:
        return set(re.findall(r"upload: '[^']*?/src/([^']+)' -> ", out))

    out = s3cmd("sync", "--multipart-chunk-size-mb=5", f"{src}/", f"{b}/tree/").stdout
    assert uploads(out) == set(files), out
    objects, _ = s3cmd.ls("--recursive", b)
    assert objects == {f"{b}/tree/{k}": len(v) for k, v in files.items()}

    # Nothing changed: nothing uploaded (size + MD5, incl. the stored MD5 of the multipart object).
    out = s3cmd("sync", "--multipart-chunk-size-mb=5", f"{src}/", f"{b}/tree/").stdout
    assert uploads(out) == set(), out

    # Local changes: a grown file, a same-size file with new content, a deleted file, a new file.
    (src / "one.txt").write_bytes(b"one, changed\n")
    files["one.txt"] = b"one, changed\n"
    (src / "same-size.txt").write_bytes(b"9876543210")
    files["same-size.txt"] = b"9876543210"
    (src / "nested/deep/gone.txt").unlink()
    del files["nested/deep/gone.txt"]
    (src / "nested/new.txt").write_bytes(b"brand new\n")
    files["nested/new.txt"] = b"brand new\n"

    out = s3cmd("sync", "--delete-removed", "--multipart-chunk-size-mb=5", f"{src}/", f"{b}/tree/").stdout
    assert uploads(out) == {"one.txt", "same-size.txt", "nested/new.txt"}, out
    assert f"delete: '{b}/tree/nested/deep/gone.txt'" in out, out
    objects, _ = s3cmd.ls("--recursive", b)
    assert objects == {f"{b}/tree/{k}": len(v) for k, v in files.items()}

    # Sync down into an empty directory: byte-exact tree.
    down = tmp_path / "down"
    down.mkdir()
    s3cmd("sync", f"{b}/tree/", f"{down}/")
    got = {str(p.relative_to(down)): p.read_bytes() for p in down.rglob("*") if p.is_file()}
    assert got.keys() == files.keys()
    for rel, data in files.items():
        assert got[rel] == data, rel

    # Bucket-to-bucket-prefix sync (server-side copies).
    out = s3cmd("sync", f"{b}/tree/", f"{b}/mirror/").stdout
    assert out.count("remote copy:") == len(files), out
    mirror = {
        k[len("mirror/"):]: v
        for k, v in ((o["Key"], o["Size"]) for o in s3(server).list_objects_v2(Bucket=bucket_name, Prefix="mirror/")["Contents"])
    }
    assert mirror == {k: len(v) for k, v in files.items()}

    s3cmd("del", "--recursive", "--force", b)
    s3cmd("rb", b)


def test_bucket_info_versioning_and_signurl(s3cmd, server, s3, bucket_name, tmp_path):
    b = f"s3://{bucket_name}"
    s3cmd("mb", b)
    info = s3cmd.info(b)
    assert info["Location"] == REGION
    assert info["Versioning"] == "none"

    assert "Versioning status updated" in s3cmd("setversioning", b, "enable").stdout
    assert s3cmd.info(b)["Versioning"] == "Enabled"
    assert s3(server).get_bucket_versioning(Bucket=bucket_name)["Status"] == "Enabled"

    (tmp_path / "v.txt").write_bytes(b"v1")
    s3cmd("put", tmp_path / "v.txt", f"{b}/v.txt")
    (tmp_path / "v.txt").write_bytes(b"v2!")
    s3cmd("put", tmp_path / "v.txt", f"{b}/v.txt")
    versions = s3(server).list_object_versions(Bucket=bucket_name)["Versions"]
    assert sorted(v["Size"] for v in versions) == [2, 3]
    s3cmd("del", f"{b}/v.txt")  # a delete marker on a versioned bucket
    assert s3cmd.ls(b)[0] == {}
    res = s3(server).list_object_versions(Bucket=bucket_name)
    assert len(res["DeleteMarkers"]) == 1 and len(res["Versions"]) == 2

    assert "Versioning status updated" in s3cmd("setversioning", b, "disable").stdout
    assert s3cmd.info(b)["Versioning"] == "Suspended"

    # signurl produces a SigV2 query-string URL (AWSAccessKeyId/Expires/Signature; s3cmd has
    # no SigV4 presigning). The server verifies it (s3s implements SigV2 too).
    (tmp_path / "pub.txt").write_bytes(b"signed content")
    s3cmd("put", tmp_path / "pub.txt", f"{b}/pub.txt")
    url = s3cmd("signurl", f"{b}/pub.txt", f"+{600}").stdout.strip()
    assert "AWSAccessKeyId=" in url and "Signature=" in url, url
    with _OPENER.open(url, timeout=30) as resp:
        assert resp.read() == b"signed content"
    with pytest.raises(urllib.error.HTTPError) as exc:
        _OPENER.open(re.sub(r"Signature=[^&]+", "Signature=AAAA", url), timeout=30)
    assert exc.value.code == 403
    expired = s3cmd("signurl", f"{b}/pub.txt", str(int(time.time()) - 10)).stdout.strip()
    with pytest.raises(urllib.error.HTTPError) as exc:
        _OPENER.open(expired, timeout=30)
    assert exc.value.code == 403
