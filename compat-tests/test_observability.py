"""Observability: Prometheus metrics and ``tessera admin locate`` / ``info`` (the ``--config``
file and graceful shutdown are in test_config_and_shutdown.py).

* **Metrics** (unsigned ``GET /metrics``, alias ``/.tessera/metrics``; text format 0.0.4):
  request counters by S3 operation and status, a latency histogram, payload bytes in and
  out, requests in flight; disk states and space; shard damage/heal counters; usage gauges
  (objects, logical/inline/chunk/erasure bytes, dedup ratio). Deltas are asserted around a
  known workload, the text is parsed here (``parse_metrics``) and linted with
  ``promtool check metrics`` (Debian package ``prometheus``; a missing promtool FAILS).
  ``--metrics-token`` / ``metrics_token`` / TESSERA_METRICS_TOKEN require
  ``Authorization: Bearer TOKEN``. A SigV4-signed request for a bucket named ``metrics``
  still reaches S3.
* **admin locate BUCKET/KEY** (JSON and table): chunk offsets, lengths and SHA-256, and for
  each of the k+m shards its disk and verified status (ok / missing / corrupt), checked
  against the data and the shard files on disk (``DIR/shards/**/<sha256>.<index>``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

import aws_chunked
from conftest import REGION, ROOT_PASSWORD, ROOT_USER, poll, raw_request, tessera_binary

KiB = 1024
MiB = 1024 * 1024
DISK_CHECK = ["--disk-check-secs", "1"]
PROMTOOL = "/usr/bin/promtool"


# ====================================================================== HTTP ===
def fetch(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 10):
    """(status, lower-cased headers, body) of one plain (unsigned) request; no proxies."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


# ============================================================ metrics parser ===
@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict
    value: float


_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$")
_LABEL_START_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"')
_LABEL_SEP_RE = re.compile(r"\s*,?\s*")
_ESCAPES = {"n": "\n", "\\": "\\", '"': '"'}


def _parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    i = 0
    while i < len(text):
        m = _LABEL_START_RE.match(text, i)
        if not m:
            raise ValueError(f"bad label set at {text[i:]!r}")
        name, i = m.group(1), m.end()
        value = []
        while True:
            ch = text[i]
            if ch == "\\":
                value.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
            elif ch == '"':
                i += 1
                break
            else:
                value.append(ch)
                i += 1
        if name in labels:
            raise ValueError(f"label {name} twice in {text!r}")
        labels[name] = "".join(value)
        i = _LABEL_SEP_RE.match(text, i).end()
    return labels


def parse_metrics(text: str) -> tuple[list[Sample], dict[str, str]]:
    """Prometheus text format 0.0.4 -> (samples, {family: type})."""
    samples: list[Sample] = []
    types: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise ValueError(f"unparsable metrics line: {line!r}")
        name, labels, value = m.group(1), m.group(2), m.group(3)
        samples.append(Sample(name, _parse_labels(labels) if labels else {}, float(value)))
    return samples, types


class Metrics:
    """One scrape, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples, self.types = parse_metrics(text)

    def select(self, name: str, **labels: str) -> list[Sample]:
        return [
            s for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The value of the one sample `name{labels...}` (must exist exactly once)."""
        found = self.select(name, **labels)
        assert len(found) == 1, f"expected one sample {name}{labels}, found {found}"
        return found[0].value

    def counter(self, name: str, **labels: str) -> float:
        """Like value(), but 0 for a labelled series that was never touched (not yet exposed)."""
        found = self.select(name, **labels)
        assert len(found) <= 1, f"expected at most one sample {name}{labels}, found {found}"
        return found[0].value if found else 0.0

    def __contains__(self, name: str) -> bool:
        return any(s.name == name for s in self.samples)


def scrape(url_or_srv, *, path: str = "/metrics", token: str | None = None) -> Metrics:
    base = url_or_srv if isinstance(url_or_srv, str) else url_or_srv.url
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, hdrs, body = fetch(base + path, headers=headers)
    assert status == 200, f"GET {path}: HTTP {status} {body[:300]!r}"
    return Metrics(body.decode("utf-8"))


def promtool_check(text: str) -> None:
    """`promtool check metrics` on the scraped text: exit 0 and no complaints."""
    exe = PROMTOOL if os.access(PROMTOOL, os.X_OK) else shutil.which("promtool")
    if exe is None:
        pytest.fail(
            "promtool not found: install the Debian package `prometheus` (scripts/lib.sh installs it)",
            pytrace=False,
        )
    proc = subprocess.run([exe, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    complaints = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0 and not complaints, (
        f"promtool check metrics exit {proc.returncode}:\n{complaints}\n--- scraped text ---\n{text[:3000]}"
    )


# ===================================================================== admin ===
def admin(srv_or_url, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs ``tessera admin --endpoint URL ARGS`` with the suite's root credentials."""
    url = srv_or_url if isinstance(srv_or_url, str) else srv_or_url.url
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["TESSERA_ROOT_USER"] = ROOT_USER
    env["TESSERA_ROOT_PASSWORD"] = ROOT_PASSWORD
    cmd = [str(tessera_binary()), "admin", "--endpoint", url, *args]
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`{' '.join(cmd)}` timed out after {timeout}s\n{exc.stderr}", pytrace=False)


def admin_json(srv, *args: str, expect_rc: int | None = 0) -> dict:
    proc = admin(srv, *args)
    where = f"`tessera admin {' '.join(args)}` exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    if expect_rc is not None:
        assert proc.returncode == expect_rc, where
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"admin output is not JSON: {where}", pytrace=False)


def locate(srv, obj: str, *extra: str, expect_rc: int | None = 0) -> dict:
    return admin_json(srv, "--json", "locate", obj, *extra, expect_rc=expect_rc)


def shard_file(disk_dir, chunk_hex: str, index: int) -> Path:
    """The one shard file `<chunk_hex>.<index>` under DISK/shards (wherever it is fanned out)."""
    found = list((Path(disk_dir) / "shards").rglob(f"{chunk_hex}.{index}"))
    assert len(found) == 1, f"expected one shard file {chunk_hex}.{index} under {disk_dir}/shards, found {found}"
    return found[0]


def flip_byte_near_end(path: Path, back: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[-back] ^= 0xFF
    path.write_bytes(bytes(data))


def locate_table_rows(text: str) -> list[dict]:
    """Rows of the `admin locate` table: one per shard, the chunk columns filled down."""
    lines = text.splitlines()
    header = [i for i, l in enumerate(lines) if l.split()[:1] == ["CHUNK"]]
    assert len(header) == 1, text
    assert lines[header[0]].split() == [
        "CHUNK", "OFFSET", "LENGTH", "SHA256", "SHARD", "KIND", "DISK", "DISK-STATE", "STATUS", "PATH",
    ], lines[header[0]]
    rows, chunk = [], None
    for line in lines[header[0] + 1 :]:
        if not line.strip():
            break
        f = line.split()
        if len(f) == 10:
            chunk = {"chunk": int(f[0]), "offset": int(f[1]), "length": int(f[2]), "sha16": f[3]}
            f = f[4:]
        assert len(f) == 6 and chunk is not None, f"unexpected locate row: {line!r}"
        rows.append(
            {**chunk, "index": int(f[0]), "kind": f[1], "disk": int(f[2]), "disk_state": f[3], "status": f[4], "path": f[5]}
        )
    return rows


# ======================================================================= S3 ===
def put_slowly_thread(srv, bucket: str, key: str, data: bytes, *, piece: int, pause: float, stop_after: int | None = None):
    """A PUT (UNSIGNED-PAYLOAD, Content-Length) whose body goes out `piece` bytes every `pause`
    seconds from a thread. With stop_after, only that many body bytes are sent, then the
    client waits for an answer that should never come."""
    state = {"sent": 0, "done_sending": None, "status": None, "body": b"", "error": None, "finished": None}
    port = srv.port

    def run():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=40)
        try:
            signed = aws_chunked.sign_headers(
                "PUT",
                f"/{bucket}/{key}",
                host=f"127.0.0.1:{port}",
                headers={"Content-Length": str(len(data))},
                payload_hash=aws_chunked.UNSIGNED_PAYLOAD,
                access_key=ROOT_USER,
                secret_key=ROOT_PASSWORD,
                region=REGION,
            )
            conn.putrequest("PUT", f"/{bucket}/{key}", skip_host=True, skip_accept_encoding=True)
            for k, v in signed.headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            limit = len(data) if stop_after is None else stop_after
            while state["sent"] < limit:
                part = data[state["sent"] : min(state["sent"] + piece, limit)]
                conn.send(part)
                state["sent"] += len(part)
                time.sleep(pause)
            state["done_sending"] = time.monotonic()
            resp = conn.getresponse()
            state["status"], state["body"] = resp.status, resp.read()
        except Exception as exc:  # recorded for the test to judge
            state["error"] = repr(exc)
        finally:
            state["finished"] = time.monotonic()
            conn.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, state


def connection_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


# ============================================================= 1. metrics ===
REQUIRED_FAMILIES = {
    "tessera_s3_requests_in_flight": "gauge",
    "tessera_disk_state": "gauge",
    "tessera_disk_free_bytes": "gauge",
    "tessera_disk_total_bytes": "gauge",
    "tessera_shard_read_errors_total": "counter",
    "tessera_shard_write_errors_total": "counter",
    "tessera_shards_corrupt_found_total": "counter",
    "tessera_shards_missing_found_total": "counter",
    "tessera_shards_healed_total": "counter",
    "tessera_shard_heal_failures_total": "counter",
    "tessera_heal_queue_healed_total": "counter",
    "tessera_scanner_passes_total": "counter",
    "tessera_scanner_read_bytes_total": "counter",
    "tessera_scanner_running": "gauge",
    "tessera_heal_queue_chunks": "gauge",
    "tessera_buckets": "gauge",
    "tessera_objects": "gauge",
    "tessera_object_versions": "gauge",
    "tessera_logical_bytes": "gauge",
    "tessera_inline_bytes": "gauge",
    "tessera_chunks": "gauge",
    "tessera_chunk_bytes": "gauge",
    "tessera_erasure_bytes": "gauge",
    "tessera_dedup_ratio": "gauge",
    "tessera_compression_ratio": "gauge",
    "tessera_chunk_data_bytes": "gauge",
    "tessera_erasure_data_shards": "gauge",
    "tessera_erasure_parity_shards": "gauge",
    "tessera_info": "gauge",
    "process_resident_memory_bytes": "gauge",
}
REQUEST_FAMILIES = {
    "tessera_s3_requests_total": "counter",
    "tessera_s3_request_duration_seconds": "histogram",
    "tessera_s3_received_bytes_total": "counter",
    "tessera_s3_sent_bytes_total": "counter",
}


def test_metrics_endpoint_serves_valid_prometheus_text(make_server, s3, new_bucket_name):
    """4 disks (EC 2+2): both paths answer 200 text/plain version=0.0.4 without credentials,
    every documented family is there with its type, promtool finds nothing to complain about,
    and the state gauges describe this server (layout, disks, deployment)."""
    srv = make_server(4)
    c = s3(srv)
    bucket = new_bucket_name("prom")
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="k", Body=b"x" * 300 * KiB)
    c.get_object(Bucket=bucket, Key="k")["Body"].read()

    for path in ("/metrics", "/.tessera/metrics"):
        status, headers, body = fetch(srv.url + path)
        assert status == 200, (path, status, body[:300])
        ctype = headers.get("content-type", "")
        assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, (path, ctype)
        m = Metrics(body.decode())
        for family, kind in {**REQUIRED_FAMILIES, **REQUEST_FAMILIES}.items():
            assert m.types.get(family) == kind, f"{path}: family {family} has TYPE {m.types.get(family)}, want {kind}"
        promtool_check(body.decode())
    status, headers, body = fetch(srv.url + "/metrics", method="HEAD")
    assert (status, body) == (200, b""), (status, body[:200])

    m = scrape(srv)
    assert m.value("tessera_erasure_data_shards") == 2 and m.value("tessera_erasure_parity_shards") == 2
    info_doc = admin_json(srv, "--json", "info")
    (info,) = m.select("tessera_info")
    assert info.value == 1 and info.labels["deployment"] == info_doc["deployment_id"], (info, info_doc["deployment_id"])
    assert info.labels["version"] == info_doc["version"], info
    for i, d in enumerate(srv.dirs):
        labels = {"disk": str(i), "path": str(d), "set": "0"}
        states = {s.labels["state"]: s.value for s in m.select("tessera_disk_state", **labels)}
        assert states == {"online": 1, "faulty": 0, "offline": 0}, (labels, states)
        total = m.value("tessera_disk_total_bytes", **labels)
        free = m.value("tessera_disk_free_bytes", **labels)
        st = os.statvfs(d)
        assert 0 < free <= total, (labels, free, total)
        assert total == st.f_frsize * st.f_blocks, (labels, total, st)
    assert len(m.select("tessera_disk_state")) == 3 * len(srv.dirs)
    # A scrape is not an S3 request: nothing in flight while we scrape.
    assert m.value("tessera_s3_requests_in_flight") == 0
    assert m.value("process_resident_memory_bytes") > 1 * MiB
    assert m.value("tessera_objects") == 1 and m.value("tessera_buckets") == 1


def test_request_metrics_count_a_known_workload(make_server, s3, random_bytes, new_bucket_name):
    """Deltas of the request metrics around a workload whose every request and byte is known
    (4 disks, EC 2+2): counts by operation and status (200, 206, 204, 404, Unknown/403 for a
    bad signature, Admin for the admin API, the multipart operations), payload bytes received
    (aws-chunked counted by its decoded length), response body bytes sent, and the
    histogram's _count, _sum and cumulative buckets."""
    srv = make_server(4)
    c = s3(srv)
    bucket = new_bucket_name("reqm")
    before = scrape(srv)

    c.create_bucket(Bucket=bucket)
    objects = {
        "small": random_bytes(1 * KiB, "rm-small"),
        "mid": random_bytes(300 * KiB + 5, "rm-mid"),
        "big": random_bytes(1 * MiB + 512 * KiB + 7, "rm-big"),
    }
    for key, data in objects.items():
        c.put_object(Bucket=bucket, Key=key, Body=data)
    # aws-chunked: the metrics count the decoded payload, not the chunk framing.
    chunked = random_bytes(200 * KiB + 3, "rm-chunked")
    req = aws_chunked.build_streaming_put(
        f"/{bucket}/chunked",
        chunked,
        host=f"127.0.0.1:{srv.port}",
        mode=aws_chunked.STREAMING_SIGNED,
        access_key=ROOT_USER,
        secret_key=ROOT_PASSWORD,
    )
    assert len(req.body) > len(chunked)
    resp = aws_chunked.send("127.0.0.1", srv.port, req.method, req.path, req.headers, req.body)
    assert resp.status == 200, (resp.status, resp.body[:500])
    objects["chunked"] = chunked
    put_bytes = sum(len(d) for d in objects.values())
    parts = [random_bytes(5 * MiB, "rm-part1"), random_bytes(1 * KiB + 3, "rm-part2")]
    upload_id = c.create_multipart_upload(Bucket=bucket, Key="multi")["UploadId"]
    etags = [
        c.upload_part(Bucket=bucket, Key="multi", UploadId=upload_id, PartNumber=i + 1, Body=p)["ETag"]
        for i, p in enumerate(parts)
    ]
    c.complete_multipart_upload(
        Bucket=bucket,
        Key="multi",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]},
    )

    got_bytes = 0
    for key, data in objects.items():
        body = c.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == data, key
        got_bytes += len(body)
    ranged = c.get_object(Bucket=bucket, Key="big", Range="bytes=100-1099")
    assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    got_bytes += len(ranged["Body"].read())
    missing = raw_request(srv, "GET", f"/{bucket}/no-such-key")
    assert missing.status == 404 and missing.error_code == "NoSuchKey", missing
    got_bytes += len(missing.body)
    for _ in range(2):
        c.head_object(Bucket=bucket, Key="mid")
    listing = raw_request(srv, "GET", f"/{bucket}", query=[("list-type", "2")])
    assert listing.status == 200 and b"<ListBucketResult" in listing.body, listing
    c.delete_object(Bucket=bucket, Key="small")
    forged = raw_request(srv, "GET", f"/{bucket}/mid", secret_key=ROOT_PASSWORD + "-wrong")
    assert forged.status == 403 and forged.error_code == "SignatureDoesNotMatch", forged
    info = admin(srv, "info")
    assert info.returncode == 0, info.stderr

    after = scrape(srv)

    def delta(name, **labels):
        return after.counter(name, **labels) - before.counter(name, **labels)

    expected_requests = {
        ("CreateBucket", "200"): 1,
        ("PutObject", "200"): 4,
        ("GetObject", "200"): 4,
        ("GetObject", "206"): 1,
        ("GetObject", "404"): 1,
        ("HeadObject", "200"): 2,
        ("ListObjectsV2", "200"): 1,
        ("DeleteObject", "204"): 1,
        ("Unknown", "403"): 1,
        ("Admin", "200"): 1,
        ("CreateMultipartUpload", "200"): 1,
        ("UploadPart", "200"): 2,
        ("CompleteMultipartUpload", "200"): 1,
    }
    seen = {
        (s.labels["operation"], s.labels["status"]): s.value - before.counter("tessera_s3_requests_total", **s.labels)
        for s in after.select("tessera_s3_requests_total")
    }
    seen = {k: v for k, v in seen.items() if v}
    assert seen == expected_requests, f"request count deltas {seen}"

    assert delta("tessera_s3_received_bytes_total", operation="PutObject") == put_bytes
    assert delta("tessera_s3_received_bytes_total", operation="UploadPart") == sum(len(p) for p in parts)
    assert delta("tessera_s3_sent_bytes_total", operation="GetObject") == got_bytes
    assert delta("tessera_s3_sent_bytes_total", operation="ListObjectsV2") == len(listing.body)
    assert delta("tessera_s3_sent_bytes_total", operation="HeadObject") == 0
    assert delta("tessera_s3_sent_bytes_total", operation="Unknown") == len(forged.body)
    assert delta("tessera_s3_received_bytes_total", operation="GetObject") == 0

    hist = "tessera_s3_request_duration_seconds"
    for op in {op for op, _ in expected_requests}:
        n = sum(v for (o, _), v in expected_requests.items() if o == op)
        assert delta(f"{hist}_count", operation=op) == n, op
        assert after.value(f"{hist}_bucket", operation=op, le="+Inf") == after.value(f"{hist}_count", operation=op)
        assert delta(f"{hist}_sum", operation=op) > 0, op
        buckets = sorted(
            (float(s.labels["le"]), s.value) for s in after.select(f"{hist}_bucket", operation=op)
        )
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"{op}: buckets not cumulative: {buckets}"
    assert after.value("tessera_s3_requests_in_flight") == 0


def test_usage_gauges_and_admin_info_on_a_known_data_set(make_server, s3, random_bytes, new_bucket_name):
    """Two identical 3 MiB objects and one of 1 KiB on EC 2+2: 3 objects, 6 MiB + 1 KiB
    logical, 1 KiB inline, 3 distinct 1 MiB chunks (dedup), 6 MiB of erasure-coded shards,
    dedup ratio 2 - in /metrics and in `admin info` (JSON and table)."""
    srv = make_server(4)
    c = s3(srv)
    bucket = new_bucket_name("usage")
    c.create_bucket(Bucket=bucket)
    big = random_bytes(3 * MiB, "usage-big")
    small = random_bytes(1 * KiB, "usage-small")
    c.put_object(Bucket=bucket, Key="a/big-1", Body=big)
    c.put_object(Bucket=bucket, Key="b/big-2", Body=big)
    c.put_object(Bucket=bucket, Key="small", Body=small)

    expected = {
        "tessera_buckets": 1,
        "tessera_objects": 3,
        "tessera_object_versions": 3,
        "tessera_logical_bytes": 2 * 3 * MiB + 1 * KiB,
        "tessera_inline_bytes": 1 * KiB,
        "tessera_chunks": 3,
        "tessera_chunk_bytes": 3 * MiB,
        "tessera_chunk_data_bytes": 3 * MiB,
        "tessera_erasure_bytes": 3 * MiB * 4 // 2,
        "tessera_dedup_ratio": 2.0,
        # Random data is stored as it is.
        "tessera_compression_ratio": 1.0,
    }

    def current():
        m = scrape(srv)
        return {name: m.value(name) for name in expected}

    # Usage comes from a cached metadata scan (reused for 10x its duration): poll briefly.
    got = poll(lambda: (lambda v: v if v == expected else None)(current()), timeout=5)
    assert got == expected, f"usage gauges {current()} != {expected}"

    doc = admin_json(srv, "--json", "info")
    assert doc["usage"] == {
        "buckets": 1,
        "objects": 3,
        "versions": 3,
        "logical_bytes": 2 * 3 * MiB + 1 * KiB,
        "inline_bytes": 1 * KiB,
        "chunks": 3,
        "chunk_bytes": 3 * MiB,
        "chunk_data_bytes": 3 * MiB,
        # One pool: every chunk is in pool 0.
        "pools": {"0": {"chunks": 3, "bytes": 3 * MiB}},
    }, doc["usage"]
    assert doc["dedup_ratio"] == 2.0, doc["dedup_ratio"]
    assert (doc["layout"]["data"], doc["layout"]["parity"]) == (2, 2), doc["layout"]
    table = admin(srv, "info")
    assert table.returncode == 0, table.stderr
    lines = [l.rstrip() for l in table.stdout.splitlines()]
    assert "erasure: 4 disks in 1 set(s) of 4, EC 2+2" in lines, table.stdout
    assert "objects: 3 (3 versions) in 1 buckets, 6.0 MiB logical" in lines, table.stdout
    assert ("chunks:  3 holding 3.0 MiB of data, 3.0 MiB stored before erasure coding, 1.0 KiB inline; "
            "dedup ratio 2.00, compression ratio 1.00") in lines, table.stdout
    disk_rows = [l.split() for l in lines if l.split()[-1:] and l.split()[-1] in {str(d) for d in srv.dirs}]
    assert [(r[0], r[2]) for r in disk_rows] == [(str(i + 1), "online") for i in range(4)], table.stdout


def test_offline_disk_shows_in_disk_state(make_server):
    """A disk dir removed under a running 4-disk server: within a few disk checks (1 s) its
    tessera_disk_state is offline=1, online=0; the others stay online; the text stays valid."""
    srv = make_server(4, extra_args=DISK_CHECK)
    gone = 3
    shutil.rmtree(srv.dirs[gone])

    def states(m, i):
        labels = {"disk": str(i), "path": str(srv.dirs[i]), "set": "0"}
        return {s.labels["state"]: s.value for s in m.select("tessera_disk_state", **labels)}

    want = {"online": 0, "faulty": 0, "offline": 1}
    m = poll(lambda: (lambda m: m if states(m, gone) == want else None)(scrape(srv)), timeout=10, interval=0.25)
    if not m:
        pytest.fail(f"disk {gone} not offline in the metrics within 10 s: {states(scrape(srv), gone)}\n{srv.log_tail()}")
    for i in range(gone):
        assert states(m, i) == {"online": 1, "faulty": 0, "offline": 0}, i
    promtool_check(m.text)


def test_corrupt_shard_is_counted_and_healed(make_server, s3, random_bytes, new_bucket_name):
    """One flipped byte in a data shard of a 600 KiB object: the GET still returns the exact
    bytes, shards_corrupt_found_total and shards_healed_total each grow by 1 (nothing counted
    as missing or failed), and locate then finds every shard ok again."""
    srv = make_server(4)
    c = s3(srv)
    bucket = new_bucket_name("rot")
    c.create_bucket(Bucket=bucket)
    data = random_bytes(600 * KiB, "rot")
    c.put_object(Bucket=bucket, Key="obj", Body=data)
    loc = locate(srv, f"{bucket}/obj")
    assert loc["inline"] is False and len(loc["chunks"]) == 1, loc
    chunk = loc["chunks"][0]
    shard0 = next(s for s in chunk["shards"] if s["index"] == 0)
    path = shard_file(shard0["path"], chunk["sha256"], 0)
    flip_byte_near_end(path)

    counters = [
        "tessera_shards_corrupt_found_total",
        "tessera_shards_healed_total",
        "tessera_shards_missing_found_total",
        "tessera_shard_heal_failures_total",
        "tessera_shard_read_errors_total",
    ]
    before = scrape(srv)
    assert c.get_object(Bucket=bucket, Key="obj")["Body"].read() == data

    def deltas():
        m = scrape(srv)
        return {n: m.value(n) - before.value(n) for n in counters}

    want = dict.fromkeys(counters, 0) | {"tessera_shards_corrupt_found_total": 1, "tessera_shards_healed_total": 1}
    got = poll(lambda: (lambda d: d if d == want else None)(deltas()), timeout=5, interval=0.2)
    assert got == want, f"counter deltas after the GET: {deltas()}"
    after = locate(srv, f"{bucket}/obj")
    assert [s["status"] for s in after["chunks"][0]["shards"]] == ["ok"] * 4, after


def test_metrics_token_and_signed_requests_for_a_bucket_named_metrics(make_server, s3):
    """--metrics-token: no or a wrong bearer token gets 401 with WWW-Authenticate: Bearer, the
    right one 200 (on both paths); a SigV4-signed request for bucket `metrics` is S3's."""
    token = "scrape-token-7f3a"
    srv = make_server(1, extra_args=["--metrics-token", token])
    for path in ("/metrics", "/.tessera/metrics"):
        for headers in ({}, {"Authorization": "Bearer wrong-token"}):
            status, hdrs, body = fetch(srv.url + path, headers=headers)
            assert status == 401, (path, headers, status, body[:200])
            assert hdrs.get("www-authenticate", "").startswith("Bearer"), (path, hdrs)
            assert b"tessera_" not in body
        # Another Authorization scheme is no S3 signature: still the metrics' 401.
        status, _, body = fetch(srv.url + path, headers={"Authorization": f"Basic {token}"})
        assert status == 401 and b"tessera_" not in body, (status, body[:200])
        m = scrape(srv, path=path, token=token)
        assert m.value("tessera_erasure_data_shards") == 1
    # Health stays open.
    assert fetch(srv.url + "/.tessera/health/live")[0] == 200

    c = s3(srv)
    c.create_bucket(Bucket="metrics")
    c.put_object(Bucket="metrics", Key="tessera_objects", Body=b"not a gauge")
    listing = raw_request(srv, "GET", "/metrics")
    assert listing.status == 200, listing
    assert b"<Name>metrics</Name>" in listing.body and b"<Key>tessera_objects</Key>" in listing.body, listing.body
    assert c.get_object(Bucket="metrics", Key="tessera_objects")["Body"].read() == b"not a gauge"
    m = scrape(srv, token=token)
    assert m.counter("tessera_s3_requests_total", operation="ListObjects", status="200") == 1, [
        s for s in m.select("tessera_s3_requests_total")
    ]
    assert m.value("tessera_buckets") == 1


# ============================================================== 2. locate ===
def test_locate_maps_every_shard_of_a_known_object(make_server, s3, random_bytes, new_bucket_name):
    """2.5 MiB on EC 2+2: 3 chunks (1 MiB, 1 MiB, 512 KiB) whose SHA-256 is that of the data
    slice, 4 shards each (0-1 data, 2-3 parity) on 4 distinct disks where the shard files
    really are; all verified ok. The table shows the same, 1-based disks."""
    srv = make_server(4)
    c = s3(srv)
    bucket = new_bucket_name("locate")
    c.create_bucket(Bucket=bucket)
    data = random_bytes(2 * MiB + 512 * KiB, "locate")
    etag = c.put_object(Bucket=bucket, Key="dir/obj", Body=data)["ETag"].strip('"')

    doc = locate(srv, f"{bucket}/dir/obj")
    doc_after = admin_json(srv, "locate", f"{bucket}/dir/obj", "--json")  # --json after the subcommand
    assert doc_after == doc
    assert (doc["bucket"], doc["key"], doc["size"], doc["etag"]) == (bucket, "dir/obj", len(data), etag), doc
    assert doc["version_id"] is None and doc["inline"] is False, doc
    assert (doc["data_shards"], doc["parity_shards"]) == (2, 2), doc
    assert [(ch["offset"], ch["length"]) for ch in doc["chunks"]] == [
        (0, MiB), (MiB, MiB), (2 * MiB, 512 * KiB),
    ], doc["chunks"]
    for ch in doc["chunks"]:
        piece = data[ch["offset"] : ch["offset"] + ch["length"]]
        assert ch["sha256"] == hashlib.sha256(piece).hexdigest(), ch["offset"]
        shards = ch["shards"]
        assert [s["index"] for s in shards] == [0, 1, 2, 3], shards
        assert [s["parity"] for s in shards] == [False, False, True, True], shards
        assert sorted(s["disk"] for s in shards) == [0, 1, 2, 3], f"shards of a chunk share a disk: {shards}"
        for s in shards:
            assert s["path"] == str(srv.dirs[s["disk"]]), s
            assert (s["disk_state"], s["status"]) == ("online", "ok"), s
            shard_file(s["path"], ch["sha256"], s["index"])  # the file is where locate says

    proc = admin(srv, "locate", f"{bucket}/dir/obj")
    assert proc.returncode == 0, proc.stderr
    rows = locate_table_rows(proc.stdout)
    want = [
        {
            "chunk": ci + 1,
            "offset": ch["offset"],
            "length": ch["length"],
            "sha16": ch["sha256"][:16],
            "index": s["index"],
            "kind": "parity" if s["parity"] else "data",
            "disk": s["disk"] + 1,
            "disk_state": "online",
            "status": "ok",
            "path": s["path"],
        }
        for ci, ch in enumerate(doc["chunks"])
        for s in ch["shards"]
    ]
    assert rows == want, proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1] == "every shard present and verified", proc.stdout
    assert "3 chunk(s), each in 2+2 shards" in proc.stdout, proc.stdout


def test_locate_reports_missing_and_corrupt_shards(make_server, s3, random_bytes, new_bucket_name):
    """Delete one data shard and corrupt one parity shard (on the disks locate names): locate
    marks exactly those two missing / corrupt, the table says 2 shard(s) not ok, and the data
    still reads back exactly."""
    srv = make_server(4)
    c = s3(srv)
    bucket = new_bucket_name("damage")
    c.create_bucket(Bucket=bucket)
    data = random_bytes(2 * MiB + 512 * KiB, "damage")
    c.put_object(Bucket=bucket, Key="obj", Body=data)
    doc = locate(srv, f"{bucket}/obj")
    ch0, ch1 = doc["chunks"][0], doc["chunks"][1]
    lost = next(s for s in ch0["shards"] if s["index"] == 1)
    rotten = next(s for s in ch1["shards"] if s["index"] == 3)
    shard_file(lost["path"], ch0["sha256"], 1).unlink()
    flip_byte_near_end(shard_file(rotten["path"], ch1["sha256"], 3))

    doc = locate(srv, f"{bucket}/obj", expect_rc=None)
    statuses = {(ci, s["index"]): s["status"] for ci, ch in enumerate(doc["chunks"]) for s in ch["shards"]}
    bad = {k: v for k, v in statuses.items() if v != "ok"}
    assert bad == {(0, 1): "missing", (1, 3): "corrupt"}, statuses
    assert len(statuses) == 12
    assert all(s["disk_state"] == "online" for ch in doc["chunks"] for s in ch["shards"])

    proc = admin(srv, "locate", f"{bucket}/obj")
    rows = locate_table_rows(proc.stdout)
    assert {(r["chunk"], r["index"], r["disk"]): r["status"] for r in rows if r["status"] != "ok"} == {
        (1, 1, lost["disk"] + 1): "missing",
        (2, 3, rotten["disk"] + 1): "corrupt",
    }, proc.stdout
    last = proc.stdout.rstrip().splitlines()[-1]
    assert last.startswith("2 shard(s) not ok;"), proc.stdout
    assert c.get_object(Bucket=bucket, Key="obj")["Body"].read() == data


def test_locate_inline_objects_versions_and_missing_keys(make_server, s3, random_bytes, new_bucket_name):
    """Versioned key: the current 1 KiB version is inline (no chunks; the table says so),
    --version-id reaches the older 1.5 MiB version's chunks; a missing key exits 1 with
    NoSuchKey on stderr."""
    srv = make_server(4)
    c = s3(srv)
    bucket = new_bucket_name("locver")
    c.create_bucket(Bucket=bucket)
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = random_bytes(MiB + 512 * KiB, "locver-old")
    new = random_bytes(1 * KiB, "locver-new")
    v1 = c.put_object(Bucket=bucket, Key="doc", Body=old)["VersionId"]
    v2 = c.put_object(Bucket=bucket, Key="doc", Body=new)["VersionId"]

    cur = locate(srv, f"{bucket}/doc")
    assert (cur["inline"], cur["chunks"], cur["size"], cur["version_id"]) == (True, [], len(new), v2), cur
    proc = admin(srv, "locate", f"{bucket}/doc")
    assert proc.returncode == 0 and "stored inline" in proc.stdout, proc.stdout
    assert "CHUNK" not in proc.stdout, proc.stdout

    older = locate(srv, f"{bucket}/doc", "--version-id", v1)
    assert (older["inline"], older["size"], older["version_id"]) == (False, len(old), v1), older
    assert [(ch["offset"], ch["length"]) for ch in older["chunks"]] == [(0, MiB), (MiB, 512 * KiB)]
    assert older["chunks"][1]["sha256"] == hashlib.sha256(old[MiB:]).hexdigest()

    for args in ([f"{bucket}/nope"], [f"{bucket}/doc", "--version-id", "no-such-version"]):
        proc = admin(srv, "--json", "locate", *args)
        assert proc.returncode == 1, (args, proc.returncode, proc.stdout, proc.stderr)
        assert "NoSuchKey" in proc.stderr or "NoSuchVersion" in proc.stderr, (args, proc.stderr)
        assert proc.stdout == "", proc.stdout
    proc = admin(srv, "locate", f"{bucket}/nope")
    assert proc.returncode == 1 and "NoSuchKey" in proc.stderr, proc.stderr
