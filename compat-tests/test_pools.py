"""Elastic capacity with the real binary: a pool of 4 directories added to a running 4-disk
deployment (EC 2+2), a throttled rebalance under 2 writers and 2 readers that is SIGKILLed
halfway and resumes after the restart, then a decommission of the first pool, whose
directories are deleted afterwards: the added pool becomes the home pool (the command line's
disks, holding the metadata replicas).

Every acknowledged object reads back bit-exact at the end of each step, the pools hold
within 10% of each other after the rebalance (by the metadata and by the shard files on
disk), and ``admin check --no-repair`` is clean.

The first test writes about 64 MiB; ``TESSERA_POOL_TEST_MIB=2048`` runs it at the issue's
2 GiB (a few minutes, not in CI), with the rebalance's bandwidth scaled to match.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT_PASSWORD, ROOT_USER, poll, random_bytes

MiB = 1024 * 1024
# Data the first test writes before adding a pool, in MiB (see the module doc).
TOTAL_MIB = int(os.environ.get("TESSERA_POOL_TEST_MIB", "64"))


def admin(server, *args: str, timeout: float = 120) -> tuple[int, object, str]:
    """``tessera admin --json ARGS`` against ``server``: (exit code, JSON or None, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(TESSERA_ROOT_USER=ROOT_USER, TESSERA_ROOT_PASSWORD=ROOT_PASSWORD)
    cmd = [str(server.binary), "admin", "--endpoint", server.url, "--json", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except json.JSONDecodeError:
        doc = None
    return proc.returncode, doc, proc.stderr


def shard_bytes(dirs) -> int:
    total = 0
    for d in dirs:
        root = Path(d) / "shards"
        for dirpath, _dirs, names in os.walk(root):
            total += sum((Path(dirpath) / n).stat().st_size for n in names)
    return total


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_all(s3, bucket: str, expected: dict) -> None:
    for (key, version), want in sorted(expected.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        kwargs = {"Bucket": bucket, "Key": key}
        if version:
            kwargs["VersionId"] = version
        got = s3.get_object(**kwargs)["Body"].read()
        assert digest(got) == want, f"{key} {version} differs"


def fill(s3, bucket: str, count: int, seed: str) -> dict:
    """``count`` objects of about 2 MiB in a new bucket; returns what each must read back as."""
    s3.create_bucket(Bucket=bucket)
    expected = {}
    for i in range(count):
        data = random_bytes(2 * MiB + i, seed=f"{seed}{i}")
        s3.put_object(Bucket=bucket, Key=f"o{i}", Body=data)
        expected[(f"o{i}", None)] = digest(data)
    return expected


def assert_balanced(pools: list) -> None:
    """The two pools of ``admin pool list`` hold within 10% of each other."""
    held = {p["id"]: p["chunk_bytes"] for p in pools}
    assert abs(held[0] - held[1]) <= 0.10 * max(held.values()), pools


def job(server) -> dict:
    rc, doc, err = admin(server, "rebalance", "status")
    assert rc == 0, err
    return doc


def job_if_answered(server):
    """The move job's status, or None while the admin API does not answer (on etcd, while no
    gateway leads yet)."""
    rc, doc, _ = admin(server, "rebalance", "status")
    return doc if rc == 0 else None


def job_finished(server, timeout: float = 240) -> dict:
    """Waits for the move job to end, which must be finished; returns its status."""
    assert poll(lambda: job(server)["state"] != "running", timeout=timeout, interval=0.3), job(server)
    final = job(server)
    assert final["state"] == "finished", final
    return final


def assert_check_clean(server) -> None:
    rc, report, err = admin(server, "check", "--no-repair", timeout=300)
    assert rc == 0 and report["clean"], (report, err)


class Workload:
    """2 writers (new objects, copies of existing ones, deletes) and 2 readers, tolerant of a
    server that is down for a while; remembers every acknowledged write."""

    def __init__(self, server, bucket: str, base: dict) -> None:
        self.server, self.bucket, self.base = server, bucket, dict(base)
        self.sources = sorted(k for k in self.base if k[1] is None)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.written: dict = {}
        self.deleted: set = set()
        self.read_errors: list = []
        self.errors: list = []  # failures are expected while the server is down; kept to explain
        self.ops = 0
        self.threads = [threading.Thread(target=self.writer, args=(w,), daemon=True) for w in range(2)]
        self.threads += [threading.Thread(target=self.reader, daemon=True) for _ in range(2)]

    def client(self):
        return self.server.client(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=20)

    def writer(self, w: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            key = f"live/w{w}-{i}"
            data = random_bytes(1 * MiB + 4096 * i, seed=f"{w}-{i}")
            try:
                s3 = self.client()
                s3.put_object(Bucket=self.bucket, Key=key, Body=data)
                with self.lock:
                    self.written[(key, None)] = digest(data)
                src = self.sources[i % len(self.sources)]
                s3.copy_object(Bucket=self.bucket, Key=f"live/copy-w{w}-{i}", CopySource={"Bucket": self.bucket, "Key": src[0]})
                with self.lock:
                    self.written[(f"live/copy-w{w}-{i}", None)] = self.base[src]
                if i % 3 == 0:
                    s3.delete_object(Bucket=self.bucket, Key=key)
                    with self.lock:
                        self.written.pop((key, None), None)
                        self.deleted.add(key)
                with self.lock:
                    self.ops += 1
            except Exception as e:
                self.errors.append(repr(e))
                time.sleep(0.3)  # the server is being killed or restarted

    def reader(self) -> None:
        keys = sorted(k for k in self.base if k[1] is None)
        n = 0
        while not self.stop.is_set():
            key = keys[n % len(keys)]
            n += 1
            try:
                got = self.client().get_object(Bucket=self.bucket, Key=key[0])["Body"].read()
            except Exception:
                time.sleep(0.3)
                continue
            if digest(got) != self.base[key]:
                self.read_errors.append(key)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


@pytest.mark.timeout(600 + TOTAL_MIB)
def test_pool_add_rebalance_through_sigkill_then_decommission(make_server, tmp_path):
    server = make_server(4)
    s3 = server.client()
    bucket = "elastic"
    s3.create_bucket(Bucket=bucket)
    expected: dict = {}
    # Mixed data, TOTAL_MIB of chunks: small (inline), large, multipart, versions,
    # deduplicated copies.
    for i in range(40):
        data = random_bytes(100 + i, seed=f"small{i}")
        s3.put_object(Bucket=bucket, Key=f"small/{i}", Body=data)
        expected[(f"small/{i}", None)] = digest(data)
    for i in range(max(12, (TOTAL_MIB - 28) // 3)):
        data = random_bytes(3 * MiB + i * 1000, seed=f"large{i}")
        s3.put_object(Bucket=bucket, Key=f"large/{i}", Body=data)
        expected[(f"large/{i}", None)] = digest(data)
    for i in range(2):
        parts = [random_bytes(5 * MiB, seed=f"mp{i}-{p}") for p in range(2)] + [random_bytes(MiB, seed=f"mp{i}-t")]
        up = s3.create_multipart_upload(Bucket=bucket, Key=f"multipart/{i}")
        etags = [
            s3.upload_part(Bucket=bucket, Key=f"multipart/{i}", UploadId=up["UploadId"], PartNumber=n + 1, Body=p)["ETag"]
            for n, p in enumerate(parts)
        ]
        s3.complete_multipart_upload(
            Bucket=bucket, Key=f"multipart/{i}", UploadId=up["UploadId"],
            MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n + 1} for n, e in enumerate(etags)]},
        )
        expected[(f"multipart/{i}", None)] = digest(b"".join(parts))
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for v in range(3):
        data = random_bytes(2 * MiB, seed=f"ver{v}")
        vid = s3.put_object(Bucket=bucket, Key="versioned", Body=data)["VersionId"]
        expected[("versioned", vid)] = digest(data)
    expected[("versioned", None)] = digest(data)
    for i in range(6):
        s3.copy_object(Bucket=bucket, Key=f"copies/{i}", CopySource={"Bucket": bucket, "Key": f"large/{i}"})
        expected[(f"copies/{i}", None)] = expected[(f"large/{i}", None)]

    # With one pool, nothing can be decommissioned or rebalanced.
    rc, _, err = admin(server, "decommission", "0")
    assert rc != 0 and "only pool" in err, err
    rc, _, err = admin(server, "rebalance", "start")
    assert rc != 0 and "only one pool" in err, err

    # A pool of 4 new directories, given with an ellipsis, taken into service at once.
    new_base = tmp_path / "new"
    new_dirs = [new_base / f"d{i}" for i in range(1, 5)]
    rc, added, err = admin(server, "pool", "add", f"{new_base}/d{{1...4}}")
    assert rc == 0, err
    assert added["id"] == 1 and added["disks"] == 4 and added["parity"] == 2, added
    assert all((d / ".tessera" / "format.json").is_file() for d in new_dirs)
    # Non-empty or already used disks are refused.
    rc, _, err = admin(server, "pool", "add", str(server.dirs[0]))
    assert rc != 0 and "empty" in err, err

    with Workload(server, bucket, expected) as load:
        bandwidth = max(4, TOTAL_MIB // 16)
        rc, started, err = admin(server, "rebalance", "start", "--bandwidth-mib", str(bandwidth))
        assert rc == 0, err
        assert started["state"] == "running"
        # SIGKILL part way: once a sixth of the chunks to move (half of them all) have moved.
        kill_at = max(5, TOTAL_MIB // 12)
        moving = poll(lambda: job(server)["chunks_moved"] >= kill_at, timeout=120, interval=0.2)
        assert moving, job(server)
        before = job(server)
        assert before["state"] == "running", before
        server.kill()
        server.start()
        resumed = poll(lambda: job(server)["chunks_moved"] > before["chunks_moved"], timeout=60, interval=0.3)
        assert resumed, "the rebalance did not resume after the restart"
        # Unthrottle by restarting the job? No: it keeps its bandwidth; wait for the end.
        done = poll(lambda: job(server)["state"] != "running", timeout=240, interval=0.1)
        # Writes after the job are placed by free space, not by the rebalance: stopping them
        # at once keeps the balance checked below the one the job left.
        load.stop.set()
        assert done, job(server)
        time.sleep(1)
    final = job(server)
    assert final["state"] == "finished", final
    assert final["chunks_moved"] > before["chunks_moved"]
    assert not load.read_errors, load.read_errors[:5]
    assert load.ops > 0, ("the writers never got through during the rebalance", load.errors[-3:])
    expected.update(load.written)

    rc, pools, err = admin(server, "pool", "list")
    assert rc == 0, err
    assert_balanced(pools)
    on_disk = [shard_bytes(server.dirs), shard_bytes(new_dirs)]
    assert abs(on_disk[0] - on_disk[1]) <= 0.10 * max(on_disk), on_disk
    read_all(s3, bucket, expected)
    for key in load.deleted:
        with pytest.raises(Exception):
            s3.head_object(Bucket=bucket, Key=key)
    assert_check_clean(server)

    # Before any handover, pool 1's disks on the command line are refused: their metadata
    # replicas are empty while they hold shards (serving would show an empty store).
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(TESSERA_ROOT_USER=ROOT_USER, TESSERA_ROOT_PASSWORD=ROOT_PASSWORD)
    server.stop()
    pool0_dirs = server.dirs
    server.dirs = new_dirs
    early = subprocess.run(server.command(), capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    server.dirs = pool0_dirs
    assert early.returncode != 0, early.stdout[-2000:]
    assert "are empty, but the disks hold shards" in early.stderr, early.stderr[-2000:]
    server.start()
    s3 = server.client()

    # Decommission the first pool: every chunk moves to pool 1, the metadata replicas follow,
    # and pool 1 becomes the home pool (the command line's disks).
    deployment = admin(server, "info")[1]["deployment_id"]
    rc, _, err = admin(server, "decommission", "0")
    assert rc == 0, err
    job_finished(server)
    rc, pools, err = admin(server, "pool", "list")
    assert sorted((p["id"], p["state"]) for p in pools) == [(0, "retired"), (1, "active")], pools
    assert shard_bytes(server.dirs) == 0
    read_all(s3, bucket, expected)
    server.stop()
    # The old command line is refused, and the answer names the disks to give instead.
    old = subprocess.run(server.command(), capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert old.returncode != 0, old.stdout[-2000:]
    assert "pool 1 is the home pool" in old.stderr and str(new_base) in old.stderr, old.stderr[-2000:]
    # The first pool's directories go; pool 1's are the command line now.
    for d in server.dirs:
        shutil.rmtree(d)
    server.dirs = new_dirs
    server.start()
    s3 = server.client()
    read_all(s3, bucket, expected)
    assert_check_clean(server)
    rc, info, err = admin(server, "info")
    assert info["deployment_id"] == deployment, info
    assert all(str(new_base) in r for r in info["metadata_replicas"]), info["metadata_replicas"]
    rc, pools, err = admin(server, "pool", "list")
    assert sorted((p["id"], p["state"]) for p in pools) == [(0, "retired"), (1, "active")], pools
    home = next(p for p in pools if p["id"] == 1)
    assert [d["state"] for d in home["disk_list"]] == ["online"] * 4, home
    # Writes go on, and the users' sealed secrets still open (the deployment id is kept).
    s3.put_object(Bucket=bucket, Key="after-home-moved", Body=b"x" * 5000)
    assert s3.get_object(Bucket=bucket, Key="after-home-moved")["Body"].read() == b"x" * 5000


@pytest.mark.timeout(300)
def test_rebalance_on_etcd_is_finished_by_the_gateway_that_takes_over(make_server, tmp_path):
    from test_etcd_gateways import Etcd, gateway, ready

    etcd = Etcd(tmp_path)
    try:
        dirs = [tmp_path / f"disk{i}" for i in range(4)]
        a = gateway(make_server, dirs, etcd)
        assert poll(lambda: ready(a), 20), a.log_tail()
        b = gateway(make_server, dirs, etcd)
        expected = fill(a.client(), "etcd-pools", 16, "e")
        new_base = tmp_path / "new"
        rc, added, err = admin(a, "pool", "add", f"{new_base}/d{{1...4}}")
        assert rc == 0, err
        # Recorded in etcd: the other gateway passes admin requests on and sees the same pools.
        rc, pools, err = admin(b, "pool", "list")
        assert rc == 0 and [p["id"] for p in pools] == [0, 1], (pools, err)
        rc, _, err = admin(a, "rebalance", "start", "--bandwidth-mib", "4")
        assert rc == 0, err
        assert poll(lambda: job(a)["chunks_moved"] >= 3, timeout=60, interval=0.2), job(a)
        before = job(a)
        a.kill()  # the rebalance leader dies mid-job
        # b serves throughout; once it leads (within the lease's TTL) it goes on with the job.
        assert ready(b), b.log_tail()
        moved_on = lambda: (j := job_if_answered(b)) is not None and j["chunks_moved"] > before["chunks_moved"]
        assert poll(moved_on, timeout=60, interval=0.3), (job_if_answered(b), b.log_tail())
        job_finished(b, timeout=120)
        read_all(b.client(), "etcd-pools", expected)
        rc, pools, err = admin(b, "pool", "list")
        assert_balanced(pools)
        assert_check_clean(b)
        # On etcd too, the first pool can go: pool 1 becomes the home pool, and the next
        # gateway starts with its disks on the command line.
        rc, _, err = admin(b, "decommission", "0")
        assert rc == 0, err
        job_finished(b, timeout=120)
        b.stop()
        for d in dirs:
            shutil.rmtree(d)
        c = gateway(make_server, [new_base / f"d{i}" for i in range(1, 5)], etcd)
        assert poll(lambda: ready(c), 30, 0.2), c.log_tail()
        read_all(c.client(), "etcd-pools", expected)
        assert_check_clean(c)
    finally:
        etcd.stop()


@pytest.mark.timeout(300)
def test_storage_nodes_two_added_to_four_then_the_first_four_decommissioned(make_server, tmp_path, monkeypatch):
    from test_nodes import SECRET, Node, port_free_on_all

    monkeypatch.setenv("TESSERA_CLUSTER_SECRET", SECRET)
    hosts = [f"127.0.0.{i}" for i in range(7, 13)]
    port = port_free_on_all(hosts)
    meta = tmp_path / "gateway-meta"
    first = []  # pool 0: 4 nodes of one disk
    added = []  # pool 1: 2 nodes of two disks
    try:
        for i, host in enumerate(hosts):
            base = tmp_path / f"node{i}"
            base.mkdir()
            if i < 4:
                first.append(Node(base, [base / "a"], host, port).start())
            else:
                added.append(Node(base, [base / "a", base / "b"], host, port).start())
        server = make_server(
            dirs=[], extra_args=["--node", f"http://127.0.0.{{7...10}}:{port}", "--meta-dir", str(meta)]
        )
        s3 = server.client()
        expected = fill(s3, "node-pools", 10, "n")
        deployment = admin(server, "info")[1]["deployment_id"]
        rc, pool, err = admin(server, "pool", "add", f"http://127.0.0.{{11...12}}:{port}")
        assert rc == 0, err
        assert pool["disks"] == 4 and pool["parity"] == 2, pool
        rc, _, err = admin(server, "rebalance", "start")
        assert rc == 0, err
        assert job_finished(server, timeout=120)["chunks_moved"] > 0
        rc, pools, err = admin(server, "pool", "list")
        assert_balanced(pools)
        # Every node disk took shards.
        assert all(shard_bytes([d]) > 0 for n in first + added for d in n.dirs)
        read_all(s3, "node-pools", expected)
        # The added pool survives a restart: recorded, and opened from the record.
        server.stop()
        server.start()
        s3 = server.client()
        read_all(s3, "node-pools", expected)
        assert_check_clean(server)

        # The first four nodes go: drained, then the gateway runs on the two added nodes only.
        rc, _, err = admin(server, "decommission", "0")
        assert rc == 0, err
        job_finished(server, timeout=120)
        assert all(shard_bytes(n.dirs) == 0 for n in first)
        server.stop()
        for n in first:
            n.stop()
            shutil.rmtree(n.base)
        server.extra_args = ["--node", f"http://127.0.0.{{11...12}}:{port}", "--meta-dir", str(meta)]
        server.start()
        s3 = server.client()
        read_all(s3, "node-pools", expected)
        assert_check_clean(server)
        rc, info, err = admin(server, "info")
        assert info["deployment_id"] == deployment, info
        rc, pools, err = admin(server, "pool", "list")
        assert sorted((p["id"], p["state"]) for p in pools) == [(0, "retired"), (1, "active")], pools
    finally:
        for n in first + added:
            n.stop()


@pytest.mark.timeout(300)
def test_a_disk_lost_in_each_pool_mid_rebalance(make_server, tmp_path):
    server = make_server(4, extra_args=["--disk-check-secs", "1"])
    s3 = server.client()
    expected = fill(s3, "lossy", 12, "l")
    new_base = tmp_path / "new"
    rc, _, err = admin(server, "pool", "add", f"{new_base}/d{{1...4}}")
    assert rc == 0, err
    rc, _, err = admin(server, "rebalance", "start", "--bandwidth-mib", "2")
    assert rc == 0, err
    assert poll(lambda: job(server)["chunks_moved"] >= 2, timeout=60, interval=0.2), job(server)
    # One disk of each pool goes mid-move: one the chunks come from, one they go to.
    lost = [server.dirs[3], new_base / "d2"]
    for d in lost:
        shutil.rmtree(d)
    data = random_bytes(3 * MiB, seed="during-loss")
    s3.put_object(Bucket="lossy", Key="written-degraded", Body=data)
    expected[("written-degraded", None)] = digest(data)
    final = job_finished(server, timeout=120)
    assert final["chunks_failed"] == 0, final
    read_all(s3, "lossy", expected)  # degraded: rebuilt from the other shards
    rc, pools, err = admin(server, "pool", "list")
    assert_balanced(pools)
    states = {p["id"]: [d["state"] for d in p["disk_list"]] for p in pools}
    assert states == {0: ["online"] * 3 + ["offline"], 1: ["online", "offline", "online", "online"]}, states

    # The disks come back empty: adopted while running, and heal fills them.
    for d in lost:
        d.mkdir()

    def all_online():
        _, pools, _ = admin(server, "pool", "list")
        return all(d["state"] == "online" for p in pools for d in p["disk_list"])

    assert poll(all_online, timeout=30, interval=0.5), admin(server, "pool", "list")[1]
    rc, _, err = admin(server, "heal", timeout=300)
    assert rc == 0, err
    assert all(shard_bytes([d]) > 0 for d in lost), "heal did not refill the adopted disks"
    assert_check_clean(server)
    read_all(s3, "lossy", expected)
