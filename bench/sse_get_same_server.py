#!/usr/bin/env python3
"""Encrypted against plain large GET inside one tessera (issue 21): one server on 4 directories
(EC 2+2) with a master key holds the same 256 MiB of random bytes twice, SSE-S3 and plain; the
script reads them alternately (boto3, 6 s each, twice) and reports MB/s and the server's CPU
seconds per GiB read (from /proc), which the client sharing the cores does not blur.

    BIN=path/to/tessera python3 bench/sse_get_same_server.py
"""

import base64
import os
import socket
import subprocess
import tempfile
import time

import boto3
from botocore.config import Config

BIN = os.environ.get("BIN") or os.path.expanduser("~/.cache/tessera-target/x86_64-unknown-linux-gnu/release/tessera")
BUCKET = "ssebench"


def main() -> None:
    base = tempfile.mkdtemp(prefix="sse-get-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, TESSERA_ROOT_USER="benchadmin", TESSERA_ROOT_PASSWORD="benchpassword1",
               TESSERA_KMS_SECRET_KEY="bench:" + base64.b64encode(b"k" * 32).decode())
    server = subprocess.Popen([BIN, "serve", "--address", f"127.0.0.1:{port}"] + [f"{base}/d{i}" for i in range(4)],
                              env=env, stdout=open(f"{base}/log", "w"), stderr=subprocess.STDOUT)
    c = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="benchadmin",
                     aws_secret_access_key="benchpassword1", region_name="us-east-1",
                     config=Config(s3={"addressing_style": "path"}))

    def cpu() -> float:
        fields = open(f"/proc/{server.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def read(key: str) -> int:
        body = c.get_object(Bucket=BUCKET, Key=key)["Body"]
        n = 0
        while chunk := body.read(8 << 20):
            n += len(chunk)
        return n

    def rate(key: str, secs: float = 6) -> float:
        n, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < secs:
            n += read(key)
        return n / (time.monotonic() - t0) / 1e6

    def cpu_per_gib(key: str, times: int = 8) -> float:
        t0 = cpu()
        for _ in range(times):
            read(key)
        return (cpu() - t0) / (times / 4)

    try:
        for _ in range(100):
            try:
                c.list_buckets()
                break
            except Exception:
                time.sleep(0.2)
        c.create_bucket(Bucket=BUCKET)
        data = os.urandom(256 << 20)
        c.put_object(Bucket=BUCKET, Key="enc", Body=data, ServerSideEncryption="AES256")
        c.put_object(Bucket=BUCKET, Key="plain", Body=data)
        for _ in range(2):
            enc, plain = rate("enc"), rate("plain")
            print(f"GET 256 MiB: SSE-S3 {enc:.0f} MB/s, plain {plain:.0f} MB/s, ratio {enc / plain:.2f}", flush=True)
            print(f"server CPU s/GiB: SSE-S3 {cpu_per_gib('enc'):.3f}, plain {cpu_per_gib('plain'):.3f}", flush=True)
    finally:
        server.terminate()
        server.wait()
        subprocess.run(["rm", "-rf", base], check=False)


if __name__ == "__main__":
    main()
