"""Shared fixtures for the tessera black-box S3 compatibility suite.

The suite starts real ``tessera serve`` processes on temporary directories and
talks to them over HTTP with boto3, aws-cli and hand-signed requests.

Run (after ``cargo build --release``)::

    pip install -r compat-tests/requirements.txt
    python3 -m pytest compat-tests            # add -x to stop at the first failure

The binary is $TESSERA_BIN (scripts/test sets it to the static build), else the static
build $CARGO_TARGET_DIR/<machine>-unknown-linux-gnu/release/tessera, else
$CARGO_TARGET_DIR/release/tessera; $CARGO_TARGET_DIR defaults to ~/.cache/tessera-target.
A missing binary fails every test (it is never skipped, so CI cannot pass vacuously).

Fixture API (all documented on the fixtures below):

* ``server``          module-scoped running server on 1 data dir.
* ``server4``         module-scoped running server on 4 data dirs (k=2, m=2).
* ``server_factory``  session-scoped ``(base, ndisks=1, *, dirs=None, parity=None,
                      extra_args=(), start=True) -> TesseraServer``; servers are
                      stopped at session end at the latest.
* ``make_server``     function-scoped ``(ndisks=1, *, dirs=None, parity=None,
                      extra_args=(), start=True) -> TesseraServer`` under
                      ``tmp_path``; stopped at the end of the test.
* ``s3``              ``(server_or_url, *, access_key=..., secret_key=...,
                      **config_kwargs) -> boto3 S3 client``.
* ``awscli``          ``(server, *args, check=True, timeout=300, cwd=None,
                      env=None) -> subprocess.CompletedProcess[str]``.
* ``raw_s3_request``  ``(server, method, path, *, query=None, headers=None,
                      body=b"", access_key=..., secret_key=..., sign=True,
                      send_body=None) -> RawResponse(status, headers, body)`` (SigV4-signed
                      request without any client-side validation).
* ``random_bytes``    ``(n, seed) -> bytes`` deterministic pseudo-random data.
* ``new_bucket_name`` ``(prefix="t") -> str`` unique valid bucket name.
* ``bucket_name``     a unique bucket name for the current test (not created).
* ``server_data_dirs`` ``() -> list[Path]`` every data dir of every server so far.
* ``test_ca``         session-scoped ``TestCA``: ``server_factory(..., ca=test_ca)`` serves HTTPS
                      with a certificate it signs for 127.0.0.1 and localhost; ``s3``,
                      ``awscli`` and ``raw_s3_request`` trust it for such servers;
                      ``test_ca.issue(dir, dns=..., ips=...)`` writes further certificates.

``TesseraServer`` (also usable directly): ``start(timeout=30, new_port=False)``,
``stop()`` (SIGTERM, SIGKILL after 5 s), ``kill()``, ``restart(new_port=False)``
(same port by default, so existing clients keep working), ``url``, ``port``,
``dirs``, ``base``, ``log_path``, ``log_tail(lines)``, ``running``, ``client()``.
Server stdout+stderr go to ``<base>/tessera-server.log``; its tail is attached
to the report of every failing test that used the server.
"""

from __future__ import annotations

import ctypes
import http.client
import importlib
import importlib.util
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import pytest

from tls_support import TestCA, ssl_context

ROOT_USER = "testadmin"
ROOT_PASSWORD = "testadmin-secret-key"
REGION = "us-east-1"

KiB = 1024
MiB = 1024 * 1024
INLINE_LIMIT = 128 * KiB  # objects up to this size live in the metadata store
CHUNK_SIZE = 1 * MiB

READY_TIMEOUT = float(os.environ.get("TESSERA_READY_TIMEOUT", "30"))
# Unauthenticated liveness endpoint. `.tessera` can never be a bucket name, so the
# path cannot shadow an S3 request.
HEALTH_PATHS = ["/.tessera/health/live"]
STOP_TIMEOUT = 5.0
GC_GRACE_SECS = 1

REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------
# Environment isolation: make sure nothing from the developer's AWS setup or
# proxy configuration leaks into boto3 (in-process) or aws-cli (subprocess).
# --------------------------------------------------------------------------
for _var in list(os.environ):
    if _var.startswith("AWS_"):
        del os.environ[_var]
os.environ["AWS_CONFIG_FILE"] = "/nonexistent/tessera-compat/aws-config"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/tessera-compat/aws-credentials"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
# botocore sends "Expect: 100-continue" even for empty bodies; the server answers such a PUT
# at once without "100 Continue" (as S3 does), and botocore before 1.43.77 (boto/botocore#3755)
# then reuses the stale status line on the next request over that pooled connection and waits
# out its 120 s read timeout. In-process boto3 clients read this at request time (aws-cli gets
# it in its environment below).
os.environ["BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE"] = "true"
for _var in ("NO_PROXY", "no_proxy"):
    _cur = os.environ.get(_var, "")
    os.environ[_var] = ",".join(x for x in (_cur, "127.0.0.1", "localhost") if x)


def tessera_binary() -> Path:
    """Path of the server binary: $TESSERA_BIN, else the static build (scripts/lib.sh builds
    with an explicit --target), else a plain `cargo build --release`."""
    explicit = os.environ.get("TESSERA_BIN")
    if explicit:
        return Path(explicit).expanduser().resolve()
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache" / "tessera-target")
    target_path = Path(target).expanduser()
    if not target_path.is_absolute():
        target_path = REPO_ROOT / target_path
    static = target_path / f"{platform.machine()}-unknown-linux-gnu" / "release" / "tessera"
    if static.is_file():
        return static.resolve()
    return (target_path / "release" / "tessera").resolve()


def poll(predicate, timeout: float, interval: float = 0.1):
    """Calls predicate() until it returns something truthy or the deadline passes; returns
    the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def admin_info(url: str) -> dict:
    """``tessera admin --json info`` against the server at ``url``, as root."""
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(TESSERA_ROOT_USER=ROOT_USER, TESSERA_ROOT_PASSWORD=ROOT_PASSWORD)
    out = subprocess.run(
        [str(tessera_binary()), "admin", "--endpoint", url, "--json", "info"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, env=env,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL the server if the pytest process dies (Linux only)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:  # pragma: no cover - best effort only
        pass


def _tail(path: Path | None, lines: int = 60) -> str:
    if path is None or not path.exists():
        return "<no server log>"
    with open(path, "rb") as fh:
        data = deque(fh, maxlen=lines)
    return b"".join(data).decode("utf-8", errors="replace")


# Registry used to attach server logs to failing test reports and to exclude
# server data dirs from "stray file" checks.
_ALL_SERVERS: list["TesseraServer"] = []
_CURRENT_TEST: list[str] = [""]


class TesseraServer:
    """One ``tessera serve`` process on a fixed list of data directories."""

    def __init__(
        self,
        base: Path,
        ndisks: int = 1,
        *,
        dirs: Sequence[Path] | None = None,
        parity: int | None = None,
        extra_args: Iterable[str] = (),
        binary: Path | None = None,
        ca: TestCA | None = None,
    ) -> None:
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        if dirs is None:
            dirs = [self.base / f"disk{i}" for i in range(ndisks)]
        self.dirs: list[Path] = [Path(d) for d in dirs]
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
        self.parity = parity
        self.extra_args = list(extra_args)
        self.binary = Path(binary) if binary else tessera_binary()
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path = self.base / "tessera-server.log"
        self.starts = 0
        self.returncode: int | None = None
        self.tests: set[str] = set()
        self.health_path: str | None = None  # the liveness path that answered
        # Environment for the next starts, over the defaults (the root credentials included).
        self.env_overrides: dict[str, str] = {}
        # With a CA: served over HTTPS with a certificate it signs for 127.0.0.1/localhost.
        self.ca_bundle: Path | None = None
        self.certs_dir: Path | None = None
        if ca is not None:
            self.certs_dir = ca.issue(self.base / "certs")
            self.ca_bundle = ca.ca_pem
        _ALL_SERVERS.append(self)

    # -- properties ---------------------------------------------------------
    @property
    def scheme(self) -> str:
        return "https" if self.certs_dir else "http"

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("server was never started")
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        cmd = [
            str(self.binary),
            "serve",
            "--address",
            f"127.0.0.1:{self.port}",
            "--gc-grace-secs",
            str(GC_GRACE_SECS),
        ]
        if self.parity is not None:
            cmd += ["--parity", str(self.parity)]
        if self.certs_dir is not None:
            cmd += ["--certs-dir", str(self.certs_dir)]
        cmd += self.extra_args
        cmd += [str(d) for d in self.dirs]
        return cmd

    # -- lifecycle ----------------------------------------------------------
    def start(self, *, timeout: float = READY_TIMEOUT, new_port: bool = False) -> "TesseraServer":
        if self.running:
            raise RuntimeError("server already running")
        if not self.binary.is_file() or not os.access(self.binary, os.X_OK):
            pytest.fail(
                f"tessera binary not found or not executable at {self.binary}; "
                "build it with `cargo build --release` or set TESSERA_BIN",
                pytrace=False,
            )
        if self.port is None or new_port:
            self.port = free_port()
        self.starts += 1
        self.tests.add(_CURRENT_TEST[0])
        env = dict(os.environ)
        env["TESSERA_ROOT_USER"] = ROOT_USER
        env["TESSERA_ROOT_PASSWORD"] = ROOT_PASSWORD
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.env_overrides)
        cmd = self.command()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.base,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ssl_context(self.ca_bundle))
        )
        deadline = time.monotonic() + timeout
        last_error = "no attempt"
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                self.proc = None
                pytest.fail(
                    f"tessera exited with code {rc} before becoming ready\n"
                    f"command: {' '.join(self.command())}\n"
                    f"--- server log tail ({self.log_path}) ---\n{self.log_tail()}",
                    pytrace=False,
                )
            for path in HEALTH_PATHS:
                try:
                    with opener.open(self.url + path, timeout=2) as resp:
                        if resp.status == 200:
                            self.health_path = path
                            return
                        last_error = f"{path}: HTTP {resp.status}"
                except urllib.error.HTTPError as exc:
                    last_error = f"{path}: HTTP {exc.code}"
                except (urllib.error.URLError, OSError) as exc:
                    last_error = f"{path}: {exc!r}"
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"tessera did not answer 200 on {' or '.join(HEALTH_PATHS)} within {timeout:.0f}s "
                    f"(last: {last_error})\ncommand: {' '.join(self.command())}\n"
                    f"--- server log tail ({self.log_path}) ---\n{self.log_tail()}",
                    pytrace=False,
                )
            time.sleep(0.1)

    def stop(self) -> int | None:
        """Terminate (SIGTERM, then SIGKILL after 5 s). Returns the exit code."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode

    def kill(self) -> None:
        """SIGKILL without a graceful shutdown (crash simulation)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.returncode = self.proc.returncode
            self.proc = None

    def restart(self, *, timeout: float = READY_TIMEOUT, new_port: bool = False) -> "TesseraServer":
        self.stop()
        return self.start(timeout=timeout, new_port=new_port)

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log_path, lines)

    def client(self, **kwargs):
        return s3_client(self, **kwargs)

    def __enter__(self) -> "TesseraServer":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<TesseraServer {state} port={self.port} dirs={len(self.dirs)} base={self.base}>"


def all_server_dirs() -> list[Path]:
    """Every data dir of every server created in this session (for stray-file checks)."""
    return [d for s in _ALL_SERVERS for d in s.dirs]


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------
def _url_of(server_or_url) -> str:
    return server_or_url if isinstance(server_or_url, str) else server_or_url.url


def s3_client(
    server_or_url,
    *,
    access_key: str = ROOT_USER,
    secret_key: str = ROOT_PASSWORD,
    region: str = REGION,
    **config_kwargs,
):
    """boto3 S3 client: path style, SigV4, signing for `region` (us-east-1 unless given), a
    single attempt (no retries)."""
    import boto3
    from botocore.config import Config

    params = dict(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
        max_pool_connections=16,
    )
    params.update(config_kwargs)
    ca = getattr(server_or_url, "ca_bundle", None)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=_url_of(server_or_url),
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(**params),
        **({"verify": str(ca)} if ca else {}),
    )


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def error_code(self) -> str | None:
        m = re.search(rb"<Code>([^<]*)</Code>", self.body)
        return m.group(1).decode() if m else None


def raw_request(
    server_or_url,
    method: str,
    path: str,
    *,
    query: Sequence[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    access_key: str = ROOT_USER,
    secret_key: str = ROOT_PASSWORD,
    sign: bool = True,
    send_body: bytes | None = None,
    timeout: float = 60,
) -> RawResponse:
    """Send one request with no client-side validation.

    ``path`` is the *unencoded* path (e.g. ``"/bucket/some key"``); it is
    percent-encoded like botocore does for S3 (everything except ``/~`` and
    unreserved characters). The request is SigV4-signed unless sign=False.
    ``send_body`` (if given) is sent instead of ``body`` after signing ``body``.
    """
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    base = _url_of(server_or_url)
    enc_path = urllib.parse.quote(path, safe="/~")
    qs = ""
    if query:
        qs = "&".join(
            f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in query
        )
    url = base + enc_path + (f"?{qs}" if qs else "")
    hdrs = dict(headers or {})
    if sign:
        req = AWSRequest(method=method, url=url, data=body, headers=hdrs)
        S3SigV4Auth(Credentials(access_key, secret_key), "s3", REGION).add_auth(req)
        hdrs = {k: v for k, v in req.headers.items()}
    parsed = urllib.parse.urlsplit(base)
    if parsed.scheme == "https":
        ctx = ssl_context(getattr(server_or_url, "ca_bundle", None))
        conn = http.client.HTTPSConnection(parsed.hostname, parsed.port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        payload = body if send_body is None else send_body
        conn.request(method, enc_path + (f"?{qs}" if qs else ""), body=payload if payload else None, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


AWS_CLI_CONFIG = """[default]
s3 =
    signature_version = s3v4
    addressing_style = path
"""


def _aws_base_command() -> list[str]:
    if importlib.util.find_spec("awscli") is not None:
        return [sys.executable, "-m", "awscli"]
    exe = shutil.which("aws")
    if exe is None:
        pytest.fail("aws-cli not found: pip install -r compat-tests/requirements.txt", pytrace=False)
    return [exe]


class AwsCli:
    """Runs ``aws --endpoint-url URL ...`` against a TesseraServer."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "aws-config"
        self.config_path.write_text(AWS_CLI_CONFIG)
        self.base_cmd = _aws_base_command()

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=ROOT_USER,
            AWS_SECRET_ACCESS_KEY=ROOT_PASSWORD,
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=str(self.config_path),
            AWS_SHARED_CREDENTIALS_FILE=str(self.config_path.parent / "nonexistent-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            PYTHONIOENCODING="utf-8",
            PYTHONUTF8="1",
            LC_ALL="C.UTF-8",
            LANG="C.UTF-8",
            PYTHONWARNINGS="ignore",
            # botocore sends "Expect: 100-continue" even for empty file bodies; like S3,
            # the server then answers at once without "100 Continue", and botocore
            # before 1.43.77 (boto/botocore#3755; aws-cli 1.46.x still vendors 1.43.62)
            # reuses that stale status line for the next request on the same pooled
            # connection: a 60 s read timeout and a silent retry. Avoid the trigger.
            BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE="true",
            # No silent retries: a failed request must fail the command (and the test).
            AWS_MAX_ATTEMPTS="1",
            AWS_RETRY_MODE="standard",
        )
        if extra:
            env.update(extra)
        return env

    def __call__(
        self,
        server,
        *args: str,
        check: bool = True,
        timeout: float = 300,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        cmd = [*self.base_cmd, "--endpoint-url", _url_of(server), *[str(a) for a in args]]
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=timeout,
                cwd=cwd,
                env=self.env({**({"AWS_CA_BUNDLE": str(server.ca_bundle)} if getattr(server, "ca_bundle", None) else {}),
                              **(env or {})}),
            )
        except subprocess.TimeoutExpired as exc:
            log = server.log_tail() if isinstance(server, TesseraServer) else ""
            pytest.fail(f"aws-cli timed out after {timeout}s: {' '.join(cmd)}\n{exc.stderr}\n{log}", pytrace=False)
        if check and proc.returncode != 0:
            log = server.log_tail() if isinstance(server, TesseraServer) else ""
            pytest.fail(
                f"aws-cli failed (exit {proc.returncode}): {' '.join(args)}\n"
                f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}\n"
                f"--- server log tail ---\n{log}",
                pytrace=False,
            )
        return proc


def random_bytes(n: int, seed: int | str = 0) -> bytes:
    """Deterministic pseudo-random bytes (same n and seed -> same bytes)."""
    return random.Random(seed).randbytes(n)


def new_bucket_name(prefix: str = "t") -> str:
    prefix = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-") or "t"
    return f"{prefix[:40]}-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def server_factory(tmp_path_factory):
    """Session-scoped factory: server_factory(base, ndisks=1, *, dirs=None, parity=None,
    extra_args=(), start=True) -> TesseraServer. Stopped at session end at the latest."""
    created: list[TesseraServer] = []

    def factory(base: Path | None = None, ndisks: int = 1, *, dirs=None, parity=None, extra_args=(), start=True,
                ca: TestCA | None = None):
        if base is None:
            base = tmp_path_factory.mktemp("server")
        srv = TesseraServer(base, ndisks, dirs=dirs, parity=parity, extra_args=extra_args, ca=ca)
        created.append(srv)
        if start:
            srv.start()
        return srv

    yield factory
    for srv in created:
        srv.stop()


@pytest.fixture
def make_server(tmp_path, server_factory):
    """Function-scoped factory: make_server(ndisks=1, *, dirs=None, parity=None, extra_args=(),
    start=True) -> TesseraServer under tmp_path; stopped when the test ends."""
    created: list[TesseraServer] = []

    def factory(ndisks: int = 1, *, dirs=None, parity=None, extra_args=(), start=True):
        base = tmp_path / f"server{len(created)}"
        srv = server_factory(base, ndisks, dirs=dirs, parity=parity, extra_args=extra_args, start=start)
        created.append(srv)
        return srv

    yield factory
    for srv in created:
        srv.stop()


@pytest.fixture(scope="module")
def server(server_factory, tmp_path_factory):
    """A running tessera on one data dir (parity 0), shared by the test module."""
    srv = server_factory(tmp_path_factory.mktemp("server1"), 1)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def server4(server_factory, tmp_path_factory):
    """A running tessera on four data dirs (default parity 2: k=2, m=2), shared by the module."""
    srv = server_factory(tmp_path_factory.mktemp("server4"), 4)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory) -> TestCA:
    """A CA made for this session; servers given it (``server_factory(..., ca=test_ca)``)
    serve HTTPS with a certificate it signed, and the clients above trust it."""
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def s3():
    """Factory: s3(server_or_url, *, access_key=ROOT_USER, secret_key=ROOT_PASSWORD,
    **botocore_config_kwargs) -> boto3 S3 client."""
    return s3_client


@pytest.fixture(scope="session")
def awscli(tmp_path_factory):
    """awscli(server, *args, check=True, timeout=300, cwd=None, env=None) -> CompletedProcess."""
    return AwsCli(tmp_path_factory.mktemp("awscli"))


@pytest.fixture(scope="session")
def raw_s3_request():
    """raw_s3_request(server, method, path, *, query=None, headers=None, body=b"",
    access_key=..., secret_key=..., sign=True, send_body=None) -> RawResponse(status, headers, body)."""
    return raw_request


@pytest.fixture(scope="session", name="random_bytes")
def random_bytes_fixture():
    """random_bytes(n, seed) -> deterministic bytes."""
    return random_bytes


@pytest.fixture(scope="session", name="new_bucket_name")
def new_bucket_name_fixture():
    """new_bucket_name(prefix="t") -> a fresh, valid, unique bucket name."""
    return new_bucket_name


@pytest.fixture
def bucket_name(request) -> str:
    """A unique valid bucket name derived from the test name (the bucket is not created)."""
    return new_bucket_name(request.node.name)


@pytest.fixture(scope="session")
def server_data_dirs():
    """Callable returning every data dir of every server started so far."""
    return all_server_dirs


# --------------------------------------------------------------------------
# Reporting: attach the server log tail to failing tests.
# --------------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _CURRENT_TEST[0] = item.nodeid
    yield
    _CURRENT_TEST[0] = ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    seen = set()
    for srv in _ALL_SERVERS:
        if id(srv) in seen or srv.port is None:
            continue
        if srv.running or item.nodeid in srv.tests or srv in getattr(item, "funcargs", {}).values():
            seen.add(id(srv))
            rep.sections.append(
                (
                    f"tessera log tail: {srv.log_path} ({'running' if srv.running else f'exit {srv.returncode}'})",
                    srv.log_tail(80),
                )
            )


def pytest_report_header(config):
    lines = []
    binary = tessera_binary()
    if binary.is_file():
        mtime = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(binary.stat().st_mtime))
        lines.append(f"tessera binary: {binary} (built {mtime})")
    else:
        lines.append(f"tessera binary: {binary} (MISSING)")
    versions = []
    for mod in ("boto3", "botocore", "awscli"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except Exception:
            versions.append(f"{mod} missing")
    for mod, attr in (("minio", "__version__"), ("obstore", "__version__"), ("S3.PkgInfo", "version")):
        name = "s3cmd" if mod == "S3.PkgInfo" else mod
        try:
            versions.append(f"{name} {getattr(importlib.import_module(mod), attr)}")
        except Exception:
            versions.append(f"{name} missing")
    rclone = shutil.which("rclone")
    try:
        out = subprocess.run([rclone, "version"], capture_output=True, text=True, timeout=10).stdout if rclone else ""
        versions.append(out.split("\n", 1)[0].replace("rclone v", "rclone ") if out else "rclone missing")
    except Exception:
        versions.append("rclone missing")
    lines.append("clients: " + ", ".join(versions))
    return lines
