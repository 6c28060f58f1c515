"""Operations: health endpoints (tessera's and MinIO's paths) under a healthy and a degraded
server, one access-log line per request, and JSON logs."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request

import pytest


def probe(url: str, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(url, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


LIVE = ["/health/live", "/minio/health/live", "/.tessera/health/live"]
READY = ["/health/ready", "/minio/health/ready", "/.tessera/health/ready"]


def test_health_endpoints_on_a_healthy_server(make_server):
    srv = make_server(4)
    for path in LIVE + READY:
        status, body = probe(srv.url + path)
        assert status == 200, (path, status, body)
        status, body = probe(srv.url + path, "HEAD")
        assert (status, body) == (200, ""), path
    # Not a health path: an unsigned request reaches S3 and is refused there.
    status, body = probe(srv.url + "/health/other")
    assert status == 403, (status, body)


@pytest.mark.parametrize("lost", [1, 2])
def test_readiness_follows_the_write_quorum(make_server, s3, random_bytes, new_bucket_name, lost):
    """4 disks, EC 2+2: writes need 3 disks. One lost disk: still ready; two: alive (reads work)
    but not ready."""
    srv = make_server(4)
    c = s3(srv)
    bucket = new_bucket_name("ready")
    c.create_bucket(Bucket=bucket)
    data = random_bytes(1_500_000, seed="ready")
    c.put_object(Bucket=bucket, Key="obj", Body=data)
    srv.stop()
    for d in srv.dirs[-lost:]:
        shutil.rmtree(d)
    srv.start()
    for path in LIVE:
        assert probe(srv.url + path)[0] == 200, path
    for path in READY:
        status, body = probe(srv.url + path)
        if lost == 1:
            assert status == 200, (path, body)
        else:
            assert status == 503, (path, status, body)
            assert "erasure set 1 has 2 of 4 disks online, writes need 3" in body
    assert c.get_object(Bucket=bucket, Key="obj")["Body"].read() == data


def test_signed_requests_to_a_bucket_named_health_reach_s3(make_server, s3):
    srv = make_server(1)
    c = s3(srv)
    c.create_bucket(Bucket="health")
    c.put_object(Bucket="health", Key="live", Body=b"mine")
    assert c.get_object(Bucket="health", Key="live")["Body"].read() == b"mine"
    assert probe(srv.url + "/health/live") == (200, "ok\n")


def wait_for_log(srv, predicate, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = srv.log_path.read_text(errors="replace").splitlines()
        if any(predicate(line) for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_access_log_has_one_line_per_request(make_server, s3, new_bucket_name):
    srv = make_server(1)
    c = s3(srv)
    bucket = new_bucket_name("logs")
    c.create_bucket(Bucket=bucket)
    put_resp = c.put_object(Bucket=bucket, Key="dir/file.txt", Body=b"x" * 1234)
    request_id = put_resp["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    c.get_object(Bucket=bucket, Key="dir/file.txt")["Body"].read()
    with pytest.raises(Exception):
        c.get_object(Bucket=bucket, Key="missing")
    lines = wait_for_log(srv, lambda l: 'key="missing"' in l)
    access = [l for l in lines if " access: request " in l]
    assert not any("\x1b[" in l for l in lines), "no colour codes in a log file"
    put = [l for l in access if "method=PUT" in l and 'key="dir/file.txt"' in l]
    get = [l for l in access if "method=GET" in l and 'key="dir/file.txt"' in l]
    miss = [l for l in access if "method=GET" in l and 'key="missing"' in l]
    assert len(put) == 1 and "status=200" in put[0] and "bytes_in=1234" in put[0], access
    assert len(get) == 1 and "bytes_out=1234" in get[0], access
    assert len(miss) == 1 and "status=404" in miss[0], access
    assert all(f'bucket="{bucket}"' in l for l in put + get + miss)
    # The request id of the access line is the one the client got back.
    assert f"request{{id={request_id}}}" in put[0], (request_id, put[0])
    assert all("duration_ms=" in l for l in put + get + miss)


def test_json_log_format(make_server, s3, new_bucket_name):
    srv = make_server(1, extra_args=["--log-format", "json"])
    c = s3(srv)
    bucket = new_bucket_name("jsonlog")
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="k", Body=b"abc")
    lines = wait_for_log(srv, lambda l: '"key":"k"' in l)
    records = [json.loads(l) for l in lines if l.startswith("{")]
    assert records, lines[-20:]
    access = [r for r in records if r.get("target") == "access" and r["fields"].get("key") == "k"]
    assert len(access) == 1, records[-10:]
    rec = access[0]
    assert rec["fields"]["method"] == "PUT" and rec["fields"]["status"] == 200
    assert rec["fields"]["bucket"] == bucket and rec["fields"]["bytes_in"] == 3
    assert rec["level"] == "INFO" and rec["span"]["name"] == "request" and rec["span"]["id"]
