"""The deployment files: systemd units checked by `systemd-analyze verify`, and the
Dockerfile's final image emulated without a Docker engine (these machines have none): its
ENTRYPOINT and CMD run from a root holding only what the image copies, as its USER, and its
HEALTHCHECK command must pass.

Root is needed for the chroot; CI runs as root. Without root that test says so and skips.
"""

import json
import os
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT, ROOT_PASSWORD, ROOT_USER, free_port, poll, s3_client, tessera_binary

DEPLOY = REPO_ROOT / "deploy"


@pytest.mark.parametrize("unit", ["tessera.service", "tessera-node.service"])
def test_systemd_units_verify_cleanly(unit, tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian package systemd)"
    text = (DEPLOY / "systemd" / unit).read_text()
    assert "ExecStart=/usr/local/bin/tessera " in text
    # verify insists that ExecStart exists: point it at the binary under test.
    (tmp_path / unit).write_text(text.replace("/usr/local/bin/tessera", str(tessera_binary())))
    out = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # Unknown or misspelt directives are only warnings: there must be none.
    assert unit not in out.stderr, out.stderr
    for hardening in ["NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=", "User=tessera"]:
        assert hardening in text, hardening


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile's last stage, continuation lines joined."""
    lines, current = [], ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            lines.append(current)
            current = ""
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), rest.strip()))
    assert len(stages) >= 2, "a multi-stage build: the toolchain stays out of the image"
    return stages[-1]


def test_the_image_runs_as_its_dockerfile_says(tmp_path):
    stage = final_stage((REPO_ROOT / "Dockerfile").read_text())
    get = lambda name: [args for word, args in stage if word == name]  # noqa: E731
    assert get("FROM") == ["scratch"]
    assert get("VOLUME") == ["/data"]
    (user,) = get("USER")
    uid, gid = (int(x) for x in user.split(":"))
    assert uid != 0 and gid != 0
    entrypoint = json.loads(get("ENTRYPOINT")[0])
    cmd = json.loads(get("CMD")[0])
    (healthcheck,) = get("HEALTHCHECK")
    probe = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    if os.geteuid() != 0:
        pytest.skip("emulating the image needs root (chroot)")

    # The image's filesystem: what its COPY lines put there, nothing else.
    root = tmp_path / "image"
    (root / "data").mkdir(parents=True)
    shutil.copy2(tessera_binary(), root / "tessera")
    os.chown(root / "data", uid, gid)
    port = free_port()
    env = {"TESSERA_ROOT_USER": ROOT_USER, "TESSERA_ROOT_PASSWORD": ROOT_PASSWORD,
           "TESSERA_ADDRESS": f"127.0.0.1:{port}", "TESSERA_ENDPOINT": f"http://127.0.0.1:{port}"}
    chroot = [shutil.which("chroot") or "/usr/sbin/chroot", f"--userspec={uid}:{gid}", str(root)]
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(chroot + entrypoint + cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
    try:
        healthy = lambda: subprocess.run(chroot + probe, env=env, capture_output=True).returncode == 0  # noqa: E731
        assert poll(healthy, 20, 0.3), log.read_text()
        s3 = s3_client(f"http://127.0.0.1:{port}")
        s3.create_bucket(Bucket="image")
        s3.put_object(Bucket="image", Key="k", Body=b"from the image")
        assert s3.get_object(Bucket="image", Key="k")["Body"].read() == b"from the image"
        # The data is the volume's, written by the image's user.
        assert (root / "data" / ".tessera" / "format.json").stat().st_uid == uid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()
    # With the server gone the health check fails, as Docker must see it.
    assert subprocess.run(chroot + probe, env=env, capture_output=True).returncode != 0


KUBE = DEPLOY / "kubernetes"
KUBE_VERSION = "1.37.0"


def kube_docs() -> dict[tuple[str, str], dict]:
    """(kind, name) -> document, over every file kustomization.yaml lists."""
    import yaml

    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    docs = {}
    for file in kustomization["resources"]:
        for doc in yaml.safe_load_all((KUBE / file).read_text()):
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def kube_validate(files: list) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBE_VERSION, *map(str, files)],
        capture_output=True, text=True,
    )


def test_kubernetes_manifests_pass_the_schemas(tmp_path):
    import yaml

    files = [KUBE / f for f in yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"]]
    out = kube_validate(files)
    assert out.returncode == 0, out.stdout + out.stderr
    # Every resource was checked against a schema (an unknown kind is only a warning).
    assert "Couldn't find schema" not in out.stdout + out.stderr, out.stdout + out.stderr
    assert out.stdout.count(" passed for resource ") == len(kube_docs())

    # The check bites: a misspelt field in a copy fails it.
    broken = tmp_path / "nodes.yaml"
    broken.write_text((KUBE / "nodes.yaml").read_text().replace("containerPort:", "containerPrt:"))
    assert kube_validate([broken]).returncode != 0


def container(doc: dict) -> dict:
    (c,) = doc["spec"]["template"]["spec"]["containers"]
    return c


def test_kubernetes_manifests_agree_with_each_other():
    """Names, counts and keys that must match across files: what a schema cannot see."""
    import yaml

    docs = kube_docs()
    nodes, etcd = docs[("StatefulSet", "tessera-node")], docs[("StatefulSet", "tessera-etcd")]
    gateways, secret = docs[("Deployment", "tessera-gateway")], docs[("Secret", "tessera")]
    args = dict(a.removeprefix("--").split("=", 1) for a in container(gateways)["args"] if a.startswith("--"))

    # --node names every storage node through the headless Service, by its stable name.
    n = nodes["spec"]["replicas"]
    assert docs[("Service", nodes["spec"]["serviceName"])]["spec"]["clusterIP"] == "None"
    assert args["node"] == f"http://tessera-node-{{0...{n - 1}}}.{nodes['spec']['serviceName']}:9100"
    claims = [t["metadata"]["name"] for t in nodes["spec"]["volumeClaimTemplates"]]
    mounts = {m["name"]: m["mountPath"] for m in container(nodes)["volumeMounts"]}
    node_dirs = [a for a in container(nodes)["args"] if a.startswith("/")]
    assert node_dirs == [mounts[c] for c in claims], "one PVC per disk, each served"

    # --etcd lists every member of the etcd StatefulSet.
    e = etcd["spec"]["replicas"]
    assert args["etcd"].split(",") == [
        f"http://tessera-etcd-{i}.{etcd['spec']['serviceName']}:2379" for i in range(e)
    ]

    # The erasure quorum: writes need k+1 of the set's disks (parity by disk count, README).
    disks = n * len(claims)
    parity = 0 if disks == 1 else 1 if disks <= 3 else 2 if disks <= 5 else 3 if disks <= 7 else 4
    pdb = docs[("PodDisruptionBudget", "tessera-node")]["spec"]
    assert pdb["minAvailable"] == (disks - parity + 1) // len(claims)
    assert docs[("PodDisruptionBudget", "tessera-etcd")]["spec"]["minAvailable"] == e // 2 + 1

    # Every secret reference names a key the Secret has, for every container.
    for doc in docs.values():
        if "template" not in doc.get("spec", {}):
            continue
        for var in container(doc).get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "tessera" and ref["key"] in secret["stringData"], var

    # Probes ask the health endpoints on a declared port.
    for doc in (nodes, gateways):
        c = container(doc)
        ports = {p["name"] for p in c["ports"]}
        for probe in ("livenessProbe", "readinessProbe"):
            assert c[probe]["httpGet"]["path"] in ("/health/live", "/health/ready")
            assert c[probe]["httpGet"]["port"] in ports
    # Every gateway serves: they update one at a time, and drains keep a majority serving.
    assert gateways["spec"]["strategy"]["type"] == "RollingUpdate"
    assert gateways["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 1
    g = gateways["spec"]["replicas"]
    assert 1 <= docs[("PodDisruptionBudget", "tessera-gateway")]["spec"]["minAvailable"] < g

    # The optional ServiceMonitor scrapes the gateways' Service on a port it has.
    monitor = yaml.safe_load((KUBE / "servicemonitor.yaml").read_text())
    service = docs[("Service", "tessera")]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {ep["port"] for ep in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["endpoints"][0]["authorization"]["credentials"]["key"] in secret["stringData"]
