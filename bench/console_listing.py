#!/usr/bin/env python3
"""How fast the web console pages through a bucket of 100,000 keys.

Starts `tessera serve` ($BIN, default the static build) on a temporary directory, writes
N keys (default 100,000; empty objects, 16 threads) spread over 100 folders plus 10,000 at
the top level, logs in to the console and times what its object browser asks for: the first
page of a folder (ListObjectsV2, delimiter "/", 200 keys), the pages that follow through
continuation tokens, and a prefix search, each through /console/api/s3/ exactly as the page
does. Prints the median and the slowest of each.

    BIN=~/.cache/tessera-target/x86_64-unknown-linux-gnu/release/tessera python3 bench/console_listing.py
"""
import concurrent.futures
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import boto3
from botocore.config import Config

BIN = os.environ.get("BIN") or str(Path.home() / ".cache/tessera-target/x86_64-unknown-linux-gnu/release/tessera")
N = int(os.environ.get("KEYS", "100000"))
USER, SECRET = "benchadmin", "benchadmin-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TESSERA_ROOT_USER=USER, TESSERA_ROOT_PASSWORD=SECRET)
        log = open(Path(tmp) / "server.log", "w")
        proc = subprocess.Popen([BIN, "serve", "--address", f"127.0.0.1:{port}", f"{tmp}/d{{1...4}}"],
                                env=env, stdout=log, stderr=log)
        try:
            run(port)
        finally:
            proc.terminate()
            proc.wait(10)


def run(port):
    url = f"http://127.0.0.1:{port}"
    c = boto3.client("s3", endpoint_url=url, aws_access_key_id=USER, aws_secret_access_key=SECRET,
                     region_name="us-east-1", config=Config(max_pool_connections=32))
    for _ in range(100):
        try:
            c.list_buckets()
            break
        except Exception:
            time.sleep(0.2)
    c.create_bucket(Bucket="many")
    keys = [f"top-{i:06d}" for i in range(10_000)] + [f"folder-{i % 100:03d}/key-{i:06d}" for i in range(N - 10_000)]
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: c.put_object(Bucket="many", Key=k, Body=b""), keys))
    print(f"wrote {len(keys)} keys in {time.time() - started:.0f} s")

    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("POST", "/console/api/login", json.dumps({"accessKey": USER, "secretKey": SECRET}),
                 {"x-tessera-csrf": "login", "content-type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    cookie = resp.headers["set-cookie"].split(";")[0]

    def page(prefix, token=None):
        q = {"list-type": "2", "delimiter": "/", "prefix": prefix, "max-keys": "200"}
        if token:
            q["continuation-token"] = token
        t = time.perf_counter()
        conn.request("GET", "/console/api/s3/many?" + urllib.parse.urlencode(q), headers={"cookie": cookie})
        r = conn.getresponse()
        body = r.read().decode()
        took = (time.perf_counter() - t) * 1000
        assert r.status == 200, body
        nxt = body.split("<NextContinuationToken>")[1].split("<")[0] if "<NextContinuationToken>" in body else None
        return took, nxt

    def report(name, times):
        print(f"{name}: {len(times)} requests, median {statistics.median(times):.1f} ms, slowest {max(times):.1f} ms")

    report("first page of the top folder (100 folders + 200 keys)", [page("")[0] for _ in range(20)])
    report("first page of a 900-key folder", [page(f"folder-{i:03d}/")[0] for i in range(20)])
    times, token = [], None
    while True:
        took, token = page("", token)
        times.append(took)
        if not token:
            break
    report("every page of the top folder, through continuation tokens", times)
    report("prefix search 'top-0099'", [page("top-0099")[0] for _ in range(20)])


if __name__ == "__main__":
    sys.exit(main())
