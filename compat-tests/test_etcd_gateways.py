"""`tessera serve --etcd`: the metadata in a real etcd (Debian's etcd-server), and gateways
that share it: one is active, the others stand by and take over when it dies; a gateway that
lost its role cannot acknowledge a write.

The gateways here share four local directories (one machine), as gateways on several
machines share storage nodes.
"""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from conftest import (
    _die_with_parent,
    admin_info,
    free_port,
    poll,
    random_bytes,
    s3_client,
    tessera_binary,
)

MiB = 1 << 20


class Etcd:
    """One etcd member on 127.0.0.1 with free ports and a temporary data directory."""

    def __init__(self, base):
        self.dir = base / "etcd"
        self.client_port, self.peer_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        etcd = shutil.which("etcd")
        assert etcd, "etcd is not installed (scripts/test installs etcd-server)"
        self.log = open(base / "etcd.log", "wb")
        self.proc = subprocess.Popen(
            [etcd, "--name", "t", "--data-dir", str(self.dir),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"t={peer}"],
            stdout=self.log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        assert poll(self.healthy, 20), (base / "etcd.log").read_text()[-2000:]

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                return b'"true"' in r.read()
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


@pytest.fixture
def etcd(tmp_path):
    e = Etcd(tmp_path)
    yield e
    e.stop()


def status(server, path):
    try:
        with urllib.request.urlopen(server.url + path, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def ready(server):
    return status(server, "/health/ready") == 200


def gateway(make_server, dirs, etcd, prefix="/tessera/test/"):
    return make_server(dirs=dirs, extra_args=["--etcd", etcd.url, "--etcd-prefix", prefix])


def test_an_unreachable_etcd_is_a_clear_error_at_start(tmp_path):
    started = time.monotonic()
    out = subprocess.run(
        [str(tessera_binary()), "serve", "--address", f"127.0.0.1:{free_port()}",
         "--etcd", f"http://127.0.0.1:{free_port()}", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "TESSERA_ROOT_USER": "testadmin", "TESSERA_ROOT_PASSWORD": "testadmin-secret"},
    )
    assert out.returncode != 0
    assert "cannot reach etcd at http://127.0.0.1:" in out.stderr, out.stderr
    assert time.monotonic() - started < 20


def test_a_standby_takes_over_when_the_active_gateway_dies(make_server, etcd, tmp_path):
    dirs = [tmp_path / f"disk{i}" for i in range(4)]
    a = gateway(make_server, dirs, etcd)
    assert poll(lambda: ready(a), 20), a.log_tail()
    b = gateway(make_server, dirs, etcd)
    # B stands by: alive, not ready (a load balancer skips it), and it passes S3 requests on
    # to A, signatures intact: a client may use either gateway.
    assert status(b, "/health/live") == 200
    assert status(b, "/health/ready") == 503
    s3a, via_b = s3_client(a), s3_client(b)
    via_b.create_bucket(Bucket="ha-bucket")
    objects = {
        "small": b"tiny",
        "chunked": random_bytes(3 * MiB + 17, "c"),
        # 140 chunks: more references than one etcd transaction holds.
        "large": random_bytes(140 * MiB, "l"),
    }
    via_b.put_object(Bucket="ha-bucket", Key="small", Body=objects["small"])
    via_b.put_object(Bucket="ha-bucket", Key="chunked", Body=objects["chunked"])
    s3a.put_object(Bucket="ha-bucket", Key="large", Body=objects["large"])
    assert s3a.get_object(Bucket="ha-bucket", Key="chunked")["Body"].read() == objects["chunked"]
    assert [o["Key"] for o in via_b.list_objects_v2(Bucket="ha-bucket")["Contents"]] == sorted(objects)
    with pytest.raises(ClientError) as missing:
        via_b.get_object(Bucket="ha-bucket", Key="nope")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    # The active gateway lists both, with their roles and jobs, and counts its etcd commits.
    gateways = {g["url"]: g for g in admin_info(a.url)["gateways"]}
    assert set(gateways) == {a.url, b.url}, gateways
    assert (gateways[a.url]["role"], gateways[a.url]["this"]) == ("active", True)
    assert set(gateways[a.url]["jobs"]) == {"gc", "heal", "scanner", "multipart-expiry"}
    assert (gateways[b.url]["role"], gateways[b.url]["jobs"]) == ("standby", [])
    assert all(g["alive"] for g in gateways.values())
    metrics = urllib.request.urlopen(a.url + "/metrics", timeout=10).read().decode()
    done = re.search(r'^tessera_metadata_commits_total\{outcome="done"\} (\d+)', metrics, re.M)
    assert done and int(done.group(1)) > 0, metrics[-2000:]
    assert re.search(r"^tessera_etcd_reachable 1$", metrics, re.M)
    # A request one standby passed on is never passed on again (no loop between standbys).
    req = urllib.request.Request(b.url + "/", headers={"x-tessera-forwarded-by-standby": "1"})
    with pytest.raises(urllib.error.HTTPError) as looped:
        urllib.request.urlopen(req, timeout=5)
    assert looped.value.code == 503

    a.kill()  # SIGKILL: no goodbye, the lease has to expire
    killed = time.monotonic()
    assert poll(lambda: ready(b), 30, 0.2), b.log_tail()
    took = time.monotonic() - killed
    print(f"takeover after SIGKILL: {took:.1f} s")
    assert took < 15, f"takeover took {took:.1f} s"
    s3b = s3_client(b)
    for key, body in objects.items():
        got = s3b.get_object(Bucket="ha-bucket", Key=key)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), key
    listed = [o["Key"] for o in s3b.list_objects_v2(Bucket="ha-bucket")["Contents"]]
    assert listed == sorted(objects)
    s3b.put_object(Bucket="ha-bucket", Key="after", Body=b"written by b")
    # The dead gateway's entry went with its lease; B now leads every job.
    gateways = {g["url"]: g for g in admin_info(b.url)["gateways"]}
    assert list(gateways) == [b.url] and gateways[b.url]["role"] == "active", gateways

    # A comes back as the standby; a graceful stop of B hands over at once.
    a.start()
    assert poll(lambda: status(a, "/health/live") == 200, 20)
    assert status(a, "/health/ready") == 503
    b.stop()
    stopped = time.monotonic()
    assert poll(lambda: ready(a), 15, 0.2), a.log_tail()
    assert time.monotonic() - stopped < 8
    assert s3_client(a).get_object(Bucket="ha-bucket", Key="after")["Body"].read() == b"written by b"


def test_a_paused_gateway_cannot_write_after_another_took_over(make_server, etcd, tmp_path):
    dirs = [tmp_path / f"disk{i}" for i in range(4)]
    a = gateway(make_server, dirs, etcd)
    assert poll(lambda: ready(a), 20), a.log_tail()
    b = gateway(make_server, dirs, etcd)
    s3_client(a).create_bucket(Bucket="fence-bucket")

    # A freezes (a long GC pause, a stopped VM): its lease expires and B takes over.
    a.proc.send_signal(signal.SIGSTOP)
    try:
        assert poll(lambda: ready(b), 30, 0.2), b.log_tail()
    finally:
        a.proc.send_signal(signal.SIGCONT)
    # A wakes up believing it is active. Its own writes are fenced (its lease is gone: see
    # metastore-etcd's one_active_gateway_and_a_deposed_one_cannot_write); it notices, stands
    # by in the same process, and passes requests on to B. A write it acknowledges therefore
    # went through B and must be there.
    try:
        s3_client(a, retries={"max_attempts": 1}).put_object(Bucket="fence-bucket", Key="stale", Body=b"x")
        acknowledged = True
    except (ClientError, EndpointConnectionError, ConnectionError):
        acknowledged = False
    except Exception as exc:  # a connection the stopping server closed
        acknowledged = False
        print(f"A refused with {exc!r}")
    s3b = s3_client(b)
    if acknowledged:
        assert s3b.get_object(Bucket="fence-bucket", Key="stale")["Body"].read() == b"x"
    else:
        with pytest.raises(ClientError):
            s3b.head_object(Bucket="fence-bucket", Key="stale")
    assert poll(lambda: "stands by again" in a.log_tail(), 20), a.log_tail()
    assert a.proc.poll() is None, a.log_tail()
    assert poll(lambda: status(a, "/health/ready") == 503, 20), a.log_tail()
    assert "took over as the active gateway" not in a.log_tail()
    s3b.put_object(Bucket="fence-bucket", Key="fresh", Body=b"y")
    relayed = poll(lambda: s3_client(a).get_object(Bucket="fence-bucket", Key="fresh")["Body"].read() == b"y", 20)
    assert relayed, a.log_tail()


def test_the_active_gateway_is_unready_while_etcd_does_not_answer(make_server, etcd, tmp_path):
    a = gateway(make_server, [tmp_path / f"disk{i}" for i in range(2)], etcd)
    assert poll(lambda: ready(a), 20), a.log_tail()
    s3_client(a).create_bucket(Bucket="while-etcd-away")
    etcd.proc.send_signal(signal.SIGSTOP)
    try:
        # Renewals stop getting through: not ready, then it gives up its role (its lease may
        # be gone) and waits for etcd, in the same process.
        unready = poll(lambda: a.proc.poll() is None and status(a, "/health/ready") == 503, 15, 0.2)
        assert unready, a.log_tail()
        assert poll(lambda: "stands by again" in a.log_tail(), 30), a.log_tail()
        assert a.proc.poll() is None, a.log_tail()
        with pytest.raises((ClientError, EndpointConnectionError, ConnectionError)):
            s3_client(a, retries={"max_attempts": 1}).put_object(Bucket="while-etcd-away", Key="k", Body=b"x")
    finally:
        etcd.proc.send_signal(signal.SIGCONT)
    # etcd is back: the gateway becomes active again by itself, no restart.
    pid = a.proc.pid
    assert poll(lambda: ready(a), 40), a.log_tail()
    assert a.proc.pid == pid and a.proc.poll() is None
    s3 = s3_client(a)
    s3.create_bucket(Bucket="after-etcd-returned")
    s3.put_object(Bucket="after-etcd-returned", Key="k", Body=b"back")
    assert s3.get_object(Bucket="after-etcd-returned", Key="k")["Body"].read() == b"back"
