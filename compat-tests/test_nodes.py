"""Remote storage nodes: a gateway over six `tessera node` processes on loopback addresses.

Nodes listen on 127.0.0.1 ... 127.0.0.6 (all loopback on Linux) at one port, so the gateway
is given them with the ellipsis, as an operator would: ``--node http://127.0.0.{1...6}:PORT``.
Six disks make one erasure set of 3+3 whose write quorum is 4, so writes continue while two
nodes are down.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import (
    MiB,
    TesseraServer,
    _die_with_parent,
    poll,
    random_bytes,
    s3_client,
    tessera_binary,
)
from test_durability import admin, check_clean, heal, info

SECRET = "compat-tests-cluster-secret"


def port_free_on_all(hosts: list[str]) -> int:
    """A port that is free on every one of `hosts`."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        try:
            for h in hosts[1:]:
                with socket.socket() as s:
                    s.bind((h, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on every loopback address")


class Node:
    """One `tessera node` process serving `dirs` at host:port."""

    def __init__(self, base: Path, dirs: list[Path], host: str, port: int, certs_dir: Path | None = None) -> None:
        self.base, self.dirs, self.host, self.port = base, dirs, host, port
        self.certs_dir = certs_dir
        self.proc: subprocess.Popen | None = None
        self.log_path = base / "node.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.certs_dir else 'http'}://{self.host}:{self.port}"

    def start(self, host: str | None = None) -> "Node":
        if host is not None:
            self.host = host
        env = dict(os.environ, TESSERA_CLUSTER_SECRET=SECRET)
        tls = ["--certs-dir", str(self.certs_dir)] if self.certs_dir else []
        cmd = [str(tessera_binary()), "node", "--address", f"{self.host}:{self.port}", *tls, *map(str, self.dirs)]
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {' '.join(cmd)}\n".encode())
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

        def listening() -> bool:
            assert self.proc.poll() is None, f"node exited: {self.log_path.read_text()[-2000:]}"
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return True
            except OSError:
                return False

        assert poll(listening, 20), f"node {self.url} never listened"
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """Six nodes of one disk each and a gateway over them (metadata in its --meta-dir)."""
    monkeypatch.setenv("TESSERA_CLUSTER_SECRET", SECRET)
    hosts = [f"127.0.0.{i}" for i in range(1, 7)]
    port = port_free_on_all(hosts)
    nodes = []
    for i, host in enumerate(hosts):
        base = tmp_path / f"node{i + 1}"
        base.mkdir()
        nodes.append(Node(base, [base / "disk0"], host, port).start())
    gateway = TesseraServer(
        tmp_path / "gateway",
        dirs=[],
        extra_args=[
            "--node", f"http://127.0.0.{{1...6}}:{port}",
            "--meta-dir", str(tmp_path / "gateway" / "meta"),
            "--disk-check-secs", "1",
        ],
    )
    gateway.start(timeout=60)
    yield gateway, nodes
    gateway.stop()
    for n in nodes:
        n.stop()


def node_states(doc: dict) -> dict[str, str]:
    return {n["url"]: n["state"] for n in doc["nodes"]}


def wait_nodes(gateway, expect: dict[str, str], timeout: float = 20) -> dict:
    doc = poll(lambda: (lambda d: d if node_states(d) == {**node_states(d), **expect} else None)(info(gateway)), timeout, 0.3)
    assert doc, f"nodes never reached {expect}: {node_states(info(gateway))}"
    return doc


def object_set() -> dict[str, bytes]:
    """Inline, single-chunk, multi-chunk and duplicate objects."""
    objs = {
        "small/a": random_bytes(3000, "a"),
        "small/empty": b"",
        "one-chunk": random_bytes(1 * MiB, "c1"),
        "multi/seven": random_bytes(7 * MiB + 123, "c7"),
    }
    objs["dup/seven-again"] = objs["multi/seven"]
    return objs


def test_six_nodes_survive_two_killed_during_traffic_and_heal(cluster):
    gateway, nodes = cluster
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="nodes")
    acked: dict[str, bytes] = {}
    for key, body in object_set().items():
        s3.put_object(Bucket="nodes", Key=key, Body=body)
        acked[key] = body
    doc = info(gateway)
    assert len(doc["disks"]) == 6 and doc["layout"]["parity"] == 3, doc["layout"]
    assert all(n["state"] == "online" and n["node_id"] for n in doc["nodes"]), doc["nodes"]

    # Uploads and downloads run while two nodes are killed with SIGKILL.
    stop = threading.Event()
    failures: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        client = s3_client(gateway)
        i = 0
        while not stop.is_set():
            key = f"during/{w}/{i}"
            body = random_bytes((i % 4) * 700 * 1024 + 5000, key)
            try:
                client.put_object(Bucket="nodes", Key=key, Body=body)
            except Exception as exc:  # a write may fail while quorum is lost; it is never acked
                with lock:
                    failures.append(f"PUT {key}: {exc}")
            else:
                with lock:
                    acked[key] = body
            i += 1

    def reader() -> None:
        client = s3_client(gateway)
        while not stop.is_set():
            with lock:
                items = list(acked.items())
            for key, body in items[:6]:
                got = client.get_object(Bucket="nodes", Key=key)["Body"].read()
                assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), key

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(writer, w) for w in range(2)] + [pool.submit(reader) for _ in range(2)]
        time.sleep(1.0)
        nodes[1].kill()
        time.sleep(0.3)
        nodes[4].kill()
        time.sleep(4.0)
        stop.set()
        for f in futures:
            f.result(timeout=120)
    # Two of six lost leaves 4 = the write quorum: writes keep being accepted.
    assert not failures, failures[:5]
    assert len(acked) > len(object_set()) + 10, len(acked)

    doc = wait_nodes(gateway, {nodes[1].url: "offline", nodes[4].url: "offline"})
    assert [d["state"] for d in doc["disks"]].count("offline") == 2, doc["disks"]
    # Every acknowledged write is readable byte-exact with the two nodes down.
    for key, body in acked.items():
        assert s3.get_object(Bucket="nodes", Key=key)["Body"].read() == body, key
    # More writes land degraded and are queued for heal.
    for i in range(3):
        key = f"degraded/{i}"
        acked[key] = random_bytes(2 * MiB + i, key)
        s3.put_object(Bucket="nodes", Key=key, Body=acked[key])
    assert info(gateway)["heal"]["queue"] > 0

    # The nodes come back: their disks are online again and heal catches them up.
    nodes[1].start()
    nodes[4].start()
    wait_nodes(gateway, {n.url: "online" for n in nodes})
    assert poll(lambda: info(gateway)["heal"]["queue"] == 0, 30, 0.3), info(gateway)["heal"]
    heal(gateway)
    check_clean(gateway)

    # Proof that heal rewrote the missing shards: with two *other* nodes down, every object
    # (including those written while 2 and 5 were away) still needs the healed shards.
    nodes[0].kill()
    nodes[2].kill()
    wait_nodes(gateway, {nodes[0].url: "offline", nodes[2].url: "offline"})
    for key, body in acked.items():
        assert s3.get_object(Bucket="nodes", Key=key)["Body"].read() == body, key


def test_a_node_is_known_by_its_id_not_its_address(cluster, tmp_path):
    gateway, nodes = cluster
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="moves")
    objs = object_set()
    for key, body in objs.items():
        s3.put_object(Bucket="moves", Key=key, Body=body)
    before = {n["url"]: n["node_id"] for n in info(gateway)["nodes"]}

    # Nodes 1 and 2 come back on each other's address (the re-leased IP case).
    a, b = nodes[0], nodes[1]
    host_a, host_b = a.host, b.host
    a.kill()
    b.kill()
    a.start(host=host_b)
    b.start(host=host_a)
    def swapped():
        doc = info(gateway)
        ids = {n["url"]: n["node_id"] for n in doc["nodes"]}
        return doc if ids[a.url] == before[b.url] and all(d["state"] == "online" for d in doc["disks"]) else None
    doc = poll(swapped, 20, 0.3)
    assert doc, info(gateway)["nodes"]
    assert {n["url"]: n["node_id"] for n in doc["nodes"]}[b.url] == before[a.url]
    # Disk 1 is now served from node 2's old address: positions follow the disks.
    disk1 = next(d for d in doc["disks"] if d["index"] == 0)
    assert disk1["path"].startswith(f"http://{host_b}:"), disk1

    # Their shards are used: with three other nodes down, reads need both moved nodes.
    for n in nodes[2:5]:
        n.kill()
    wait_nodes(gateway, {n.url: "offline" for n in nodes[2:5]})
    for key, body in objs.items():
        assert s3.get_object(Bucket="moves", Key=key)["Body"].read() == body, key
    for n in nodes[2:5]:
        n.start()

    # A restarted gateway given the nodes in another order places every disk where it was.
    wait_nodes(gateway, {n.url: "online" for n in nodes})
    gateway.stop()
    port = nodes[0].port
    reordered = ",".join(f"http://127.0.0.{i}:{port}" for i in range(6, 0, -1))
    gateway.extra_args[1] = reordered
    gateway.start(timeout=60)
    doc = info(gateway)
    assert [d["state"] for d in doc["disks"]] == ["online"] * 6, doc["disks"]
    assert doc["disks"][0]["path"].startswith(f"http://{host_b}:"), doc["disks"]
    for key, body in objs.items():
        assert s3.get_object(Bucket="moves", Key=key)["Body"].read() == body, key
    check_clean(gateway)


def test_nodes_refuse_a_second_deployment_and_an_empty_meta_dir(cluster, tmp_path):
    gateway, nodes = cluster
    s3_client(gateway).create_bucket(Bucket="taken")
    urls = ",".join(n.url for n in nodes)
    env = dict(os.environ, TESSERA_CLUSTER_SECRET=SECRET)
    base = [str(tessera_binary()), "serve", "--address", "127.0.0.1:0", "--node", urls]

    # The nodes' disks belong to a deployment: a gateway with empty metadata must not serve
    # them (it would see no objects and sweep every shard as an orphan).
    proc = subprocess.run(
        [*base, "--meta-dir", str(tmp_path / "other-meta")],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "holds no metadata" in proc.stderr + proc.stdout, proc.stderr

    # A wrong cluster secret: every node refuses, so the gateway cannot start.
    proc = subprocess.run(
        [*base, "--meta-dir", str(tmp_path / "m2")],
        env=dict(env, TESSERA_CLUSTER_SECRET="not-the-cluster-secret"),
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "403" in proc.stderr + proc.stdout or "AccessDenied" in proc.stderr + proc.stdout, proc.stderr

    # The running gateway was not disturbed.
    assert s3_client(gateway).head_bucket(Bucket="taken")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert [d["state"] for d in info(gateway)["disks"]] == ["online"] * 6


def test_an_empty_replacement_node_is_adopted_while_running(cluster):
    gateway, nodes = cluster
    s3 = s3_client(gateway)
    s3.create_bucket(Bucket="replaced")
    objs = object_set()
    for key, body in objs.items():
        s3.put_object(Bucket="replaced", Key=key, Body=body)
    doc = info(gateway)
    position = next(n["positions"] for n in doc["nodes"] if n["url"] == nodes[2].url)
    assert len(position) == 1, doc["nodes"]

    # Node 3's machine is replaced: same address, an empty disk.
    nodes[2].kill()
    wait_nodes(gateway, {nodes[2].url: "offline"})
    shutil.rmtree(nodes[2].dirs[0])
    nodes[2].dirs[0].mkdir()
    nodes[2].start()

    def adopted():
        d = info(gateway)
        n = next(n for n in d["nodes"] if n["url"] == nodes[2].url)
        return d if n["state"] == "online" and n["positions"] == position and all(
            x["state"] == "online" for x in d["disks"]) else None
    doc = poll(adopted, 30, 0.3)
    assert doc, info(gateway)["nodes"]
    log = gateway.log_path.read_text(errors="replace")
    assert "adopted an empty node disk as replacement disk" in log
    assert "restart the gateway" not in log
    # The heal the adoption starts refills it; then three other nodes go down, so every
    # object needs the refilled shards.
    heal(gateway)
    check_clean(gateway)
    for n in (nodes[0], nodes[1], nodes[3]):
        n.kill()
    wait_nodes(gateway, {n.url: "offline" for n in (nodes[0], nodes[1], nodes[3])})
    for key, body in objs.items():
        assert s3.get_object(Bucket="replaced", Key=key)["Body"].read() == body, key
