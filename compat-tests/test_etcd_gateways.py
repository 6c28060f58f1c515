"""`tessera serve --etcd`: the metadata in a real etcd (Debian's etcd-server), and gateways
that share it. Every gateway serves S3 requests itself, reads and writes, from its own view of
the metadata on etcd, so what one acknowledged the others see at once. One of them, the
leader (an etcd lease key), runs the background jobs (gc, heal, scanner, multipart expiry);
admin API requests sent to another gateway are passed on to it. When the leader dies another
takes the jobs over; a leader that was frozen while another took over cannot land a commit
when it wakes, and goes on as an ordinary gateway. While etcd does not answer, no gateway is
ready and none acknowledges a write; they recover by themselves once it is back.

The gateways here share four local directories (one machine), as gateways on several
machines share storage nodes.
"""

import hashlib
import json
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
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from conftest import (
    _die_with_parent,
    admin_info,
    free_port,
    poll,
    random_bytes,
    raw_request,
    s3_client,
    tessera_binary,
)
from test_users import add_user, admin

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


JOBS = ["gc", "heal", "scanner", "multipart-expiry"]
ENTRY_KEYS = {"url", "this", "role", "jobs", "alive", "who", "id"}
# Marks an admin request a gateway passed on to the leader: never passed on again.
FORWARDED = "x-tessera-forwarded-by-gateway"
ADMIN_INFO = "/tessera-admin/v1/info"
TOOK_OVER = "took over the background jobs"
LOST = "lost the leadership"


def gateways_seen_by(server):
    """admin info's `gateways` as {url: entry} through `server` (a non-leader passes the request
    on to the leader), or None while that fails (the leader it is passed on to is gone)."""
    try:
        return {g["url"]: g for g in admin_info(server.url)["gateways"]}
    except (AssertionError, KeyError, TypeError, ValueError, subprocess.TimeoutExpired):
        return None


def sole_leader(server, live, dead=()):
    """The gateway of `live` that the admin view through `server` shows as the one leader, once
    it lists every gateway of `live`, none of `dead`, and exactly one leader; else None."""
    view = gateways_seen_by(server)
    if view is None or any(g.url not in view for g in live) or any(g.url in view for g in dead):
        return None
    leaders = [url for url, g in view.items() if g["role"] == "leader"]
    if len(leaders) != 1:
        return None
    return next((g for g in live if g.url == leaders[0]), None)


def assert_roles(view, leader):
    """One leader running every job and answering (`this`); the others plain gateways."""
    assert view, view
    for url, g in view.items():
        assert ENTRY_KEYS <= set(g), g
        assert g["alive"] is True, g
        if url == leader.url:
            assert (g["role"], sorted(g["jobs"]), g["this"]) == ("leader", sorted(JOBS), True), g
        else:
            assert (g["role"], g["jobs"], g["this"]) == ("gateway", [], False), g


def metrics(server):
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as r:
        return r.read().decode()


def commits_done(text):
    done = re.search(r'^tessera_metadata_commits_total\{outcome="done"\} (\d+)', text, re.M)
    return int(done.group(1)) if done else None


def log_text(server):
    return server.log_path.read_text(errors="replace")


def digest(data):
    return hashlib.sha256(data).hexdigest()


def keys(client, bucket):
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def error_of(call):
    """(code, HTTP status) of the ClientError call() raises; None when it succeeds."""
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None


def put_outcome(client, bucket, key, body):
    """'acknowledged', the HTTP status of a refusal, or 'connection' (refused, reset, closed or
    timed out: botocore's connection errors and Python's own)."""
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body)
        return "acknowledged"
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]
    except (BotoConnectionError, HTTPClientError, ConnectionError) as e:
        print(f"put {key}: {e!r}")
        return "connection"


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


def test_every_gateway_serves_and_one_leads_the_background_jobs(make_server, etcd, tmp_path):
    dirs = [tmp_path / f"disk{i}" for i in range(4)]
    gws = [gateway(make_server, dirs, etcd) for _ in range(3)]
    assert poll(lambda: all(ready(g) for g in gws), 20), "\n".join(g.log_tail() for g in gws)
    assert all(status(g, "/health/live") == 200 for g in gws)
    # Exactly one leader, whichever gateway asked: admin requests go to the leader, which is
    # the gateway that answers (`this`).
    leader = poll(lambda: sole_leader(gws[0], gws), 20, 0.3)
    assert leader, gateways_seen_by(gws[0])
    others = [g for g in gws if g is not leader]
    for g in gws:
        view = gateways_seen_by(g)
        assert view is not None and set(view) == {s.url for s in gws}, view
        assert_roles(view, leader)

    # Admin requests: a non-leader passes them on, signature intact; one already passed on is
    # never passed on again (503), and the leader answers it. The standbys' old header means
    # nothing any more: the gateway serves S3 itself and passes admin requests on as usual.
    for g in others:
        assert raw_request(g, "GET", ADMIN_INFO).status == 200
        looped = raw_request(g, "GET", ADMIN_INFO, headers={FORWARDED: "1"})
        assert looped.status == 503, (looped.status, looped.body[:500])
        stale = {"x-tessera-forwarded-by-standby": "1"}
        assert raw_request(g, "GET", ADMIN_INFO, headers=stale).status == 200
        assert raw_request(g, "GET", "/", headers=stale).status == 200
    direct = raw_request(leader, "GET", ADMIN_INFO, headers={FORWARDED: "1"})
    assert direct.status == 200, (direct.status, direct.body[:500])

    # Read-after-write across gateways: what one acknowledged, the others see at once.
    sa, sb, sc = (s3_client(g) for g in gws)
    sa.create_bucket(Bucket="shared")
    sb.head_bucket(Bucket="shared")
    sc.head_bucket(Bucket="shared")
    objects = {"small": b"tiny", "chunked": random_bytes(3 * MiB + 17, "c")}
    sa.put_object(Bucket="shared", Key="small", Body=objects["small"])
    assert sb.get_object(Bucket="shared", Key="small")["Body"].read() == objects["small"]
    assert keys(sc, "shared") == ["small"]
    sb.put_object(Bucket="shared", Key="chunked", Body=objects["chunked"])
    assert sc.get_object(Bucket="shared", Key="chunked")["Body"].read() == objects["chunked"]
    assert keys(sa, "shared") == ["chunked", "small"]
    sc.put_object(Bucket="shared", Key="gone", Body=b"soon deleted")
    sa.delete_object(Bucket="shared", Key="gone")
    assert error_of(lambda: sb.head_object(Bucket="shared", Key="gone")) in (("404", 404), ("NoSuchKey", 404))
    assert error_of(lambda: sc.get_object(Bucket="shared", Key="nope")) == ("NoSuchKey", 404)

    # Versions made on one gateway are listed on another.
    sa.create_bucket(Bucket="versions")
    sa.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Enabled"})
    assert sc.get_bucket_versioning(Bucket="versions")["Status"] == "Enabled"
    v1 = sa.put_object(Bucket="versions", Key="doc", Body=b"one")["VersionId"]
    v2 = sb.put_object(Bucket="versions", Key="doc", Body=b"two")["VersionId"]
    versions = sc.list_object_versions(Bucket="versions")["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v2, True), (v1, False)]
    assert sc.get_object(Bucket="versions", Key="doc", VersionId=v1)["Body"].read() == b"one"
    marker = sc.delete_object(Bucket="versions", Key="doc")
    assert marker.get("DeleteMarker") is True, marker
    listed = sa.list_object_versions(Bucket="versions")
    assert [(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]] == [(marker["VersionId"], True)]
    assert [v["VersionId"] for v in listed["Versions"]] == [v2, v1]
    assert error_of(lambda: sb.get_object(Bucket="versions", Key="doc")) == ("NoSuchKey", 404)
    assert sb.get_object(Bucket="versions", Key="doc", VersionId=v2)["Body"].read() == b"two"

    # A multipart upload spanning the three gateways: created on A, parts on B, completed on C.
    part1, part2 = random_bytes(5 * MiB, "p1"), random_bytes(MiB + 5, "p2")
    upload = sa.create_multipart_upload(Bucket="shared", Key="multi")["UploadId"]
    assert [u["UploadId"] for u in sb.list_multipart_uploads(Bucket="shared").get("Uploads", [])] == [upload]
    etags = [
        sb.upload_part(Bucket="shared", Key="multi", UploadId=upload, PartNumber=n, Body=body)["ETag"]
        for n, body in ((1, part1), (2, part2))
    ]
    assert [p["ETag"] for p in sc.list_parts(Bucket="shared", Key="multi", UploadId=upload)["Parts"]] == etags
    sc.complete_multipart_upload(
        Bucket="shared", Key="multi", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    objects["multi"] = part1 + part2
    for s in (sa, sb, sc):
        assert digest(s.get_object(Bucket="shared", Key="multi")["Body"].read()) == digest(objects["multi"])
    assert sa.list_multipart_uploads(Bucket="shared").get("Uploads", []) == []

    # 140 chunks, more references than one etcd transaction takes, through a non-leader.
    objects["large"] = random_bytes(140 * MiB, "l")
    s3_client(others[0]).put_object(Bucket="shared", Key="large", Body=objects["large"])
    got = s3_client(others[1]).get_object(Bucket="shared", Key="large")["Body"].read()
    assert len(got) == len(objects["large"]) and digest(got) == digest(objects["large"])
    del got

    # A user added through one gateway signs on the others within 2 s; disabled through it, it
    # is refused everywhere within 2 s (as on one server: InvalidAccessKeyId).
    user = add_user(others[0], "readwrite")
    as_user = {g.url: s3_client(g, access_key=user.access_key, secret_key=user.secret_key) for g in gws}
    signs = poll(lambda: all(error_of(lambda: as_user[g.url].head_object(Bucket="shared", Key="small")) is None
                             for g in gws), 2.5, 0.1)
    assert signs, {g.url: error_of(lambda: as_user[g.url].head_object(Bucket="shared", Key="small")) for g in gws}
    as_user[others[1].url].put_object(Bucket="shared", Key="by-user", Body=b"user")
    assert as_user[leader.url].get_object(Bucket="shared", Key="by-user")["Body"].read() == b"user"
    admin(others[0], "user", "disable", user.name)

    def refusals():
        got = {g.url: error_of(lambda: as_user[g.url].list_objects_v2(Bucket="shared")) for g in gws}
        return got if all(got.values()) else None

    refused = poll(refusals, 2.5, 0.1)
    assert refused and set(refused.values()) == {("InvalidAccessKeyId", 403)}, refused
    objects["by-user"] = b"user"

    # Every gateway reaches etcd and committed metadata itself.
    for g in gws:
        text = metrics(g)
        assert re.search(r"^tessera_etcd_reachable 1$", text, re.M), (g.url, text[-2000:])
        done = commits_done(text)
        assert done is not None and done > 0, (g.url, text[-2000:])

    # The leader dies (SIGKILL: no goodbye, its lease has to expire). The others never stop
    # serving; one of them takes the jobs over within the lease's TTL.
    leader.kill()
    killed = time.monotonic()
    clients = {g.url: s3_client(g) for g in others}
    for g in others:
        assert ready(g), g.log_tail()
        assert clients[g.url].get_object(Bucket="shared", Key="small")["Body"].read() == objects["small"]
    hiccups = []

    def successor():
        for g in others:
            if not ready(g):
                hiccups.append(f"{g.url} unready")
            failed = error_of(lambda: clients[g.url].head_object(Bucket="shared", Key="chunked"))
            if failed:
                hiccups.append(f"{g.url} HEAD {failed}")
        return sole_leader(others[0], others)

    new_leader = poll(successor, 30, 0.2)
    took = time.monotonic() - killed
    print(f"leadership moved {took:.1f} s after the SIGKILL, to {new_leader and new_leader.url}")
    assert new_leader, "\n".join(g.log_tail() for g in others)
    assert took < 15, f"leadership moved after {took:.1f} s"
    assert not hiccups, hiccups
    assert poll(lambda: TOOK_OVER in log_text(new_leader), 5), new_leader.log_tail()
    # The dead gateway's entry goes with its lease.
    gone = poll(lambda: sole_leader(others[0], others, dead=[leader]), max(1.0, killed + 20 - time.monotonic()), 0.3)
    assert gone is new_leader, gateways_seen_by(others[0])
    for g in others:
        # A gateway learns of the new leader through its campaign's watch, a moment later.
        assert poll(lambda: sole_leader(g, others, dead=[leader]) is new_leader, 8, 0.2), gateways_seen_by(g)
        assert_roles(gateways_seen_by(g), new_leader)

    # Nothing was lost, and both survivors write on.
    for g in others:
        s = clients[g.url]
        for key, body in objects.items():
            if key == "large" and g is not new_leader:
                continue  # once is enough for 140 MiB
            got = s.get_object(Bucket="shared", Key=key)["Body"].read()
            assert digest(got) == digest(body), (g.url, key)
        assert keys(s, "shared") == sorted(objects)
        assert [v["VersionId"] for v in s.list_object_versions(Bucket="versions")["Versions"]] == [v2, v1]
    for i, g in enumerate(others):
        clients[g.url].put_object(Bucket="shared", Key=f"after-{i}", Body=f"after the kill {i}".encode())
    for i, g in enumerate(others):
        body = clients[others[1 - i].url].get_object(Bucket="shared", Key=f"after-{i}")["Body"].read()
        assert body == f"after the kill {i}".encode()

    # The killed gateway comes back as a plain gateway, ready, seeing everything.
    leader.start()
    assert poll(lambda: ready(leader), 20), leader.log_tail()
    assert poll(lambda: sole_leader(leader, gws) is new_leader, 15, 0.3), gateways_seen_by(leader)
    assert_roles(gateways_seen_by(leader), new_leader)
    back = s3_client(leader)
    for i in range(len(others)):
        assert back.get_object(Bucket="shared", Key=f"after-{i}")["Body"].read() == f"after the kill {i}".encode()

    # A graceful stop of the leader hands the jobs over at once; the others go on serving.
    rest = [g for g in gws if g is not new_leader]
    stopping = time.monotonic()
    new_leader.stop()
    third = poll(lambda: sole_leader(rest[0], rest), 8, 0.2)
    took = time.monotonic() - stopping
    assert third, "\n".join(g.log_tail() for g in rest)
    assert took < 8, f"handover after a graceful stop took {took:.1f} s"
    assert all(ready(g) for g in rest), "\n".join(g.log_tail() for g in rest)
    # The other survivor learns of the new leader through its campaign's watch, soon after.
    assert poll(lambda: sole_leader(rest[1], rest, dead=[new_leader]) is third, 8, 0.2), gateways_seen_by(rest[1])
    assert_roles(gateways_seen_by(rest[1]), third)
    s3_client(rest[0]).put_object(Bucket="shared", Key="last", Body=b"after the handover")
    assert s3_client(rest[1]).get_object(Bucket="shared", Key="last")["Body"].read() == b"after the handover"


def test_a_frozen_leader_is_fenced_and_goes_on_as_a_gateway(make_server, etcd, tmp_path):
    dirs = [tmp_path / f"disk{i}" for i in range(4)]
    pair = [gateway(make_server, dirs, etcd) for _ in range(2)]
    assert poll(lambda: all(ready(g) for g in pair), 20), "\n".join(g.log_tail() for g in pair)
    a = poll(lambda: sole_leader(pair[0], pair), 20, 0.3)
    assert a, gateways_seen_by(pair[0])
    (b,) = [g for g in pair if g is not a]
    s3a, s3b = s3_client(a), s3_client(b)
    s3a.create_bucket(Bucket="fence-bucket")
    s3a.put_object(Bucket="fence-bucket", Key="before", Body=b"0")
    pid = a.proc.pid

    # The leader freezes (a long GC pause, a stopped VM). B does not need it to serve, and
    # takes the jobs over once its lease expired.
    a.proc.send_signal(signal.SIGSTOP)
    try:
        assert ready(b), b.log_tail()
        assert s3b.get_object(Bucket="fence-bucket", Key="before")["Body"].read() == b"0"
        assert poll(lambda: TOOK_OVER in log_text(b), 30, 0.2), b.log_tail()
        s3b.put_object(Bucket="fence-bucket", Key="while-frozen", Body=b"w")
        assert sole_leader(b, [b]) is b, gateways_seen_by(b)
    finally:
        a.proc.send_signal(signal.SIGCONT)

    # A wakes up believing it leads. Its next commit is fenced (its lease is gone: see
    # metastore-etcd's leader tests), so a write it acknowledges must have landed for real and
    # be visible through B; a write it could not land is refused and is nowhere.
    outcome = put_outcome(s3_client(a, retries={"max_attempts": 1}), "fence-bucket", "stale", b"x")
    print(f"the put through the woken leader: {outcome}")
    if outcome == "acknowledged":
        assert s3b.get_object(Bucket="fence-bucket", Key="stale")["Body"].read() == b"x"
    else:
        assert error_of(lambda: s3b.head_object(Bucket="fence-bucket", Key="stale")) in (
            ("404", 404), ("NoSuchKey", 404))
    # It notices, and goes on as a plain gateway in the same process.
    assert poll(lambda: LOST in log_text(a), 20), a.log_tail()
    assert a.proc.poll() is None and a.proc.pid == pid, a.log_tail()
    assert poll(lambda: ready(a), 30, 0.2), a.log_tail()
    assert poll(lambda: sole_leader(a, pair) is b, 15, 0.3), gateways_seen_by(a)
    assert_roles(gateways_seen_by(a), b)
    assert ready(b), b.log_tail()

    # What either acknowledged, the other reads.
    assert s3_client(a).get_object(Bucket="fence-bucket", Key="while-frozen")["Body"].read() == b"w"
    s3b.put_object(Bucket="fence-bucket", Key="fresh", Body=b"y")
    s3a = s3_client(a)
    assert s3a.get_object(Bucket="fence-bucket", Key="fresh")["Body"].read() == b"y"
    s3a.put_object(Bucket="fence-bucket", Key="from-a", Body=b"z")
    assert s3b.get_object(Bucket="fence-bucket", Key="from-a")["Body"].read() == b"z"
    want = {"before", "while-frozen", "fresh", "from-a"} | ({"stale"} if outcome == "acknowledged" else set())
    assert set(keys(s3a, "fence-bucket")) == want
    assert set(keys(s3b, "fence-bucket")) == want


def test_gateways_are_unready_while_etcd_does_not_answer(make_server, etcd, tmp_path):
    a = gateway(make_server, [tmp_path / f"disk{i}" for i in range(2)], etcd)
    assert poll(lambda: ready(a), 20), a.log_tail()
    s3_client(a).create_bucket(Bucket="while-etcd-away")
    pid = a.proc.pid
    etcd.proc.send_signal(signal.SIGSTOP)
    try:
        # Renewals and commits stop getting through: not ready (a load balancer skips it), no
        # write acknowledged, but alive, in the same process, waiting for etcd.
        unready = poll(lambda: a.proc.poll() is None and status(a, "/health/ready") == 503, 15, 0.2)
        assert unready, a.log_tail()
        assert status(a, "/health/live") == 200
        once = s3_client(a, retries={"max_attempts": 1}, read_timeout=20)
        outcome = put_outcome(once, "while-etcd-away", "k", b"x")
        assert outcome in (503, "connection"), (outcome, a.log_tail())
        assert a.proc.poll() is None and a.proc.pid == pid, a.log_tail()
    finally:
        etcd.proc.send_signal(signal.SIGCONT)
    # etcd is back: the gateway is ready again by itself, no restart, and writes.
    assert poll(lambda: ready(a), 40), a.log_tail()
    assert a.proc.pid == pid and a.proc.poll() is None
    s3 = s3_client(a)
    s3.put_object(Bucket="while-etcd-away", Key="k", Body=b"later")
    assert s3.get_object(Bucket="while-etcd-away", Key="k")["Body"].read() == b"later"
    s3.create_bucket(Bucket="after-etcd-returned")
    s3.put_object(Bucket="after-etcd-returned", Key="k", Body=b"back")
    assert s3.get_object(Bucket="after-etcd-returned", Key="k")["Body"].read() == b"back"


def test_the_key_store_and_encrypted_objects_are_shared_by_gateways(make_server, etcd, tmp_path):
    """SSE-KMS keys live in the shared metadata: a key made through one gateway seals and
    opens on every gateway, SSE-S3 and SSE-C objects read anywhere, and a key disabled
    through one gateway stops serving on the others within their 5 s key cache."""
    from test_encryption import MASTER_KEY

    dirs = [tmp_path / f"disk{i}" for i in range(4)]
    gws = []
    for _ in range(2):
        g = make_server(dirs=dirs, extra_args=["--etcd", etcd.url, "--etcd-prefix", "/tessera/kms/",
                                               "--allow-insecure-sse-c"], start=False)
        g.env_overrides["TESSERA_KMS_SECRET_KEY"] = MASTER_KEY
        gws.append(g.start())
    assert poll(lambda: all(ready(g) for g in gws), 20), "\n".join(g.log_tail() for g in gws)
    admin(gws[0], "kms", "key", "create", "shared-key")
    a, b = (s3_client(g) for g in gws)
    a.create_bucket(Bucket="vault")
    data = random_bytes(2 * MiB + 5, "kms-etcd")
    ssec = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": bytes(range(32))}
    a.put_object(Bucket="vault", Key="kms", Body=data, ServerSideEncryption="aws:kms", SSEKMSKeyId="shared-key")
    b.put_object(Bucket="vault", Key="s3", Body=data, ServerSideEncryption="AES256")
    a.put_object(Bucket="vault", Key="c", Body=data, **ssec)
    for client in (a, b):
        assert client.get_object(Bucket="vault", Key="kms")["Body"].read() == data
        assert client.get_object(Bucket="vault", Key="s3")["Body"].read() == data
        assert client.get_object(Bucket="vault", Key="c", **ssec)["Body"].read() == data

    admin(gws[1], "kms", "key", "disable", "shared-key")

    def refused_everywhere():
        for client in (a, b):
            try:
                client.get_object(Bucket="vault", Key="kms")["Body"].read()
                return False
            except ClientError as e:
                assert e.response["Error"]["Code"] == "KMS.DisabledException", e.response
        return True

    assert poll(refused_everywhere, 10, 0.5), "a disabled key still serves after 10 s"
    assert b.get_object(Bucket="vault", Key="s3")["Body"].read() == data, "other keys serve on"

    # The console on any gateway: its cluster view lists both gateways (the admin request it
    # makes is passed on to the leader), and a share link made on one opens on the other.
    from test_console import api_login, request
    cookie, csrf, _ = api_login(gws[1])
    status, _, out = request(gws[1], "GET", "/console/api/admin/info", headers={"cookie": cookie})
    assert status == 200, out
    assert {g["url"] for g in json.loads(out)["gateways"]} == {g.url for g in gws}
    body = json.dumps({"bucket": "vault", "key": "s3", "expiresSecs": 60})
    status, _, out = request(gws[1], "POST", "/console/api/presign", body,
                             {"cookie": cookie, "x-tessera-csrf": csrf})
    url = json.loads(out)["url"]
    assert url.startswith(gws[1].url + "/vault/s3?"), url
    # As behind a balancer: the other gateway, addressed by the same name (the host is signed).
    path = url[len(gws[1].url):]
    status, _, shared = request(gws[0], "GET", path, headers={"host": f"127.0.0.1:{gws[1].port}"})
    assert (status, shared) == (200, data)


def test_lifecycle_and_notifications_across_gateways(make_server, etcd, tmp_path):
    """Rules and notification configurations live in the shared metadata: a rule put through
    one gateway expires objects written through another (the leader's pass), and events of
    writes through every gateway reach the webhook once each, delivered by the leader."""
    from test_lifecycle import versions
    from test_notifications import Receiver

    hook = Receiver()
    dirs = [tmp_path / f"disk{i}" for i in range(4)]
    gws = []
    for _ in range(2):
        g = make_server(dirs=dirs, extra_args=["--etcd", etcd.url, "--etcd-prefix", "/tessera/governance/",
                                               "--notify-webhook", f"hook={hook.url}"], start=False)
        g.env_overrides["TESSERA_LIFECYCLE_DAY_SECS"] = "2"
        gws.append(g.start())
    try:
        assert poll(lambda: all(ready(g) for g in gws), 20), "\n".join(g.log_tail() for g in gws)
        a, b = (s3_client(g) for g in gws)
        a.create_bucket(Bucket="shared")
        a.put_bucket_lifecycle_configuration(Bucket="shared", LifecycleConfiguration={"Rules": [
            {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}]})
        a.put_bucket_notification_configuration(Bucket="shared", NotificationConfiguration={"QueueConfigurations": [
            {"Id": "all", "QueueArn": "arn:tessera:sqs::hook:webhook",
             "Events": ["s3:ObjectCreated:*", "s3:LifecycleExpiration:*"]}]})
        # (The other gateway has not read the bucket yet, so its 5 s bucket cache is empty.)
        put = b.put_object(Bucket="shared", Key="tmp/x", Body=b"expires")
        assert 'rule-id="tmp"' in put["Expiration"], put
        a.put_object(Bucket="shared", Key="keep", Body=b"stays")
        assert poll(lambda: versions(a, "shared", "tmp/") == [], 20, 0.5), "tmp/x did not expire"
        records = hook.wait_for("shared", 3)
        assert sorted((r["eventName"], r["s3"]["object"]["key"]) for r in records) == [
            ("LifecycleExpiration:Delete", "tmp%2Fx"), ("ObjectCreated:Put", "keep"), ("ObjectCreated:Put", "tmp%2Fx")]
        assert b.get_object(Bucket="shared", Key="keep")["Body"].read() == b"stays"
    finally:
        hook.close()
