"""A bucket mounted as a file system with FUSE: `rclone mount` and s3fs (Debian packages
rclone, s3fs, fuse3). Files written through the mount are objects, objects are files, and
what one mount writes the other reads, byte for byte.

Skipped only where /dev/fuse does not exist (no FUSE in this kernel or container); the skip
says so.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT_PASSWORD, ROOT_USER, poll, random_bytes, s3_client

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="/dev/fuse is missing: no FUSE here"),
    pytest.mark.timeout(180),
]


def unmount(mountpoint: Path) -> None:
    subprocess.run(["fusermount3", "-u", str(mountpoint)], capture_output=True)
    poll(lambda: not os.path.ismount(mountpoint), 10, 0.2)


@pytest.fixture
def mounts(tmp_path):
    points: list[Path] = []
    procs: list[subprocess.Popen] = []

    def mountpoint(name: str) -> Path:
        p = tmp_path / name
        p.mkdir()
        points.append(p)
        return p

    yield mountpoint, procs
    for p in points:
        unmount(p)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


def rclone_mount(server, bucket: str, at: Path, procs, tmp_path: Path) -> None:
    rclone = shutil.which("rclone")
    assert rclone, "rclone is missing (scripts/test installs it)"
    # rclone refuses plain http while AWS_CA_BUNDLE is set.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(
        RCLONE_CONFIG=str(tmp_path / "rclone.conf"),
        RCLONE_CONFIG_T_TYPE="s3", RCLONE_CONFIG_T_PROVIDER="Other",
        RCLONE_CONFIG_T_ACCESS_KEY_ID=ROOT_USER, RCLONE_CONFIG_T_SECRET_ACCESS_KEY=ROOT_PASSWORD,
        RCLONE_CONFIG_T_ENDPOINT=server.url, RCLONE_CONFIG_T_FORCE_PATH_STYLE="true",
        RCLONE_CACHE_DIR=str(tmp_path / "rclone-cache"),
    )
    (tmp_path / "rclone.conf").write_text("")
    # Writes are uploaded when the file is closed, listings are at most 1 s old.
    procs.append(subprocess.Popen(
        [rclone, "mount", f"T:{bucket}", str(at), "--vfs-cache-mode", "writes",
         "--vfs-write-back", "0s", "--dir-cache-time", "1s"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    ))
    assert poll(lambda: os.path.ismount(at), 20, 0.2), procs[-1].stderr.read(4000) if procs[-1].poll() is not None else "rclone mount did not appear"


def s3fs_mount(server, bucket: str, at: Path, tmp_path: Path) -> None:
    s3fs = shutil.which("s3fs")
    assert s3fs, "s3fs is missing (scripts/test installs it)"
    passwd = tmp_path / "s3fs.passwd"
    passwd.write_text(f"{ROOT_USER}:{ROOT_PASSWORD}\n")
    passwd.chmod(0o600)
    out = subprocess.run(
        [s3fs, bucket, str(at), "-o", f"url={server.url}", "-o", "use_path_request_style",
         "-o", f"passwd_file={passwd}", "-o", "endpoint=us-east-1", "-o", "stat_cache_expire=1"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert poll(lambda: os.path.ismount(at), 20, 0.2), "s3fs mount did not appear"


def test_rclone_and_s3fs_mounts_read_and_write_the_bucket(server, mounts, tmp_path):
    mountpoint, procs = mounts
    s3 = s3_client(server)
    s3.create_bucket(Bucket="fuse-mounted")
    s3.put_object(Bucket="fuse-mounted", Key="docs/from-s3.txt", Body=b"put with boto3")
    big = random_bytes(6 * 1024 * 1024 + 123, "fuse")

    a = mountpoint("rclone")
    rclone_mount(server, "fuse-mounted", a, procs, tmp_path)
    assert (a / "docs" / "from-s3.txt").read_bytes() == b"put with boto3"
    (a / "written").mkdir()
    (a / "written" / "big.bin").write_bytes(big)
    (a / "small.txt").write_text("hello from rclone\n")

    def uploaded():
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="fuse-mounted").get("Contents", [])}
        return {"written/big.bin", "small.txt"} <= keys
    assert poll(uploaded, 30, 0.5)
    assert s3.get_object(Bucket="fuse-mounted", Key="written/big.bin")["Body"].read() == big

    b = mountpoint("s3fs")
    s3fs_mount(server, "fuse-mounted", b, tmp_path)
    assert sorted(os.listdir(b)) == ["docs", "small.txt", "written"]
    assert (b / "written" / "big.bin").read_bytes() == big
    (b / "from-s3fs.txt").write_text("hello from s3fs\n")
    assert s3.get_object(Bucket="fuse-mounted", Key="from-s3fs.txt")["Body"].read() == b"hello from s3fs\n"

    # The rclone mount sees the s3fs write once its listing cache (1 s) expires.
    assert poll(lambda: (a / "from-s3fs.txt").exists(), 10, 0.5)
    assert (a / "from-s3fs.txt").read_text() == "hello from s3fs\n"
    os.remove(b / "small.txt")
    time.sleep(0.5)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="fuse-mounted").get("Contents", [])}
    assert "small.txt" not in keys
