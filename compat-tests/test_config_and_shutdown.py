"""Operations: the ``--config`` file and graceful shutdown. (Split from test_observability.py,
whose helpers it shares.)

* **Config file** ``serve --config FILE`` (or TESSERA_CONFIG): TOML keys as the flags;
  precedence flags > environment > file > defaults; unknown keys and wrong types exit 1
  naming the key.
* **Graceful shutdown**: SIGTERM closes the listener at once, lets an upload in flight
  finish (200, object intact after restart) and exits 0; ``--shutdown-timeout-secs`` bounds
  the wait for a stalled upload, whose object then does not exist.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import aws_chunked
from conftest import ROOT_PASSWORD, ROOT_USER, _die_with_parent, free_port, poll, raw_request, s3_client, tessera_binary
from test_observability import KiB, MiB, connection_refused, fetch, put_slowly_thread, scrape


# ========================================================= 3. config file ===
class ConfigServer:
    """`tessera serve` started by hand (so the config file can supply the disks and the
    address): stdout and stderr go to separate files; stop() sends SIGTERM."""

    def __init__(self, base: Path, args: list[str], *, env: dict[str, str] | None = None) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.out_path = base / "stdout.log"
        self.err_path = base / "stderr.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_") and k != "RUST_LOG"}
        clean.update(env or {})
        self.cmd = [str(tessera_binary()), "serve", *args]
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=clean, cwd=base,
                preexec_fn=_die_with_parent,
            )

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"command: {' '.join(self.cmd)}\n--- stdout ---\n{self.stdout()[-3000:]}\n--- stderr ---\n{self.stderr()[-3000:]}"

    def wait_live(self, url: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"tessera exited with {self.proc.returncode} before serving\n{self.describe()}", pytrace=False)
            try:
                if fetch(url + "/.tessera/health/live", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"tessera not live on {url} within {timeout}s\n{self.describe()}", pytrace=False)
            time.sleep(0.1)

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"tessera did not stop within {timeout}s of SIGTERM\n{self.describe()}", pytrace=False)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def banner_value(stdout: str, field: str) -> str:
    """The value of a `  field:   value` banner line."""
    for line in stdout.splitlines():
        if line.startswith(f"  {field}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field!r} line in the banner:\n{stdout}")


def test_config_file_supplies_disks_region_credentials_token_and_json_logs(tmp_path):
    """Everything from the file (no DIR arguments, no TESSERA_* variables): disks by range,
    address, region (banner and GetBucketLocation), root credentials, metrics token, and
    JSON log lines (access records, shutdown)."""
    port = free_port()
    token = "cfg-token-93"
    cfg = tmp_path / "tessera.toml"
    cfg.write_text(
        f'address = "127.0.0.1:{port}"\n'
        f'disks = ["{tmp_path}/disk{{1...4}}"]\n'
        'region = "eu-cfg-1"\n'
        f'metrics_token = "{token}"\n'
        'log_format = "json"\n'
        'root_user = "cfguser"\n'
        'root_password = "cfg-password-123"\n'
        "disk_check_secs = 1\n"
        "shutdown_timeout_secs = 5\n"
        "gc_grace_secs = 1\n"
    )
    url = f"http://127.0.0.1:{port}"
    with ConfigServer(tmp_path / "run", ["--config", str(cfg)]) as srv:
        srv.wait_live(url)
        out = srv.stdout()
        assert banner_value(out, "region") == "eu-cfg-1", out
        assert banner_value(out, "endpoint") == url, out
        assert banner_value(out, "disks") == "4 (formatted now)", out
        assert "EC 2+2" in banner_value(out, "erasure"), out
        assert "\"cfguser\" from the config file" in banner_value(out, "credentials"), out
        for i in range(1, 5):
            assert (tmp_path / f"disk{i}" / ".tessera" / "format.json").is_file(), i

        assert fetch(url + "/metrics")[0] == 401
        assert fetch(url + "/metrics", headers={"Authorization": "Bearer nope"})[0] == 401
        m = scrape(url, token=token)
        assert m.value("tessera_erasure_parity_shards") == 2

        c = s3_client(url, region="eu-cfg-1", access_key="cfguser", secret_key="cfg-password-123")
        c.create_bucket(Bucket="cfg-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-cfg-1"})
        c.put_object(Bucket="cfg-bucket", Key="k", Body=b"configured")
        assert c.get_bucket_location(Bucket="cfg-bucket").get("LocationConstraint") == "eu-cfg-1"
        denied = raw_request(url, "GET", "/cfg-bucket/k")  # the suite's usual root credentials
        assert denied.status == 403, denied

        rc = srv.stop()
        assert rc == 0, srv.describe()
        records = []
        for line in srv.stderr().splitlines():
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    pytest.fail(f"log line is not JSON: {line!r}\n{srv.describe()}", pytrace=False)
        assert records, srv.describe()
        puts = [
            r for r in records
            if r.get("target") == "access" and r.get("fields", {}).get("operation") == "PutObject"
        ]
        assert len(puts) == 1 and puts[0]["fields"]["status"] == 200 and puts[0]["fields"]["bytes_in"] == 10, puts
        messages = [r.get("fields", {}).get("message", "") for r in records]
        assert any(msg.startswith("shutting down") for msg in messages), messages[-10:]
        assert "requests in flight finished" in messages, messages[-10:]


def test_config_precedence_flags_over_environment_over_file(tmp_path):
    """region and metrics token: the file's value, overridden by TESSERA_REGION /
    TESSERA_METRICS_TOKEN, overridden by --region / --metrics-token; the address from the
    file loses to --address. The file comes from TESSERA_CONFIG in the last two runs."""
    file_port = free_port()
    cfg = tmp_path / "tessera.toml"
    cfg.write_text(
        f'address = "127.0.0.1:{file_port}"\n'
        f'disks = ["{tmp_path}/d1", "{tmp_path}/d2"]\n'
        'region = "file-region-1"\n'
        'metrics_token = "file-token"\n'
    )
    flag_port = free_port()
    runs = [
        ("file", ["--config", str(cfg)], {}, "file-region-1", "file-token", [], file_port),
        (
            "env",
            [],
            {"TESSERA_CONFIG": str(cfg), "TESSERA_REGION": "env-region-1", "TESSERA_METRICS_TOKEN": "env-token"},
            "env-region-1",
            "env-token",
            ["file-token"],
            file_port,
        ),
        (
            "flag",
            ["--region", "flag-region-1", "--metrics-token", "flag-token", "--address", f"127.0.0.1:{flag_port}"],
            {"TESSERA_CONFIG": str(cfg), "TESSERA_REGION": "env-region-1", "TESSERA_METRICS_TOKEN": "env-token"},
            "flag-region-1",
            "flag-token",
            ["file-token", "env-token"],
            flag_port,
        ),
    ]
    creds = {"TESSERA_ROOT_USER": ROOT_USER, "TESSERA_ROOT_PASSWORD": ROOT_PASSWORD}
    for name, args, env, region, token, losing_tokens, port in runs:
        url = f"http://127.0.0.1:{port}"
        with ConfigServer(tmp_path / f"run-{name}", args, env={**creds, **env}) as srv:
            srv.wait_live(url)
            out = srv.stdout()
            assert banner_value(out, "region") == region, (name, out)
            assert banner_value(out, "endpoint") == url, (name, out)
            assert scrape(url, token=token).value("tessera_erasure_data_shards") == 1, name
            for other in losing_tokens:
                status = fetch(url + "/metrics", headers={"Authorization": f"Bearer {other}"})[0]
                assert status == 401, (name, other, status)
            assert srv.stop() == 0, srv.describe()


@pytest.mark.parametrize(
    "text, named",
    [
        ('adress = "127.0.0.1:9000"\n', "unknown field `adress`"),
        ('parity = "two"\n', "parity"),
        ('log_format = "xml"\n', "log_format"),
    ],
    ids=["unknown-key", "wrong-type", "bad-enum"],
)
def test_config_file_errors_name_the_key(tmp_path, text, named):
    """A bad config file stops `serve` before it serves: exit 1, the key and the file named on
    stderr, no banner."""
    port = free_port()
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f'disks = ["{tmp_path}/d"]\n' + text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    proc = subprocess.run(
        [str(tessera_binary()), "serve", "--address", f"127.0.0.1:{port}", "--config", str(cfg)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20, env=env,
    )
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert named in proc.stderr and str(cfg) in proc.stderr, proc.stderr
    assert "endpoint:" not in proc.stdout, proc.stdout
    assert not (tmp_path / "d" / ".tessera").exists(), "the disk was formatted despite the bad config"


# ================================================== 4. graceful shutdown ===
def test_sigterm_lets_an_upload_in_flight_finish(make_server, s3, random_bytes, new_bucket_name):
    """SIGTERM in the middle of a slow 24 MiB PUT: the port refuses new connections at once
    while the upload goes on; the upload gets 200; the process exits 0 by itself right after;
    after a restart the object is there, byte-exact."""
    srv = make_server(1)
    c = s3(srv)
    bucket = new_bucket_name("drain")
    c.create_bucket(Bucket=bucket)
    data = random_bytes(24 * MiB, "drain")
    thread, up = put_slowly_thread(srv, bucket, "big", data, piece=MiB, pause=0.06)

    if not poll(lambda: up["sent"] >= 4 * MiB or up["finished"], timeout=10, interval=0.02):
        pytest.fail(f"upload did not start: {up}")
    in_flight = poll(lambda: scrape(srv).value("tessera_s3_requests_in_flight") == 1, timeout=3, interval=0.05)
    assert in_flight, "the upload is not counted in tessera_s3_requests_in_flight"
    assert up["finished"] is None, f"upload ended before SIGTERM: {up}"

    srv.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    refused = poll(lambda: connection_refused(srv.port), timeout=3, interval=0.02)
    refused_at, sent_then = time.monotonic(), up["sent"]
    assert refused, "new connections still accepted 3 s after SIGTERM"
    assert sent_then < len(data) and up["done_sending"] is None, (
        f"the upload had finished sending before new connections were refused ({refused_at - signalled:.2f}s after SIGTERM)"
    )
    assert srv.proc.poll() is None, "the server exited with an upload in flight"

    thread.join(30)
    assert not thread.is_alive(), f"upload hung: {up}"
    assert up["error"] is None and up["status"] == 200, f"upload after SIGTERM: {up['status']} {up['error']} {up['body'][:300]!r}"
    try:
        rc = srv.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server still running 5 s after the last request finished\n{srv.log_tail()}")
    assert rc == 0, f"exit code {rc}\n{srv.log_tail()}"
    log = srv.log_path.read_text(errors="replace")
    assert "shutting down" in log and "requests in flight finished" in log, srv.log_tail()
    assert "stopping anyway" not in log, srv.log_tail()

    srv.start()
    got = c.get_object(Bucket=bucket, Key="big")
    body = got["Body"].read()
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest() and len(body) == len(data)
    assert got["ETag"].strip('"') == hashlib.md5(data).hexdigest()


def test_shutdown_timeout_bounds_the_wait_for_a_stalled_upload(make_server, s3, random_bytes, new_bucket_name):
    """--shutdown-timeout-secs 1 and an upload that stalls half way: SIGTERM makes the process
    exit 0 after about 1 s (not before, not much later); the client gets no answer, and after
    a restart the object does not exist."""
    srv = make_server(1, extra_args=["--shutdown-timeout-secs", "1"])
    c = s3(srv)
    bucket = new_bucket_name("stall")
    c.create_bucket(Bucket=bucket)
    data = random_bytes(4 * MiB, "stall")
    thread, up = put_slowly_thread(srv, bucket, "stalled", data, piece=256 * KiB, pause=0.0, stop_after=2 * MiB)

    if not poll(lambda: up["done_sending"] or up["finished"], timeout=10, interval=0.02):
        pytest.fail(f"upload did not send its first half: {up}")
    assert poll(lambda: scrape(srv).value("tessera_s3_requests_in_flight") == 1, timeout=5, interval=0.05), (
        "the stalled upload is not in flight"
    )
    signalled = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        rc = srv.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server still running 10 s after SIGTERM with --shutdown-timeout-secs 1\n{srv.log_tail()}")
    took = time.monotonic() - signalled
    assert rc == 0, f"exit code {rc}\n{srv.log_tail()}"
    assert 0.9 <= took <= 4, f"exited {took:.2f}s after SIGTERM (timeout 1 s)"
    log = srv.log_path.read_text(errors="replace")
    assert "stopping anyway" in log, srv.log_tail()

    thread.join(10)
    assert not thread.is_alive(), f"stalled client still waiting after the server exited: {up}"
    assert up["status"] is None and up["error"], f"the stalled upload got an answer: {up['status']} {up['body'][:300]!r}"

    srv.start()
    head = raw_request(srv, "HEAD", f"/{bucket}/stalled")
    assert head.status == 404, head
    assert c.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_sigterm_lets_a_download_in_flight_finish(make_server, s3, random_bytes, new_bucket_name):
    """SIGTERM while a client reads a 24 MiB GET slowly: new connections are refused, the
    download still completes byte-exact, then the process exits 0."""
    srv = make_server(1)
    c = s3(srv)
    bucket = new_bucket_name("drain-get")
    c.create_bucket(Bucket=bucket)
    data = random_bytes(24 * MiB, "drain-get")
    c.put_object(Bucket=bucket, Key="big", Body=data)

    signed = aws_chunked.sign_headers(
        "GET", f"/{bucket}/big", host=f"127.0.0.1:{srv.port}", access_key=ROOT_USER, secret_key=ROOT_PASSWORD
    )
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
    try:
        conn.putrequest("GET", f"/{bucket}/big", skip_host=True, skip_accept_encoding=True)
        for k, v in signed.headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        got = bytearray(resp.read(MiB))
        # A download whose body is still streaming counts as in flight.
        assert scrape(srv).value("tessera_s3_requests_in_flight") == 1
        srv.proc.send_signal(signal.SIGTERM)
        assert poll(lambda: connection_refused(srv.port), timeout=3, interval=0.02), "still accepting after SIGTERM"
        assert srv.proc.poll() is None, "the server exited with a download in flight"
        while True:
            piece = resp.read(MiB)
            if not piece:
                break
            got += piece
            time.sleep(0.05)
    finally:
        conn.close()
    assert len(got) == len(data) and bytes(got) == data, f"download after SIGTERM: {len(got)} of {len(data)} bytes"
    try:
        rc = srv.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server still running 5 s after the download finished\n{srv.log_tail()}")
    assert rc == 0, f"exit code {rc}\n{srv.log_tail()}"
    assert "requests in flight finished" in srv.log_path.read_text(errors="replace"), srv.log_tail()
