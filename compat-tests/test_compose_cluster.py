"""deploy/compose.yaml's cluster profile, run as written but without Docker (these machines
have no container engine): each service becomes a process on its own loopback address.

The translation is mechanical and nothing else: a service name in an argument becomes that
service's address, `0.0.0.0` (and `127.0.0.1`, a container's own loopback, in health checks)
becomes it too, a named volume becomes a temporary directory, `${VAR:-default}` is expanded
from the environment, and the images become binaries: `tessera:latest` the binary under test,
etcd Debian's etcd-server, haproxy Debian's haproxy with the file compose mounts.

The cluster must then do what deploy/README.md promises: serve S3 through HAProxy, which
spreads requests over the three gateways (every one is ready and serves reads and writes
itself; one of them, the leader, also runs the background jobs), and keep every object
readable and writable after the leader, an etcd member and a storage node are killed.
"""

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from conftest import (
    REPO_ROOT,
    ROOT_PASSWORD,
    ROOT_USER,
    _die_with_parent,
    admin_info,
    poll,
    random_bytes,
    s3_client,
    tessera_binary,
)

DEPLOY = REPO_ROOT / "deploy"
MiB = 1 << 20


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`."""

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        got = env.get(name, "")
        if op == ":?" and not got:
            raise AssertionError(f"compose would refuse to start: {arg}")
        return got or (arg if op == ":-" else "")

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def free_block(names: list[str], ports: set[int]) -> dict[str, str]:
    """A loopback address per service, each with every port the file uses free on it."""
    for _ in range(50):
        a, b = random.randint(100, 250), random.randint(1, 250)
        ips = {name: f"127.{a}.{b}.{i + 1}" for i, name in enumerate(names)}
        try:
            for ip in ips.values():
                for port in ports:
                    with socket.socket() as s:
                        s.bind((ip, port))
            return ips
        except OSError:
            continue
    raise AssertionError("no free loopback block")


class Emulation:
    """The profile's services as processes; `ips` maps a service name to its address."""

    def __init__(self, compose: dict, profile: str, base: Path, env: dict[str, str]):
        self.services = {
            name: svc for name, svc in compose["services"].items() if profile in svc.get("profiles", [])
        }
        self.base, self.env = base, env
        ports = {int(p) for p in re.findall(r":(\d{4})\b", yaml.safe_dump(self.services))}
        # One address more, for a gateway that joins with only --etcd.
        self.ips = free_block([*sorted(self.services), "joiner"], ports)
        self.procs: dict[str, subprocess.Popen] = {}

    def host(self, text: str, *, loopback: bool = False, own: str | None = None) -> str:
        for name, ip in self.ips.items():
            text = re.sub(rf"(?<![\w.-]){re.escape(name)}:(\d+)", rf"{ip}:\1", text)
        if own:
            text = text.replace("0.0.0.0:", f"{self.ips[own]}:")
            if loopback:
                text = text.replace("127.0.0.1:", f"{self.ips[own]}:")
        return text

    def volumes(self, name: str) -> dict[str, Path]:
        """Container path -> host path for the service's volumes (named or bind)."""
        out = {}
        for spec in self.services[name].get("volumes", []):
            source, target = spec.split(":")[:2]
            if source.startswith("."):
                out[target] = (DEPLOY / source).resolve()
            else:
                out[target] = self.base / source
                out[target].mkdir(exist_ok=True)
        return out

    def argv(self, name: str) -> list[str]:
        svc = self.services[name]
        volumes = self.volumes(name)

        def arg(a: str) -> str:
            a = self.host(a, own=name)
            for target, path in volumes.items():
                if a == target:
                    a = str(path)
                elif a.endswith("=" + target):
                    a = a[: -len(target)] + str(path)
            return a

        command = [arg(a) for a in svc.get("command", [])]
        image = svc["image"]
        if image.startswith("tessera"):
            return [str(tessera_binary()), *command]
        if "etcd" in image:
            assert command[0] == "etcd"
            return [shutil.which("etcd") or "etcd", *command[1:]]
        if image.startswith("haproxy"):
            (cfg,) = [p for t, p in volumes.items() if t.endswith("haproxy.cfg")]
            text = self.host(cfg.read_text())
            text = re.sub(r"bind :(\d+)", rf"bind {self.ips[name]}:\1", text)
            out = self.base / "haproxy.cfg"
            out.write_text(text)
            return [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", str(out)]
        raise AssertionError(f"no emulation for image {image}")

    def start(self, name: str):
        svc = self.services[name]
        env = dict(os.environ)
        env.pop("TESSERA_ENDPOINT", None)
        env.update({k: interpolate(str(v), self.env) for k, v in (svc.get("environment") or {}).items()})
        log = open(self.base / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(
            self.argv(name), env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        log.close()

    def healthy(self, name: str) -> bool:
        """The service's health check: its own, or the Dockerfile's for tessera images."""
        test = self.services[name].get("healthcheck", {}).get("test")
        if test is None:
            if not self.services[name]["image"].startswith("tessera"):
                return self.procs[name].poll() is None
            # The image's HEALTHCHECK: `/tessera health`, whose default endpoint is the
            # container's own 127.0.0.1:9000.
            test = ["CMD", "/tessera", "health", "--endpoint", "http://127.0.0.1:9000"]
        assert test[0] == "CMD" and test[1] == "/tessera"
        argv = [str(tessera_binary()), *(self.host(a, loopback=True, own=name) for a in test[2:])]
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0

    def ready_gateways(self) -> list[str]:
        return [
            n for n in self.services
            if n.startswith("gateway") and self.procs[n].poll() is None
            and subprocess.run(
                [str(tessera_binary()), "health", "--ready", "--endpoint", f"http://{self.ips[n]}:9000"],
                capture_output=True, timeout=10,
            ).returncode == 0
        ]

    def log(self, name: str) -> str:
        return (self.base / f"{name}.log").read_text(errors="replace")[-3000:]

    def kill(self, name: str):
        self.procs[name].kill()
        self.procs[name].wait()

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()


def start_order(services: dict) -> list[str]:
    """Services after what they depend on (compose's depends_on)."""
    order: list[str] = []
    while len(order) < len(services):
        before = len(order)
        for name, svc in sorted(services.items()):
            if name not in order and all(d in order for d in svc.get("depends_on", [])):
                order.append(name)
        assert len(order) > before, "a dependency cycle in compose.yaml"
    return order


@pytest.fixture
def compose_cluster(tmp_path):
    for tool in ["etcd", "haproxy"]:
        assert shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists(), f"{tool} is missing (scripts/test installs it)"
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    env = {"TESSERA_ROOT_USER": ROOT_USER, "TESSERA_ROOT_PASSWORD": ROOT_PASSWORD,
           "TESSERA_CLUSTER_SECRET": "compose-cluster-secret-0123456789"}
    emu = Emulation(compose, "cluster", tmp_path, env)
    try:
        for name in start_order(emu.services):
            emu.start(name)
            # compose starts a dependant once its dependency runs; the cluster must cope with
            # members still coming up, but waiting for health keeps failures readable.
            if not name.startswith("etcd"):
                assert poll(lambda: emu.healthy(name), 60, 0.3), f"{name} never healthy:\n{emu.log(name)}"
        yield emu
    finally:
        emu.stop()


def test_compose_cluster_survives_an_etcd_member_then_a_gateway_and_a_node(compose_cluster):
    emu = compose_cluster
    names = set(emu.services)
    assert {"etcd1", "etcd2", "etcd3", "haproxy"} <= names
    nodes = sorted(n for n in names if n.startswith("node"))
    gateways = sorted(n for n in names if n.startswith("gateway"))
    assert len(nodes) == 6 and len(gateways) == 3

    # Every gateway is ready, so HAProxy spreads requests over all three.
    assert poll(lambda: sorted(emu.ready_gateways()) == gateways, 60, 0.5), "\n".join(emu.log(g) for g in gateways)
    assert all(emu.healthy(g) for g in gateways)

    url = f"http://{emu.ips['haproxy']}:9000"
    s3 = s3_client(url)
    s3.create_bucket(Bucket="compose")
    # HAProxy counts a server as up until its first check: wait until a request too large for
    # its retries (100 KiB) has gone to every gateway in turn and succeeded each time.
    probe = random_bytes(100 << 10, 9)
    streak = [0]

    def settled():
        ok = _try(lambda: s3.put_object(Bucket="compose", Key="probe", Body=probe))
        streak[0] = streak[0] + 1 if ok else 0
        return streak[0] >= 2 * len(gateways)

    assert poll(settled, 30, 0.2), emu.log("haproxy")
    s3.delete_object(Bucket="compose", Key="probe")
    # One leader runs the background jobs; the other two are plain gateways.
    listed = poll(lambda: _try(lambda: admin_info(url)["gateways"]), 20, 0.5)
    assert listed and sorted(g["role"] for g in listed) == ["gateway", "gateway", "leader"], listed
    (leader,) = [name_of(emu, g["url"]) for g in listed if g["role"] == "leader"]
    assert leader in gateways, listed
    objects = {"tiny": b"hello compose", "mid": random_bytes(3 * MiB, 1), "big": random_bytes(12 * MiB, 2)}
    for key, data in objects.items():
        s3.put_object(Bucket="compose", Key=key, Body=data)
    # HAProxy sent writes to every gateway, and each committed them itself.
    for g in gateways:
        assert commits_done(f"http://{emu.ips[g]}:9000") > 0, emu.log(g)

    # An etcd member dies: the leader keeps its role (its lease renewals and commits go to the
    # other members), and every gateway stays ready and keeps serving.
    emu.kill("etcd1")
    for i in range(10):
        s3.put_object(Bucket="compose", Key=f"during/{i}", Body=random_bytes(64 << 10, 10 + i))
        time.sleep(1)
    assert sorted(emu.ready_gateways()) == gateways, "a gateway became unready with one etcd member down"
    roles = {name_of(emu, g["url"]): g["role"] for g in admin_info(url)["gateways"]}
    assert roles[leader] == "leader", f"the leader lost its role with one etcd member down: {roles}"

    # Then the leader and a storage node die: the other two gateways go on serving, and one of
    # them takes the background jobs over once the leader's lease expired.
    emu.kill(leader)
    emu.kill(nodes[-1])
    survivors = [g for g in gateways if g != leader]
    started = time.monotonic()
    assert sorted(emu.ready_gateways()) == survivors, "\n".join(emu.log(g) for g in survivors)
    got = poll(lambda: _try(lambda: s3.get_object(Bucket="compose", Key="big")["Body"].read()), 60, 0.5)
    took = time.monotonic() - started
    assert got == objects["big"], "\n".join(emu.log(g) for g in gateways)
    print(f"served again through HAProxy {took:.1f} s after the kills")
    assert sorted(emu.ready_gateways()) == survivors, "\n".join(emu.log(g) for g in survivors)
    listed = poll(lambda: _try(lambda: (lambda g: g if len(g) == 2 else None)(admin_info(url)["gateways"])), 30, 0.5)
    assert listed and sorted(g["role"] for g in listed) == ["gateway", "leader"], listed
    assert sorted(name_of(emu, g["url"]) for g in listed) == survivors, listed

    for key, data in objects.items():
        assert s3.get_object(Bucket="compose", Key=key)["Body"].read() == data, key
    s3.put_object(Bucket="compose", Key="after", Body=random_bytes(2 * MiB, 3))
    for i in range(10):
        assert s3.get_object(Bucket="compose", Key=f"during/{i}")["Body"].read() == random_bytes(64 << 10, 10 + i)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="compose")["Contents"]]
    assert keys == ["after", "big", *(f"during/{i}" for i in range(10)), "mid", "tiny"]

    # A new gateway joins with only --etcd, the cluster secret and the root credentials: the
    # storage nodes come from etcd. The others stop (a graceful stop hands over at once).
    etcd_urls = ",".join(f"http://{emu.ips[e]}:2379" for e in ("etcd2", "etcd3"))
    joiner_url = f"http://{emu.ips['joiner']}:9000"
    env = dict(os.environ, TESSERA_ROOT_USER=ROOT_USER, TESSERA_ROOT_PASSWORD=ROOT_PASSWORD,
               TESSERA_CLUSTER_SECRET=emu.env["TESSERA_CLUSTER_SECRET"])
    env.pop("TESSERA_ENDPOINT", None)
    with open(emu.base / "joiner.log", "wb") as log:
        emu.procs["joiner"] = subprocess.Popen(
            [str(tessera_binary()), "serve", f"--address={emu.ips['joiner']}:9000", f"--etcd={etcd_urls}"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    three = poll(lambda: _try(lambda: (lambda g: g if len(g) == 3 else None)(admin_info(url)["gateways"])), 30, 0.5)
    assert three, emu.log("joiner")
    roles = {name_of(emu, g["url"]): g["role"] for g in three}
    assert roles.get("joiner") == "gateway" and sorted(roles.values()) == ["gateway", "gateway", "leader"], roles
    joined = s3_client(joiner_url)
    # It serves at once, beside the others.
    got = poll(lambda: _try(lambda: joined.get_object(Bucket="compose", Key="big")["Body"].read()), 30, 0.5)
    assert got == objects["big"], emu.log("joiner")
    for g in gateways:
        if emu.procs[g].poll() is None:
            emu.procs[g].terminate()
            emu.procs[g].wait(timeout=30)
    # Alone, it leads.
    alone = poll(lambda: _try(lambda: [g["role"] for g in admin_info(joiner_url)["gateways"]] == ["leader"]), 15, 0.5)
    assert alone, emu.log("joiner")
    assert joined.get_object(Bucket="compose", Key="after")["Body"].read() == random_bytes(2 * MiB, 3)
    joined.put_object(Bucket="compose", Key="joined", Body=b"by the joiner")
    assert "storage nodes as recorded in etcd" in (emu.base / "joiner.log").read_text()


def _try(f):
    try:
        return f()
    except Exception:  # noqa: BLE001 - any failure here means "not yet"
        return None


def name_of(emu: Emulation, url: str) -> str:
    """The service whose gateway URL (as admin info lists it) this is."""
    return next((n for n, ip in emu.ips.items() if url == f"http://{ip}:9000"), url)


def commits_done(url: str) -> int:
    """The gateway's `tessera_metadata_commits_total{outcome="done"}` (0 if absent)."""
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    done = re.search(r'^tessera_metadata_commits_total\{outcome="done"\} (\d+)', text, re.M)
    return int(done.group(1)) if done else 0


def test_concurrent_load_over_three_gateways_survives_kills_with_exact_refcounts(compose_cluster):
    """200 PUT, DELETE and CopyObject operations on overlapping, deduplicated content, spread
    by 8 clients over the three gateways directly (each serves its share itself, and a copy
    may read a source another gateway wrote just before); an operation that fails is retried
    on the next gateway. A third of the way in, the leader and an etcd member are killed.
    Every acknowledged write must read back bit-exact, and `admin check` must find the
    reference counts exact and no chunk lost, then (after its sweep) nothing left to clean."""
    import random as rnd
    import threading
    from concurrent.futures import ThreadPoolExecutor


    emu = compose_cluster
    gateways = sorted(n for n in emu.services if n.startswith("gateway"))
    assert poll(lambda: sorted(emu.ready_gateways()) == gateways, 60, 0.5), "\n".join(emu.log(g) for g in gateways)
    urls = [f"http://{emu.ips[g]}:9000" for g in gateways]
    listed = poll(lambda: _try(lambda: admin_info(urls[0])["gateways"]), 20, 0.5)
    assert listed and sorted(g["role"] for g in listed) == ["gateway", "gateway", "leader"], listed
    (leader,) = [name_of(emu, g["url"]) for g in listed if g["role"] == "leader"]
    assert leader in gateways, listed
    fast = dict(connect_timeout=2, read_timeout=30)
    clients = [s3_client(u, **fast) for u in urls]
    clients[0].create_bucket(Bucket="load")

    # Content that overlaps: 1 MiB blocks (one chunk each) in several combinations.
    block = [random_bytes(MiB, 100 + i) for i in range(4)]
    bodies = [block[0] + block[1], block[1] + block[2], b"".join(block), block[3],
              block[2] + block[0], b"tiny one", b"tiny two", block[0] + block[1] + b"tail"]
    workers, ops_each, keys_each = 8, 25, 5
    done, retried = [0], [0]
    served = [0] * len(clients)  # operations each gateway acknowledged
    lock = threading.Lock()

    def attempt(start: int, fn):
        """fn(client) on gateway `start`, then the next ones, for up to 45 s."""
        deadline = time.monotonic() + 45
        i = start
        while True:
            try:
                result = fn(clients[i % len(clients)])
                with lock:
                    served[i % len(clients)] += 1
                return True, result
            except Exception:  # noqa: BLE001 - a dead gateway (or a lost answer): try the next
                if time.monotonic() > deadline:
                    return False, None
                with lock:
                    retried[0] += 1
                i += 1
                time.sleep(0.3)

    def worker(w: int):
        r = rnd.Random(w)
        # Each worker owns its keys, so what each must hold is known: a value, None (deleted),
        # or, after an operation that never succeeded, either of two.
        state: dict[str, set] = {f"k{w}-{i}": {None} for i in range(keys_each)}
        for n in range(ops_each):
            key = f"k{w}-{r.randrange(keys_each)}"
            before = state[key]
            kind = r.choices(["put", "delete", "copy"], [5, 2, 3])[0]
            sources = [k for k, v in state.items() if len(v) == 1 and None not in v and k != key]
            if kind == "copy" and sources:
                src = r.choice(sources)
                ok, _ = attempt(w + n, lambda c: c.copy_object(
                    Bucket="load", Key=key, CopySource={"Bucket": "load", "Key": src}))
                after = set(state[src])
            elif kind == "delete":
                ok, _ = attempt(w + n, lambda c: c.delete_object(Bucket="load", Key=key))
                after = {None}
            else:
                body = r.choice(bodies)
                ok, _ = attempt(w + n, lambda c: c.put_object(Bucket="load", Key=key, Body=body))
                after = {body}
            state[key] = after if ok else before | after
            with lock:
                done[0] += 1
        return state

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(worker, w) for w in range(workers)]
        assert poll(lambda: done[0] >= workers * ops_each // 3, 120, 0.05)
        emu.kill(leader)
        emu.kill("etcd1")
        at_kill = done[0]
        states = [f.result() for f in futures]
    print(f"killed after {at_kill} of {workers * ops_each} operations; {retried[0]} attempts retried elsewhere; "
          f"acknowledged per gateway: {dict(zip(gateways, served))}")
    assert at_kill < workers * ops_each * 2 // 3, "the kills came too late to hit the load"
    assert retried[0] > 0, "no operation met the kills"
    # Not only through one gateway: each of the three acknowledged its share.
    assert all(n > 0 for n in served), dict(zip(gateways, served))
    survivors = [g for g in gateways if g != leader]
    assert sorted(emu.ready_gateways()) == survivors, "\n".join(emu.log(g) for g in survivors)

    expected = {k: v for s in states for k, v in s.items()}
    uncertain = [k for k, v in expected.items() if len(v) > 1]
    assert not uncertain, f"operations that never succeeded on any gateway: {uncertain}"
    reader = clients[(gateways.index(leader) + 1) % len(clients)]
    for key, (want,) in sorted(expected.items()):
        try:
            got = reader.get_object(Bucket="load", Key=key)["Body"].read()
        except ClientError as e:
            assert e.response["Error"]["Code"] == "NoSuchKey", e
            got = None
        assert got == want, f"{key}: {None if got is None else len(got)} bytes, want {None if want is None else len(want)}"

    # Leadership of the background jobs moved to a surviving gateway.
    some_url = f"http://{emu.ips[survivors[0]]}:9000"
    listed = poll(lambda: _try(lambda: (lambda g: g if len(g) == 2 else None)(admin_info(some_url)["gateways"])), 30, 0.5)
    assert listed, _try(lambda: admin_info(some_url))
    assert sorted(name_of(emu, g["url"]) for g in listed) == survivors, listed
    leaders = [g for g in listed if g["role"] == "leader"]
    assert len(leaders) == 1 and "gc" in leaders[0]["jobs"], listed
    new_url = leaders[0]["url"]

    # Exact reference counts, no chunk lost; the repair sweeps what the killed gateway left
    # (shards of uploads it never committed), after which a check finds nothing at all.
    report = admin_check(new_url, repair=True)
    assert report["refcounts"]["mismatched"] == [], report["refcounts"]
    assert report["shards"]["chunks_unrecoverable"] == [], report["shards"]
    again = admin_check(new_url, repair=False)
    assert again["clean"], again


def admin_check(url: str, repair: bool) -> dict:
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(TESSERA_ROOT_USER=ROOT_USER, TESSERA_ROOT_PASSWORD=ROOT_PASSWORD)
    out = subprocess.run(
        [str(tessera_binary()), "admin", "--endpoint", url, "--json", "check", *([] if repair else ["--no-repair"])],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, env=env,
    )
    assert out.returncode in (0, 2), out.stderr
    return json.loads(out.stdout)
