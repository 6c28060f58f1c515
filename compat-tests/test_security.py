"""Security at the edge: trusted proxies (the client's address and scheme from forwarding
headers, believed only from the configured networks), and throttling of failed
authentication per address.

Semantics:

* ``--trusted-proxy CIDR`` (repeatable; TESSERA_TRUSTED_PROXIES, ``trusted_proxies``): for a
  request whose peer is inside one of the networks, the client is the nearest untrusted address
  in ``Forwarded`` (else ``X-Forwarded-For``), read from the right, and the scheme is the
  ``Forwarded`` element's ``proto`` (else the last ``X-Forwarded-Proto``). Both feed
  ``aws:SourceIp``, ``aws:SecureTransport``, the access log (``client``, ``scheme``) and
  ``tessera_s3_requests_by_transport_total``.
* Forwarding headers from any other peer are ignored.
* ``--auth-failure-limit N`` (default 60): a signed request refused for its signature or access
  key (403 before the access check) costs its address one of N tokens, refilled at N a minute;
  an address without tokens gets 503 SlowDown for signed requests. Anonymous requests and other
  addresses are unaffected. Counted in ``tessera_auth_failures_total`` and
  ``tessera_auth_throttled_total``.

The forwarder below is a plain HTTP reverse proxy on 127.0.0.2 that appends the address of
whoever connected to it to ``X-Forwarded-For`` (as HAProxy's ``option forwardfor`` and nginx's
``$proxy_add_x_forwarded_for`` do) and sets ``X-Forwarded-Proto``.
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import urllib.request

import pytest

from conftest import ROOT_PASSWORD, ROOT_USER, free_port, new_bucket_name, poll, s3_client

PROXY_ADDR = "127.0.0.2"
ALLOWED_CLIENT = "127.0.0.3"
OTHER_CLIENT = "127.0.0.4"


class Forwarder:
    """A threaded reverse proxy on PROXY_ADDR forwarding to `upstream_port` on 127.0.0.1,
    connecting from PROXY_ADDR itself."""

    def __init__(self, upstream_port: int, proto: str = "http") -> None:
        self.proto = proto
        upstream = upstream_port
        forwarder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "x-forwarded-proto"}
                seen = self.headers.get("X-Forwarded-For")
                headers["X-Forwarded-For"] = f"{seen}, {self.client_address[0]}" if seen else self.client_address[0]
                headers["X-Forwarded-Proto"] = forwarder.proto
                conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30, source_address=(PROXY_ADDR, 0))
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer((PROXY_ADDR, self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def get_from(source: str, port: int, path: str, headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> int:
    """An anonymous GET sent from the local address `source`; returns the status."""
    conn = http.client.HTTPConnection(host, port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def put_policy(client, bucket: str, *statements: dict) -> None:
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def allow_anonymous_get_from(root, bucket: str, address: str) -> None:
    """A bucket policy: anyone may GET objects, from `address` only."""
    put_policy(root, bucket, {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                              "Resource": f"arn:aws:s3:::{bucket}/*",
                              "Condition": {"IpAddress": {"aws:SourceIp": f"{address}/32"}}})


@pytest.fixture(scope="module")
def proxied(server_factory, tmp_path_factory):
    """A server that trusts the forwarder's address (and one more network that is not used),
    logging JSON, with a bucket holding one object."""
    srv = server_factory(
        tmp_path_factory.mktemp("proxied"),
        1,
        extra_args=["--trusted-proxy", f"{PROXY_ADDR}/32", "--trusted-proxy", "10.0.0.0/8", "--log-format", "json"],
    )
    root = s3_client(srv)
    bucket = new_bucket_name("proxied")
    root.create_bucket(Bucket=bucket)
    root.put_object(Bucket=bucket, Key="obj", Body=b"hello")
    fwd = Forwarder(srv.port)
    yield srv, root, bucket, fwd
    fwd.close()
    srv.stop()


def test_source_ip_is_the_client_behind_a_trusted_proxy(proxied):
    srv, root, bucket, fwd = proxied
    allow_anonymous_get_from(root, bucket, ALLOWED_CLIENT)
    path = f"/{bucket}/obj"
    # Through the proxy: the policy sees the address that connected to the proxy.
    assert get_from(ALLOWED_CLIENT, fwd.port, path, host=PROXY_ADDR) == 200
    assert get_from(OTHER_CLIENT, fwd.port, path, host=PROXY_ADDR) == 403
    # A client that names the allowed address itself: the proxy appends the real one, and the
    # walk from the right stops there.
    spoof = {"X-Forwarded-For": ALLOWED_CLIENT}
    assert get_from(OTHER_CLIENT, fwd.port, path, spoof, host=PROXY_ADDR) == 403
    # Direct, from a peer that is no trusted proxy: the header is ignored.
    assert get_from(OTHER_CLIENT, srv.port, path, spoof) == 403
    assert get_from(OTHER_CLIENT, srv.port, path, {"Forwarded": f"for={ALLOWED_CLIENT}"}) == 403
    # The allowed address, direct: its own address counts (the control for the 403s above).
    assert get_from(ALLOWED_CLIENT, srv.port, path) == 200
    # A peer trusted but without forwarding headers is itself the client.
    assert get_from(PROXY_ADDR, srv.port, path) == 403


def test_forwarded_header_from_a_trusted_peer(proxied):
    srv, root, bucket, _ = proxied
    allow_anonymous_get_from(root, bucket, ALLOWED_CLIENT)
    path = f"/{bucket}/obj"
    fwd = {"Forwarded": f'for="{ALLOWED_CLIENT}:5555";proto=http'}
    assert get_from(PROXY_ADDR, srv.port, path, fwd) == 200
    # Forwarded wins over X-Forwarded-For when both are present.
    both = {**fwd, "X-Forwarded-For": OTHER_CLIENT}
    assert get_from(PROXY_ADDR, srv.port, path, both) == 200
    both = {"Forwarded": f"for={OTHER_CLIENT}", "X-Forwarded-For": ALLOWED_CLIENT}
    assert get_from(PROXY_ADDR, srv.port, path, both) == 403


def test_secure_transport_follows_the_proxys_scheme(proxied):
    srv, root, bucket, fwd = proxied
    put_policy(
        root, bucket,
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    )
    path = f"/{bucket}/obj"
    fwd.proto = "https"
    try:
        assert get_from(ALLOWED_CLIENT, fwd.port, path, host=PROXY_ADDR) == 200
    finally:
        fwd.proto = "http"
    assert get_from(ALLOWED_CLIENT, fwd.port, path, host=PROXY_ADDR) == 403
    # A client claiming https directly is not believed.
    assert get_from(ALLOWED_CLIENT, srv.port, path, {"X-Forwarded-Proto": "https"}) == 403
    root.delete_bucket_policy(Bucket=bucket)


def test_access_log_and_metrics_name_the_forwarded_client(proxied):
    srv, root, bucket, fwd = proxied
    root.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    marker = "logged-" + new_bucket_name("k")
    root.put_object(Bucket=bucket, Key=marker, Body=b"x")
    fwd.proto = "https"
    try:
        assert get_from(ALLOWED_CLIENT, fwd.port, f"/{bucket}/{marker}", host=PROXY_ADDR) == 200
    finally:
        fwd.proto = "http"

    def logged():
        for line in srv.log_path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            rec = json.loads(line)
            f = rec.get("fields", {})
            if rec.get("target") == "access" and f.get("operation") == "GetObject" and f.get("key") == marker:
                return f
        return None

    fields = poll(logged, timeout=10)
    assert fields["client"] == ALLOWED_CLIENT and fields["scheme"] == "https", fields
    # The boto3 requests of this module came directly over plain HTTP from 127.0.0.1.
    for line in srv.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"PutObject"' in line and marker in line:
            assert json.loads(line)["fields"]["client"] == "127.0.0.1"
    with urllib.request.urlopen(f"{srv.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    https = [ln for ln in text.splitlines() if ln.startswith('tessera_s3_requests_by_transport_total{transport="https"}')]
    assert https and float(https[0].split()[-1]) >= 1, text[:2000]
    root.delete_bucket_policy(Bucket=bucket)


def test_bad_trusted_proxy_is_a_clear_start_error(tmp_path):
    import subprocess

    from conftest import tessera_binary

    out = subprocess.run(
        [str(tessera_binary()), "serve", "--address", f"127.0.0.1:{free_port()}", "--trusted-proxy", "10.0.0.0/40",
         str(tmp_path / "d")],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "TESSERA_ROOT_USER": ROOT_USER, "TESSERA_ROOT_PASSWORD": ROOT_PASSWORD},
    )
    assert out.returncode != 0
    assert "trusted proxy \"10.0.0.0/40\"" in out.stderr, out.stderr


def test_failed_authentication_is_throttled_per_address(make_server):
    from botocore import UNSIGNED

    srv = make_server(extra_args=["--auth-failure-limit", "30"])  # a token every 2 s
    root = s3_client(srv)
    bucket = new_bucket_name("throttle")
    root.create_bucket(Bucket=bucket)
    root.put_object(Bucket=bucket, Key="pub", Body=b"p", ACL="public-read")
    wrong = s3_client(srv, secret_key="not-the-root-password")
    unknown = s3_client(srv, access_key="NOSUCHKEY", secret_key="whatever-secret")
    codes = []
    for i in range(30):
        c = wrong if i % 2 else unknown
        try:
            c.head_bucket(Bucket=bucket) if i % 3 == 0 else c.list_objects_v2(Bucket=bucket)
            codes.append("ok")
        except Exception as e:  # botocore ClientError
            codes.append(e.response["Error"]["Code"])
    assert set(codes) <= {"403", "SignatureDoesNotMatch", "InvalidAccessKeyId"}, codes
    # The budget is spent: even the right signature from this address is held back ...
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as exc:
        root.list_objects_v2(Bucket=bucket)
    assert exc.value.response["Error"]["Code"] == "SlowDown"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    # ... anonymous requests are not (they guess no secret), nor other addresses.
    anon = s3_client(srv, signature_version=UNSIGNED)
    assert anon.get_object(Bucket=bucket, Key="pub")["Body"].read() == b"p"
    other = get_signed_from(OTHER_CLIENT, srv)
    assert other == 200
    with urllib.request.urlopen(f"{srv.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    metric = {ln.split()[0]: float(ln.split()[1]) for ln in text.splitlines() if ln.startswith("tessera_auth_")}
    assert metric["tessera_auth_failures_total"] >= 30, metric
    assert metric["tessera_auth_throttled_total"] >= 1, metric
    # Tokens refill (one every 2 s): the root works again.
    assert poll(lambda: _lists(root, bucket), 10, 0.5)


def _lists(client, bucket) -> bool:
    try:
        client.list_objects_v2(Bucket=bucket)
        return True
    except Exception:
        return False


def get_signed_from(source: str, srv) -> int:
    """A root-signed ListBuckets sent from the local address `source`; returns the status."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{srv.url}/"
    req = AWSRequest(method="GET", url=url, data=b"")
    S3SigV4Auth(Credentials(ROOT_USER, ROOT_PASSWORD), "s3", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", "/", headers=dict(req.headers.items()))
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()
