"""The deployment files: systemd units checked by `systemd-analyze verify`, and the
Dockerfile's final image emulated without a Docker engine (these machines have none): its
ENTRYPOINT and CMD run from a root holding only what the image copies, as its USER, and its
HEALTHCHECK command must pass.

Root is needed for the chroot; CI runs as root. Without root that test says so and skips.
"""

import json
import os
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT, ROOT_PASSWORD, ROOT_USER, free_port, poll, s3_client, tessera_binary

DEPLOY = REPO_ROOT / "deploy"


@pytest.mark.parametrize("unit", ["tessera.service", "tessera-node.service"])
def test_systemd_units_verify_cleanly(unit, tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian package systemd)"
    text = (DEPLOY / "systemd" / unit).read_text()
    assert "ExecStart=/usr/local/bin/tessera " in text
    # verify insists that ExecStart exists: point it at the binary under test.
    (tmp_path / unit).write_text(text.replace("/usr/local/bin/tessera", str(tessera_binary())))
    out = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # Unknown or misspelt directives are only warnings: there must be none.
    assert unit not in out.stderr, out.stderr
    for hardening in ["NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=", "User=tessera"]:
        assert hardening in text, hardening


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile's last stage, continuation lines joined."""
    lines, current = [], ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            lines.append(current)
            current = ""
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), rest.strip()))
    assert len(stages) >= 2, "a multi-stage build: the toolchain stays out of the image"
    return stages[-1]


def test_the_image_runs_as_its_dockerfile_says(tmp_path):
    stage = final_stage((REPO_ROOT / "Dockerfile").read_text())
    get = lambda name: [args for word, args in stage if word == name]  # noqa: E731
    assert get("FROM") == ["scratch"]
    assert get("VOLUME") == ["/data"]
    (user,) = get("USER")
    uid, gid = (int(x) for x in user.split(":"))
    assert uid != 0 and gid != 0
    entrypoint = json.loads(get("ENTRYPOINT")[0])
    cmd = json.loads(get("CMD")[0])
    (healthcheck,) = get("HEALTHCHECK")
    probe = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    if os.geteuid() != 0:
        pytest.skip("emulating the image needs root (chroot)")

    # The image's filesystem: what its COPY lines put there, nothing else.
    root = tmp_path / "image"
    (root / "data").mkdir(parents=True)
    shutil.copy2(tessera_binary(), root / "tessera")
    os.chown(root / "data", uid, gid)
    port = free_port()
    env = {"TESSERA_ROOT_USER": ROOT_USER, "TESSERA_ROOT_PASSWORD": ROOT_PASSWORD,
           "TESSERA_ADDRESS": f"127.0.0.1:{port}", "TESSERA_ENDPOINT": f"http://127.0.0.1:{port}"}
    chroot = [shutil.which("chroot") or "/usr/sbin/chroot", f"--userspec={uid}:{gid}", str(root)]
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(chroot + entrypoint + cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
    try:
        healthy = lambda: subprocess.run(chroot + probe, env=env, capture_output=True).returncode == 0  # noqa: E731
        assert poll(healthy, 20, 0.3), log.read_text()
        s3 = s3_client(f"http://127.0.0.1:{port}")
        s3.create_bucket(Bucket="image")
        s3.put_object(Bucket="image", Key="k", Body=b"from the image")
        assert s3.get_object(Bucket="image", Key="k")["Body"].read() == b"from the image"
        # The data is the volume's, written by the image's user.
        assert (root / "data" / ".tessera" / "format.json").stat().st_uid == uid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()
    # With the server gone the health check fails, as Docker must see it.
    assert subprocess.run(chroot + probe, env=env, capture_output=True).returncode != 0
