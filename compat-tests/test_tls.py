"""TLS: HTTPS on the S3 port (admin API included) and between gateway and nodes, with a CA made
by the test (``test_ca``).

Semantics:

* ``--certs-dir DIR`` (TESSERA_CERTS_DIR, ``certs_dir``): ``DIR/public.crt`` + ``DIR/private.key``
  are the default certificate; ``DIR/NAME/{public.crt,private.key}`` further ones, chosen when the
  client's SNI name is one their certificate is valid for. TLS 1.2 and 1.3; ALPN h2 and
  http/1.1. Files are checked every 2 s and a changed set is served to new connections without a
  restart; a set that does not load leaves the previous one serving.
* A missing or wrong file is a start-up error naming the file. The banner says ``https://``.
* ``aws:SecureTransport`` is true over HTTPS.
* ``tessera admin`` / ``tessera health`` take ``--ca-bundle`` (TESSERA_CA_BUNDLE) for https.
* ``tessera node --certs-dir DIR`` serves HTTPS; the gateway names it ``https://HOST:PORT`` and
  trusts ``--node-ca FILE`` (TESSERA_NODE_CA, ``node_ca``) instead of the system's CAs.

Every aws-cli scenario of test_awscli.py also runs over HTTPS (its server fixture is
parametrized).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from conftest import (
    MiB,
    ROOT_PASSWORD,
    ROOT_USER,
    TesseraServer,
    free_port,
    new_bucket_name,
    poll,
    random_bytes,
    s3_client,
    tessera_binary,
)


def peer_cert(port: int, ca_pem, server_name: str, **ctx_opts) -> tuple[bytes, ssl.SSLSocket]:
    """The DER certificate the server presents for `server_name`, and what was negotiated."""
    ctx = ssl.create_default_context(cafile=str(ca_pem))
    ctx.check_hostname = False  # the test compares certificates itself
    for k, v in ctx_opts.items():
        if k == "alpn":
            ctx.set_alpn_protocols(v)
        else:
            setattr(ctx, k, v)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            return tls.getpeercert(binary_form=True), (tls.version(), tls.selected_alpn_protocol())


def der_of(pem_path) -> bytes:
    """The DER of the first certificate of a PEM file."""
    text = open(pem_path).read()
    first = text[: text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return ssl.PEM_cert_to_DER_cert(first)


@pytest.fixture(scope="module")
def tls_server(server_factory, tmp_path_factory, test_ca):
    base = tmp_path_factory.mktemp("tls")
    srv = TesseraServer(base, 1, ca=test_ca)
    # A second domain, chosen by SNI.
    test_ca.issue(srv.certs_dir / "second", dns=["second.test", "*.second.test"], ips=[])
    srv.start()
    yield srv
    srv.stop()


def test_https_serves_s3_and_the_banner_says_so(tls_server):
    c = s3_client(tls_server)
    bucket = new_bucket_name("tls")
    c.create_bucket(Bucket=bucket)
    body = random_bytes(3 * MiB + 17, "tls")
    c.put_object(Bucket=bucket, Key="k", Body=body)
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == body
    assert f"https://127.0.0.1:{tls_server.port}" in tls_server.log_path.read_text()
    # Plain HTTP to the TLS port is not served.
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(10)
        try:
            answer = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            answer = b""
    assert not answer.startswith(b"HTTP/1.1 200")


def test_sni_picks_the_second_domains_certificate(tls_server):
    default = der_of(tls_server.certs_dir / "public.crt")
    second = der_of(tls_server.certs_dir / "second" / "public.crt")
    assert default != second
    assert peer_cert(tls_server.port, tls_server.ca_bundle, "second.test")[0] == second
    assert peer_cert(tls_server.port, tls_server.ca_bundle, "bucket.second.test")[0] == second
    assert peer_cert(tls_server.port, tls_server.ca_bundle, "localhost")[0] == default
    assert peer_cert(tls_server.port, tls_server.ca_bundle, "other.test")[0] == default
    # A full check by hostname, as a client does: the second domain verifies.
    ctx = ssl.create_default_context(cafile=str(tls_server.ca_bundle))
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="second.test"):
            pass


def test_tls_versions_and_alpn(tls_server):
    ca = tls_server.ca_bundle
    _, (version, _) = peer_cert(tls_server.port, ca, "localhost", maximum_version=ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2"
    _, (version, alpn) = peer_cert(tls_server.port, ca, "localhost", alpn=["h2", "http/1.1"])
    assert (version, alpn) == ("TLSv1.3", "h2")
    _, (_, alpn) = peer_cert(tls_server.port, ca, "localhost", alpn=["http/1.1"])
    assert alpn == "http/1.1"
    # A real request over HTTP/2.
    out = subprocess.run(
        ["curl", "-sS", "--http2", "--cacert", str(ca), "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
         f"https://127.0.0.1:{tls_server.port}/.tessera/health/live"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.stdout == "2 200", (out.stdout, out.stderr)


def test_certificate_replaced_on_disk_is_served_without_restart(tls_server, test_ca):
    before = der_of(tls_server.certs_dir / "public.crt")
    assert peer_cert(tls_server.port, tls_server.ca_bundle, "localhost")[0] == before
    # A broken set first (key of another certificate): the old one keeps serving.
    staging = tls_server.base / "staging"
    test_ca.issue(staging, dns=["localhost"], ips=["127.0.0.1"])
    shutil.copy(staging / "private.key", tls_server.certs_dir / "private.key")
    time.sleep(3)
    assert peer_cert(tls_server.port, tls_server.ca_bundle, "localhost")[0] == before
    assert poll(lambda: "not reloaded" in tls_server.log_path.read_text(), 10)
    # Then the matching certificate: the new set is served.
    shutil.copy(staging / "public.crt", tls_server.certs_dir / "public.crt")
    after = der_of(tls_server.certs_dir / "public.crt")
    assert after != before
    assert poll(lambda: peer_cert(tls_server.port, tls_server.ca_bundle, "localhost")[0] == after, 15)
    assert tls_server.running
    c = s3_client(tls_server)
    c.list_buckets()


def test_secure_transport_is_true_over_https(tls_server, server):
    deny_plain = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::BUCKET/*"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::BUCKET/*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ],
    }
    from botocore import UNSIGNED

    for srv, allowed in ((tls_server, True), (server, False)):
        root = s3_client(srv)
        bucket = new_bucket_name("secure")
        root.create_bucket(Bucket=bucket)
        root.put_object(Bucket=bucket, Key="o", Body=b"data")
        root.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny_plain).replace("BUCKET", bucket))
        anon = s3_client(srv, signature_version=UNSIGNED)
        if allowed:
            assert anon.get_object(Bucket=bucket, Key="o")["Body"].read() == b"data"
        else:
            with pytest.raises(ClientError) as exc:
                anon.get_object(Bucket=bucket, Key="o")
            assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_admin_and_health_over_https(tls_server):
    env = dict(os.environ, TESSERA_ROOT_USER=ROOT_USER, TESSERA_ROOT_PASSWORD=ROOT_PASSWORD)
    env.pop("TESSERA_ENDPOINT", None)
    url = tls_server.url
    out = subprocess.run([str(tessera_binary()), "admin", "--endpoint", url, "--ca-bundle", str(tls_server.ca_bundle),
                          "--json", "info"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["disks"]
    out = subprocess.run([str(tessera_binary()), "health", "--endpoint", url, "--ready"],
                         capture_output=True, text=True, timeout=60, env=dict(env, TESSERA_CA_BUNDLE=str(tls_server.ca_bundle)))
    assert out.returncode == 0, out.stdout + out.stderr
    # Without the CA the server's certificate is not trusted, and the error says why.
    out = subprocess.run([str(tessera_binary()), "health", "--endpoint", url], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode != 0
    assert "certificate" in (out.stdout + out.stderr).lower(), out.stdout + out.stderr


@pytest.mark.parametrize("broken", ["missing key", "key of another certificate", "garbage certificate"])
def test_bad_certificate_files_are_start_errors_naming_the_file(tmp_path, test_ca, broken):
    certs = test_ca.issue(tmp_path / "certs")
    other = test_ca.issue(tmp_path / "other")
    if broken == "missing key":
        (certs / "private.key").unlink()
        named = certs / "private.key"
    elif broken == "key of another certificate":
        shutil.copy(other / "private.key", certs / "private.key")
        named = certs / "private.key"
    else:
        (certs / "public.crt").write_text("not a certificate\n")
        named = certs / "public.crt"
    out = subprocess.run(
        [str(tessera_binary()), "serve", "--address", f"127.0.0.1:{free_port()}", "--certs-dir", str(certs),
         str(tmp_path / "disk")],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, TESSERA_ROOT_USER=ROOT_USER, TESSERA_ROOT_PASSWORD=ROOT_PASSWORD),
    )
    assert out.returncode != 0
    assert str(named) in out.stderr, out.stderr


def test_gateway_reaches_nodes_over_tls(tmp_path, test_ca, monkeypatch):
    from test_nodes import SECRET, Node, port_free_on_all

    monkeypatch.setenv("TESSERA_CLUSTER_SECRET", SECRET)
    hosts = ["127.0.0.1", "127.0.0.2"]
    port = port_free_on_all(hosts)
    nodes = []
    for i, host in enumerate(hosts):
        base = tmp_path / f"node{i}"
        base.mkdir()
        certs = test_ca.issue(base / "certs", dns=[], ips=[host])
        nodes.append(Node(base, [base / "d0", base / "d1"], host, port, certs_dir=certs).start())
    try:
        assert nodes[0].url.startswith("https://")
        # The node speaks only TLS: a plain request gets no HTTP answer.
        plain = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"http://{hosts[0]}:{port}/"],
                               capture_output=True, text=True, timeout=30)
        assert plain.stdout in ("000", ""), plain.stdout
        gateway = TesseraServer(tmp_path / "gateway", dirs=[], extra_args=[
            "--node", f"https://127.0.0.{{1...2}}:{port}", "--node-ca", str(test_ca.ca_pem),
            "--meta-dir", str(tmp_path / "gateway" / "meta"),
        ])
        gateway.start(timeout=60)
        try:
            c = s3_client(gateway)
            bucket = new_bucket_name("tlsnodes")
            c.create_bucket(Bucket=bucket)
            body = random_bytes(5 * MiB + 3, "tls-nodes")
            c.put_object(Bucket=bucket, Key="big", Body=body)
            got = c.get_object(Bucket=bucket, Key="big")["Body"].read()
            assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
            info = json.loads(subprocess.run(
                [str(tessera_binary()), "admin", "--endpoint", gateway.url, "--json", "info"],
                capture_output=True, text=True, timeout=60,
                env=dict(os.environ, TESSERA_ROOT_USER=ROOT_USER, TESSERA_ROOT_PASSWORD=ROOT_PASSWORD),
            ).stdout)
            states = {n["url"]: n["state"] for n in info["nodes"]}
            assert states == {f"https://{h}:{port}": "online" for h in hosts}, states
        finally:
            gateway.stop()
    finally:
        for n in nodes:
            n.stop()


SSE_C = {
    "x-amz-server-side-encryption-customer-algorithm": "AES256",
    "x-amz-server-side-encryption-customer-key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "x-amz-server-side-encryption-customer-key-md5":
        base64.b64encode(hashlib.md5(b"0123456789abcdef0123456789abcdef").digest()).decode(),
}


def test_sse_c_needs_tls_and_kms_is_refused_not_ignored(tls_server, server, make_server, raw_s3_request):
    for srv in (tls_server, server):
        s3_client(srv).create_bucket(Bucket=(bucket := new_bucket_name("sse")))
        # SSE-C over plain HTTP: 400, as on AWS, and nothing stored; over HTTPS: served.
        r = raw_s3_request(srv, "PUT", f"/{bucket}/c", headers=SSE_C, body=b"secret")
        if srv is tls_server:
            assert r.status == 200, r.body
            r = raw_s3_request(srv, "GET", f"/{bucket}/c", headers=SSE_C)
            assert (r.status, r.body) == (200, b"secret")
            s3_client(srv).delete_object(Bucket=bucket, Key="c")
        else:
            assert (r.status, r.error_code) == (400, "InvalidRequest"), r.body
            r = raw_s3_request(srv, "GET", f"/{bucket}/c", headers=SSE_C)
            assert (r.status, r.error_code) == (400, "InvalidRequest"), r.body
        # SSE-S3 and SSE-KMS without a master key: refused, never stored in clear.
        for headers in ({"x-amz-server-side-encryption": "AES256"},
                        {"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": "k"}):
            r = raw_s3_request(srv, "PUT", f"/{bucket}/s", headers=headers, body=b"secret")
            assert (r.status, r.error_code) == (501, "NotImplemented"), r.body
        assert "Contents" not in s3_client(srv).list_objects_v2(Bucket=bucket)
    # The escape hatch for loopback tests, loud in the banner.
    loose = make_server(start=False)
    loose.env_overrides["TESSERA_ALLOW_INSECURE_SSE_C"] = "true"
    loose.start()
    assert "--allow-insecure-sse-c" in loose.log_path.read_text()
    s3_client(loose).create_bucket(Bucket=(bucket := new_bucket_name("sse")))
    r = raw_s3_request(loose, "PUT", f"/{bucket}/c", headers=SSE_C, body=b"secret")
    assert r.status == 200, r.body
