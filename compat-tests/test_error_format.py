"""Shape of S3 error responses, read from the raw HTTP answer: an XML <Error> document
with <Code>, <Message>, <Resource> (the request path) and a non-empty <RequestId> that
equals the x-amz-request-id response header, with the right HTTP status."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

import aws_chunked as ac


@pytest.fixture(scope="module")
def bucket(server, raw_s3_request, new_bucket_name):
    name = new_bucket_name("errfmt")
    assert raw_s3_request(server, "PUT", f"/{name}").status == 200
    assert raw_s3_request(server, "PUT", f"/{name}/small", body=b"0123456789").status == 200
    return name


def parse_error(resp) -> dict[str, str]:
    ctype = resp.headers.get("content-type", "")
    assert "xml" in ctype, f"content-type {ctype!r}: {resp.body[:300]!r}"
    root = ET.fromstring(resp.body)
    tag = root.tag.split("}", 1)[-1]
    assert tag == "Error", resp.body[:500]
    return {child.tag.split("}", 1)[-1]: (child.text or "") for child in root}


def check_error(resp, status, codes, resource):
    codes = (codes,) if isinstance(codes, str) else tuple(codes)
    assert resp.status == status, (resp.status, resp.body[:500])
    err = parse_error(resp)
    assert err.get("Code") in codes, err
    assert err.get("Message"), f"empty or missing <Message>: {err}"
    assert err.get("RequestId"), f"empty or missing <RequestId>: {err}"
    assert resp.headers.get("x-amz-request-id") == err["RequestId"], (resp.headers, err)
    assert err.get("Resource") == resource, err
    return err


def test_no_such_bucket(server, raw_s3_request, new_bucket_name):
    missing = new_bucket_name("errfmt-missing")
    check_error(raw_s3_request(server, "GET", f"/{missing}/some/key"), 404, "NoSuchBucket", f"/{missing}/some/key")
    check_error(raw_s3_request(server, "GET", f"/{missing}", query=[("list-type", "2")]), 404, "NoSuchBucket", f"/{missing}")
    check_error(raw_s3_request(server, "DELETE", f"/{missing}"), 404, "NoSuchBucket", f"/{missing}")


def test_no_such_key(server, raw_s3_request, bucket):
    check_error(raw_s3_request(server, "GET", f"/{bucket}/no/such/key"), 404, "NoSuchKey", f"/{bucket}/no/such/key")


def test_invalid_bucket_name(server, raw_s3_request):
    check_error(raw_s3_request(server, "PUT", "/ab"), 400, "InvalidBucketName", "/ab")
    check_error(raw_s3_request(server, "PUT", "/Bad_Name"), 400, "InvalidBucketName", "/Bad_Name")


def test_signature_does_not_match(server, raw_s3_request, bucket):
    resp = raw_s3_request(server, "GET", f"/{bucket}/small", secret_key="not-the-right-secret")
    check_error(resp, 403, "SignatureDoesNotMatch", f"/{bucket}/small")
    assert b"0123456789" not in resp.body


def test_invalid_access_key(server, raw_s3_request, bucket):
    resp = raw_s3_request(server, "GET", f"/{bucket}/small", access_key="NOSUCHKEY1234", secret_key="whatever-secret")
    check_error(resp, 403, "InvalidAccessKeyId", f"/{bucket}/small")


def test_anonymous_access_denied(server, raw_s3_request, bucket):
    check_error(raw_s3_request(server, "GET", f"/{bucket}/small", sign=False), 403, "AccessDenied", f"/{bucket}/small")
    check_error(raw_s3_request(server, "GET", f"/{bucket}", sign=False), 403, "AccessDenied", f"/{bucket}")
    check_error(raw_s3_request(server, "GET", "/", sign=False), 403, "AccessDenied", "/")


def test_invalid_range(server, raw_s3_request, bucket):
    resp = raw_s3_request(server, "GET", f"/{bucket}/small", headers={"Range": "bytes=100-200"})
    check_error(resp, 416, "InvalidRange", f"/{bucket}/small")


def test_malformed_xml(server, raw_s3_request, bucket):
    body = b"this is <not xml"
    resp = raw_s3_request(
        server, "POST", f"/{bucket}", query=[("delete", "")], body=body, headers={"Content-MD5": ac.md5_b64(body)}
    )
    check_error(resp, 400, "MalformedXML", f"/{bucket}")
    body = b"<Delete><Object><Key>small</Key></Object>"  # truncated
    resp = raw_s3_request(
        server, "POST", f"/{bucket}", query=[("delete", "")], body=body, headers={"Content-MD5": ac.md5_b64(body)}
    )
    check_error(resp, 400, "MalformedXML", f"/{bucket}")
    assert raw_s3_request(server, "GET", f"/{bucket}/small").body == b"0123456789"


def test_unsupported_method(server, raw_s3_request, bucket):
    resp = raw_s3_request(server, "PATCH", f"/{bucket}/small", body=b"x")
    assert resp.status in (405, 501), (resp.status, resp.body[:500])
    expected = {405: "MethodNotAllowed", 501: "NotImplemented"}[resp.status]
    check_error(resp, resp.status, expected, f"/{bucket}/small")


def test_bucket_conflicts(server, raw_s3_request, bucket):
    check_error(raw_s3_request(server, "PUT", f"/{bucket}"), 409, ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"), f"/{bucket}")
    check_error(raw_s3_request(server, "DELETE", f"/{bucket}"), 409, "BucketNotEmpty", f"/{bucket}")


def test_no_such_upload(server, raw_s3_request, bucket):
    resp = raw_s3_request(server, "GET", f"/{bucket}/small", query=[("uploadId", "no-such-upload")])
    check_error(resp, 404, "NoSuchUpload", f"/{bucket}/small")


def test_head_errors_have_request_id_but_no_body(server, raw_s3_request, bucket, new_bucket_name):
    for path in (f"/{bucket}/missing-key", f"/{new_bucket_name('errfmt-head')}/k"):
        resp = raw_s3_request(server, "HEAD", path)
        assert resp.status == 404
        assert resp.body == b""
        assert resp.headers.get("x-amz-request-id")


def test_request_ids_are_unique_and_on_success_too(server, raw_s3_request, bucket):
    ids = set()
    for _ in range(5):
        resp = raw_s3_request(server, "GET", f"/{bucket}/missing")
        ids.add(parse_error(resp)["RequestId"])
    assert len(ids) == 5
    ok = raw_s3_request(server, "GET", f"/{bucket}/small")
    assert ok.status == 200 and ok.headers.get("x-amz-request-id")
    assert ok.headers["x-amz-request-id"] not in ids
