"""Virtual-host-style addressing (`tessera serve --domain example.test`): the bucket is
named by the Host header (`bucket.example.test:PORT`), and path-style requests keep
working on the same server.

Nothing resolves example.test: boto3's connections are sent to 127.0.0.1 by patching
socket.getaddrinfo for *.example.test inside this module (traffic stays on loopback),
and hand-signed requests connect to 127.0.0.1 with an explicit Host header.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import urllib.parse
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

import aws_chunked as ac
from conftest import ROOT_PASSWORD, ROOT_USER, s3_client

DOMAIN = "example.test"
KiB = 1024
MiB = 1024 * 1024


def _strip_ns(root: ET.Element) -> ET.Element:
    for el in root.iter():
        if "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


@pytest.fixture(scope="module")
def loopback_domain():
    """Resolve example.test and *.example.test to 127.0.0.1 for this module only."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode()
        if host and (host == DOMAIN or host.endswith("." + DOMAIN)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", fake)
        yield


@pytest.fixture(scope="module")
def vserver(server_factory, tmp_path_factory):
    srv = server_factory(tmp_path_factory.mktemp("vhost"), 1, extra_args=["--domain", DOMAIN])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def vc(vserver, loopback_domain):
    """boto3 client using virtual-host style against http://example.test:PORT."""
    return s3_client(f"http://{DOMAIN}:{vserver.port}", s3={"addressing_style": "virtual"})


@pytest.fixture(scope="module")
def pc(vserver):
    """Ordinary path-style client on 127.0.0.1."""
    return s3_client(vserver)


@pytest.fixture(scope="module")
def vbucket(vc, new_bucket_name):
    name = new_bucket_name("vhost")
    vc.create_bucket(Bucket=name)
    return name


def vhost_request(vserver, bucket, method, path, *, query=None, headers=None, body=b"", host=None):
    """Hand-signed request on a loopback connection with Host: <bucket>.example.test:PORT."""
    host = host or (f"{bucket}.{DOMAIN}:{vserver.port}" if bucket else f"{DOMAIN}:{vserver.port}")
    signed = ac.sign_headers(
        method,
        path,
        host=host,
        headers=headers,
        query=query,
        payload_hash=hashlib.sha256(body).hexdigest(),
        access_key=ROOT_USER,
        secret_key=ROOT_PASSWORD,
    )
    return ac.send("127.0.0.1", vserver.port, method, path, signed.headers, body, query=query)


def test_requests_really_use_the_virtual_host(vc, vbucket):
    seen = []
    vc.meta.events.register("before-send.s3.*", lambda request, **kw: seen.append(request.url))
    vc.put_object(Bucket=vbucket, Key="probe", Body=b"probe")
    assert seen and urllib.parse.urlsplit(seen[-1]).hostname == f"{vbucket}.{DOMAIN}", seen
    assert urllib.parse.urlsplit(seen[-1]).path == "/probe"


def test_bucket_created_virtually_is_listed(vc, pc, vbucket):
    assert vbucket in [b["Name"] for b in vc.list_buckets()["Buckets"]]
    assert vbucket in [b["Name"] for b in pc.list_buckets()["Buckets"]]
    vc.head_bucket(Bucket=vbucket)


def test_put_get_head_delete_virtual(vc, pc, vbucket, random_bytes):
    data = random_bytes(300 * KiB, "vhost-object")
    key = "dir/sub dir/obj+1.bin"
    vc.put_object(Bucket=vbucket, Key=key, Body=data, ContentType="application/x-vhost", Metadata={"m": "v"})
    got = vc.get_object(Bucket=vbucket, Key=key)
    assert got["Body"].read() == data
    assert got["ContentType"] == "application/x-vhost" and got["Metadata"] == {"m": "v"}
    assert vc.get_object(Bucket=vbucket, Key=key, Range="bytes=10-19")["Body"].read() == data[10:20]
    assert vc.head_object(Bucket=vbucket, Key=key)["ContentLength"] == len(data)
    # The same object seen path-style on the same server.
    assert pc.get_object(Bucket=vbucket, Key=key)["Body"].read() == data
    vc.delete_object(Bucket=vbucket, Key=key)
    with pytest.raises(ClientError) as exc:
        pc.head_object(Bucket=vbucket, Key=key)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_list_virtual(vc, pc, vbucket):
    keys = ["list/a", "list/b/1", "list/b/2", "list/c"]
    for k in keys:
        pc.put_object(Bucket=vbucket, Key=k, Body=k.encode())
    v2 = vc.list_objects_v2(Bucket=vbucket, Prefix="list/", Delimiter="/")
    assert [o["Key"] for o in v2.get("Contents", [])] == ["list/a", "list/c"]
    assert [p["Prefix"] for p in v2.get("CommonPrefixes", [])] == ["list/b/"]
    v1 = vc.list_objects(Bucket=vbucket, Prefix="list/")
    assert [o["Key"] for o in v1["Contents"]] == keys
    pages = list(vc.get_paginator("list_objects_v2").paginate(Bucket=vbucket, Prefix="list/", PaginationConfig={"PageSize": 1}))
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == keys


def test_multipart_and_copy_virtual(vc, pc, vbucket, random_bytes):
    data = random_bytes(5 * MiB + 10, "vhost-mpu")
    mpu = vc.create_multipart_upload(Bucket=vbucket, Key="mpu/obj")
    parts = []
    for n, off in enumerate(range(0, len(data), 5 * MiB), start=1):
        r = vc.upload_part(Bucket=vbucket, Key="mpu/obj", UploadId=mpu["UploadId"], PartNumber=n, Body=data[off : off + 5 * MiB])
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    vc.complete_multipart_upload(Bucket=vbucket, Key="mpu/obj", UploadId=mpu["UploadId"], MultipartUpload={"Parts": parts})
    assert pc.get_object(Bucket=vbucket, Key="mpu/obj")["Body"].read() == data
    vc.copy_object(Bucket=vbucket, Key="mpu/copy", CopySource={"Bucket": vbucket, "Key": "mpu/obj"})
    assert vc.get_object(Bucket=vbucket, Key="mpu/copy")["Body"].read() == data


def test_delete_objects_virtual(vc, vbucket):
    for k in ("del/1", "del/2"):
        vc.put_object(Bucket=vbucket, Key=k, Body=b"x")
    r = vc.delete_objects(Bucket=vbucket, Delete={"Objects": [{"Key": "del/1"}, {"Key": "del/2"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["del/1", "del/2"]
    assert vc.list_objects_v2(Bucket=vbucket, Prefix="del/")["KeyCount"] == 0


def test_presigned_url_virtual(vc, vbucket, vserver):
    vc.put_object(Bucket=vbucket, Key="presigned", Body=b"presigned via vhost")
    url = vc.generate_presigned_url("get_object", Params={"Bucket": vbucket, "Key": "presigned"}, ExpiresIn=300)
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == f"{vbucket}.{DOMAIN}"
    conn = http.client.HTTPConnection("127.0.0.1", vserver.port, timeout=30)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}", headers={"Host": parts.netloc})
        r = conn.getresponse()
        assert r.status == 200
        assert r.read() == b"presigned via vhost"
    finally:
        conn.close()


def test_hand_signed_virtual_host_requests(vserver, pc, vbucket):
    resp = vhost_request(vserver, vbucket, "PUT", "/raw/key one", body=b"raw body")
    assert resp.status == 200, resp.body[:500]
    assert pc.get_object(Bucket=vbucket, Key="raw/key one")["Body"].read() == b"raw body"
    resp = vhost_request(vserver, vbucket, "GET", "/raw/key one")
    assert resp.status == 200 and resp.body == b"raw body"
    resp = vhost_request(vserver, vbucket, "GET", "/", query=[("list-type", "2"), ("prefix", "raw/")])
    assert resp.status == 200, resp.body[:500]
    root = _strip_ns(ET.fromstring(resp.body))
    assert root.findtext("Name") == vbucket
    assert [e.findtext("Key") for e in root.findall("Contents")] == ["raw/key one"]
    # A Host header of exactly the domain is the service endpoint (path style).
    resp = vhost_request(vserver, None, "GET", f"/{vbucket}/raw/key one")
    assert resp.status == 200 and resp.body == b"raw body"
    resp = vhost_request(vserver, None, "GET", "/")
    assert resp.status == 200 and vbucket.encode() in resp.body


def test_virtual_host_missing_bucket(vserver, new_bucket_name):
    missing = new_bucket_name("vhost-missing")
    resp = vhost_request(vserver, missing, "GET", "/some-key")
    assert resp.status == 404
    assert resp.error_code == "NoSuchBucket", resp.body[:500]
    resp = vhost_request(vserver, missing, "GET", "/", query=[("list-type", "2")])
    assert resp.status == 404 and resp.error_code == "NoSuchBucket"


def test_dotted_bucket_name_virtual(vserver, pc, new_bucket_name):
    name = new_bucket_name("dotted").replace("-", ".", 1)
    pc.create_bucket(Bucket=name)
    pc.put_object(Bucket=name, Key="k", Body=b"dotted")
    resp = vhost_request(vserver, name, "GET", "/k")
    assert resp.status == 200, resp.body[:500]
    assert resp.body == b"dotted"


def test_path_style_still_works_on_domain_server(vc, pc, vbucket, new_bucket_name):
    name = new_bucket_name("path-on-vhost")
    pc.create_bucket(Bucket=name)
    pc.put_object(Bucket=name, Key="a/b", Body=b"path style")
    assert pc.get_object(Bucket=name, Key="a/b")["Body"].read() == b"path style"
    assert [o["Key"] for o in pc.list_objects_v2(Bucket=name)["Contents"]] == ["a/b"]
    vc.put_object(Bucket=vbucket, Key="cross-check", Body=b"written virtually")
    assert pc.get_object(Bucket=vbucket, Key="cross-check")["Body"].read() == b"written virtually"


def test_path_style_with_domain_host(vserver, loopback_domain, vbucket):
    # Path-style requests addressed to the domain itself (Host: example.test:PORT).
    c = s3_client(f"http://{DOMAIN}:{vserver.port}", s3={"addressing_style": "path"})
    c.put_object(Bucket=vbucket, Key="via-domain-path", Body=b"domain path")
    assert c.get_object(Bucket=vbucket, Key="via-domain-path")["Body"].read() == b"domain path"
    assert "via-domain-path" in [o["Key"] for o in c.list_objects_v2(Bucket=vbucket)["Contents"]]
