"""Start-up behaviour of `tessera serve`: the banner, development credentials, disk-range
expansion, and refusing disk sets that do not belong together."""

from __future__ import annotations

import os
import subprocess
import time

from conftest import ROOT_PASSWORD, ROOT_USER, free_port, tessera_binary


def run_serve(args, env_extra=None, timeout=20):
    """Runs `tessera serve` until it exits (refused) or prints its banner (then stops it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_ROOT")}
    env.update(env_extra or {})
    proc = subprocess.Popen(
        [str(tessera_binary()), "serve", "--address", f"127.0.0.1:{free_port()}", *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("  credentials:"):
                break
    finally:
        if proc.poll() is None:
            time.sleep(0.3)  # let the warnings after the credentials line be written
            proc.terminate()
        # Read the rest through the same iterator (its read-ahead buffer holds some of it).
        lines.extend(proc.stdout)
        proc.wait(timeout=timeout)
    return proc.returncode, "".join(lines)


CREDS = {"TESSERA_ROOT_USER": ROOT_USER, "TESSERA_ROOT_PASSWORD": ROOT_PASSWORD}


def test_ellipsis_expands_and_banner_shows_layout(tmp_path):
    code, out = run_serve([f"{tmp_path}/disk{{1...4}}"], CREDS)
    assert "disks:       4 (formatted now)" in out, out
    for i in range(1, 5):
        assert (tmp_path / f"disk{i}" / ".tessera" / "format.json").is_file()
    assert "EC 2+2" in out, out
    assert "from TESSERA_ROOT_USER" in out and ROOT_PASSWORD not in out, out


def test_development_credentials_are_announced_loudly(tmp_path):
    code, out = run_serve([tmp_path / "d"])
    assert "DEVELOPMENT DEFAULTS" in out and "tesseraadmin" in out, out
    assert "WARNING" in out, out


def test_half_set_credentials_are_refused(tmp_path):
    code, out = run_serve([tmp_path / "d"], {"TESSERA_ROOT_USER": "admin"})
    assert code == 1 and "TESSERA_ROOT_PASSWORD" in out, out


def test_reordered_disks_are_refused_with_an_explanation(tmp_path):
    disks = [tmp_path / f"d{i}" for i in range(2)]
    code, _ = run_serve(disks, CREDS)
    code, out = run_serve(list(reversed(disks)), CREDS)
    assert code == 1, out
    assert "original order" in out, out


def test_foreign_disk_is_refused(tmp_path):
    a = [tmp_path / f"a{i}" for i in range(2)]
    b = [tmp_path / f"b{i}" for i in range(2)]
    run_serve(a, CREDS)
    run_serve(b, CREDS)
    code, out = run_serve([a[0], b[1]], CREDS)
    assert code == 1, out
    assert "different tessera deployments" in out, out


def test_added_disk_is_refused(tmp_path):
    disks = [tmp_path / f"d{i}" for i in range(2)]
    run_serve(disks, CREDS)
    code, out = run_serve(disks + [tmp_path / "d2"], CREDS)
    assert code == 1, out
    assert "formatted with 2 disks but 3 were given" in out, out
    assert not (tmp_path / "d2" / ".tessera").exists(), "a refused start must not format anything"


def test_changed_parity_is_refused(tmp_path):
    disks = [tmp_path / f"d{i}" for i in range(4)]
    run_serve(disks, CREDS)
    code, out = run_serve(["--parity", "1", *disks], CREDS)
    assert code == 1 and "cannot change" in out, out
