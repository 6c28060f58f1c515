"""The binary under test is the static one (scripts/lib.sh builds it): it names no program
interpreter and no shared library, and serves S3 from an empty root file system, as it would
in a bare Alpine or distroless container.

The chroot needs root; CI runs as root. Without root the second test says so and skips.
"""

import os
import shutil
import struct
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT_PASSWORD, ROOT_USER, free_port, poll, s3_client, tessera_binary

PT_DYNAMIC, PT_INTERP, DT_NULL, DT_NEEDED = 2, 3, 0, 1


def elf_dependencies(path: Path) -> tuple[bool, int]:
    """(has a program interpreter, number of DT_NEEDED entries) of a 64-bit little-endian ELF."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not a 64-bit LE ELF file"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    interp, needed = False, 0
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == PT_INTERP:
            interp = True
        elif p_type == PT_DYNAMIC:
            for off in range(p_offset, p_offset + p_filesz, 16):
                tag, _ = struct.unpack_from("<qQ", data, off)
                if tag == DT_NULL:
                    break
                needed += tag == DT_NEEDED
    return interp, needed


def test_binary_is_statically_linked():
    binary = tessera_binary()
    interp, needed = elf_dependencies(binary)
    assert not interp and needed == 0, (
        f"{binary} is dynamically linked (interpreter: {interp}, shared libraries: {needed}); "
        "build it with scripts/build-static (scripts/test does)"
    )


def test_serves_from_an_empty_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    root = tmp_path / "root"
    for d in ("data", "etc", "tmp"):
        (root / d).mkdir(parents=True)
    # No /lib, /usr, /dev or /proc: only the binary, and the hosts file every container has.
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    shutil.copy2(tessera_binary(), root / "tessera")
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    port = free_port()
    env = {"TESSERA_ROOT_USER": ROOT_USER, "TESSERA_ROOT_PASSWORD": ROOT_PASSWORD}
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [chroot, str(root), "/tessera", "serve", "--address", f"127.0.0.1:{port}", "/data"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    url = f"http://127.0.0.1:{port}"

    def live():
        try:
            with urllib.request.urlopen(f"{url}/health/live", timeout=1) as r:
                return r.status == 200
        except OSError:
            return proc.poll() is not None

    try:
        assert poll(live, 15) and proc.poll() is None, log.read_text()
        s3 = s3_client(url)
        s3.create_bucket(Bucket="static")
        body = os.urandom(3 << 20)  # chunked, not inline: shards are written and read back
        s3.put_object(Bucket="static", Key="k", Body=body)
        assert s3.get_object(Bucket="static", Key="k")["Body"].read() == body
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="static")["Contents"]] == ["k"]
        assert list((root / "data" / "shards").rglob("*.0")), "no shard file on the disk"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()
