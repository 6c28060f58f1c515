"""SigV2 requests cannot be replayed for ever: s3s verifies SigV2 signatures but checks
neither a header-signed request's date nor how far ahead a presigned URL's `Expires` lies, so
tessera refuses what S3 refuses (a date more than 15 minutes off; an expiry more than seven
days ahead). Fresh SigV2 requests keep working (aws-cli v1 and s3cmd sign so)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.error
import urllib.parse
import urllib.request
from email.utils import formatdate

from conftest import ROOT_PASSWORD, ROOT_USER


def _sign(string_to_sign: str) -> str:
    mac = hmac.new(ROOT_PASSWORD.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _header_signed_get(server, path: str, when: float) -> tuple[int, bytes]:
    date = formatdate(when, usegmt=True)
    string_to_sign = "GET\n\n\n" + date + "\n" + path
    auth = f"AWS {ROOT_USER}:{_sign(string_to_sign)}"
    return _get(server.url + path, {"Date": date, "Authorization": auth})


def test_sigv2_header_requests_must_be_recent(server, s3, bucket_name):
    c = s3(server)
    c.create_bucket(Bucket=bucket_name)
    c.put_object(Bucket=bucket_name, Key="k", Body=b"v2 body")
    path = f"/{bucket_name}/k"
    assert _header_signed_get(server, path, time.time()) == (200, b"v2 body")
    for skew in (-3600, 3600):
        status, body = _header_signed_get(server, path, time.time() + skew)
        assert status == 403 and b"<Code>RequestTimeTooSkewed</Code>" in body, (skew, status, body)


def test_sigv2_presigned_urls_may_not_outlive_seven_days(server, s3, bucket_name):
    c = s3(server)
    c.create_bucket(Bucket=bucket_name)
    c.put_object(Bucket=bucket_name, Key="k", Body=b"v2 url")
    path = f"/{bucket_name}/k"

    def url(expires: int) -> str:
        string_to_sign = f"GET\n\n\n{expires}\n" + path
        q = urllib.parse.urlencode({"AWSAccessKeyId": ROOT_USER, "Expires": str(expires), "Signature": _sign(string_to_sign)})
        return f"{server.url}{path}?{q}"

    assert _get(url(int(time.time()) + 3600)) == (200, b"v2 url")
    status, body = _get(url(int(time.time()) + 30 * 24 * 3600))
    assert status in (400, 403) and b"<Code>AuthorizationQueryParametersError</Code>" in body, (status, body)
    # An expired URL is refused too (s3s' own check).
    status, _ = _get(url(int(time.time()) - 60))
    assert status == 403
