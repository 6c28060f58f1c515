"""Query-string (presigned URL) authentication for GET/PUT/HEAD/DELETE, expiry and
malformed X-Amz-Expires, and browser-based uploads (POST Object with a signed policy
from boto3's generate_presigned_post)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

KiB = 1024


@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server)


@pytest.fixture(scope="module")
def bucket(c, new_bucket_name):
    name = new_bucket_name("presigned")
    c.create_bucket(Bucket=name)
    return name


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def code(self):
        try:
            root = ET.fromstring(self.body)
        except ET.ParseError:
            return None
        el = root.find("Code")
        return el.text if el is not None else None

    def __repr__(self):
        return f"Resp({self.status}, {self.body[:300]!r})"


def fetch(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None) -> Resp:
    """Send a request to a full URL exactly as given (no extra signing)."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def with_query(url: str, **replace) -> str:
    parts = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    q = [(k, replace.get(k, v)) for k, v in q]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q, quote_via=lambda v, *a: urllib.parse.quote(v, safe="-_.~"))))


def assert_absent(c, bucket, key):
    with pytest.raises(ClientError) as exc:
        c.head_object(Bucket=bucket, Key=key)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# ------------------------------------------------------- presigned URLs ---
def test_presigned_put_get_head_delete(c, bucket, random_bytes):
    key = "presigned/some key+plus"
    data = random_bytes(50 * KiB, "presigned")
    put_url = c.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    r = fetch(put_url, "PUT", data)
    assert r.status == 200, r
    assert r.headers.get("etag") == '"%s"' % hashlib.md5(data).hexdigest()

    get_url = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    r = fetch(get_url)
    assert r.status == 200, r
    assert r.body == data

    head_url = c.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    r = fetch(head_url, "HEAD")
    assert r.status == 200
    assert int(r.headers["content-length"]) == len(data)

    del_url = c.generate_presigned_url("delete_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    r = fetch(del_url, "DELETE")
    assert r.status == 204, r
    assert_absent(c, bucket, key)


def test_presigned_get_with_response_overrides(c, bucket):
    c.put_object(Bucket=bucket, Key="presigned/override", Body=b"override me")
    url = c.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket,
            "Key": "presigned/override",
            "ResponseContentDisposition": 'attachment; filename="x.txt"',
            "ResponseContentType": "text/x-override",
        },
        ExpiresIn=300,
    )
    r = fetch(url)
    assert r.status == 200, r
    assert r.body == b"override me"
    assert r.headers.get("content-disposition") == 'attachment; filename="x.txt"'
    assert r.headers.get("content-type") == "text/x-override"


def test_presigned_url_is_bound_to_method_key_and_signature(c, bucket):
    c.put_object(Bucket=bucket, Key="presigned/bound", Body=b"bound")
    url = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presigned/bound"}, ExpiresIn=300)
    # Another method with the GET URL.
    r = fetch(url, "PUT", b"overwrite")
    assert r.status == 403 and r.code == "SignatureDoesNotMatch", r
    # Another key with the same query.
    other = url.replace("/presigned/bound?", "/presigned/other?")
    r = fetch(other)
    assert r.status == 403 and r.code == "SignatureDoesNotMatch", r
    # A flipped signature digit.
    sig = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Signature"][0]
    r = fetch(with_query(url, **{"X-Amz-Signature": ("1" if sig[0] == "0" else "0") + sig[1:]}))
    assert r.status == 403 and r.code == "SignatureDoesNotMatch", r
    # A longer lifetime than the one signed.
    r = fetch(with_query(url, **{"X-Amz-Expires": "3600"}))
    assert r.status == 403, r
    assert c.get_object(Bucket=bucket, Key="presigned/bound")["Body"].read() == b"bound"


def test_presigned_url_expired(c, bucket):
    c.put_object(Bucket=bucket, Key="presigned/expiring", Body=b"x")
    get_url = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presigned/expiring"}, ExpiresIn=1)
    put_url = c.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "presigned/late"}, ExpiresIn=1)
    time.sleep(2.2)
    r = fetch(get_url)
    assert r.status == 403, r
    assert r.code == "AccessDenied", r
    r = fetch(put_url, "PUT", b"too late")
    assert r.status == 403 and r.code == "AccessDenied", r
    assert_absent(c, bucket, "presigned/late")


@pytest.mark.parametrize("expires", ["abc", "604801", "-5", ""], ids=["abc", "over-a-week", "negative", "empty"])
def test_presigned_url_malformed_expires(c, bucket, expires):
    c.put_object(Bucket=bucket, Key="presigned/malformed", Body=b"x")
    if expires == "604801":
        # Correctly signed, but longer than the 7-day maximum.
        url = c.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "presigned/malformed"}, ExpiresIn=604801
        )
        assert "X-Amz-Expires=604801" in url
    else:
        url = c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "presigned/malformed"}, ExpiresIn=60)
        url = with_query(url, **{"X-Amz-Expires": expires})
    r = fetch(url)
    assert r.status in (400, 403), r
    assert r.code, f"no S3 error body: {r}"
    assert r.body != b"x"


# --------------------------------------------------------- POST Object ---
def multipart_form(fields: dict[str, str], file_data: bytes, filename: str = "upload.bin", file_type: str | None = None):
    boundary = "----tessera" + uuid.uuid4().hex
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode()
    if file_type:
        out += f"Content-Type: {file_type}\r\n".encode()
    out += b"\r\n" + file_data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def post_form(post: dict, file_data: bytes, *, override: dict | None = None, filename: str = "upload.bin") -> Resp:
    fields = dict(post["fields"])
    fields.update(override or {})
    body, ctype = multipart_form(fields, file_data, filename=filename)
    return fetch(post["url"], "POST", body, {"Content-Type": ctype})


def presigned_post(c, bucket, key, *, max_size=10 * KiB, fields=None, conditions=(), expires=300):
    fields = dict(fields or {})
    conds = [["content-length-range", 1, max_size], ["starts-with", "$key", "post/"]]
    conds += [{k: v} for k, v in fields.items()]
    conds += list(conditions)
    return c.generate_presigned_post(bucket, key, Fields=fields, Conditions=conds, ExpiresIn=expires)


def test_post_object_upload(c, bucket, random_bytes):
    data = random_bytes(5000, "post-object")
    post = presigned_post(
        c, bucket, "post/basic", fields={"Content-Type": "text/x-posted", "x-amz-meta-color": "green"}
    )
    assert post["url"].rstrip("/").endswith(f"/{bucket}")
    r = post_form(post, data)
    assert r.status == 204, r
    got = c.get_object(Bucket=bucket, Key="post/basic")
    assert got["Body"].read() == data
    assert got["ContentType"] == "text/x-posted"
    assert got["Metadata"] == {"color": "green"}
    assert got["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()


def test_post_object_success_action_status_201(c, bucket):
    post = presigned_post(c, bucket, "post/created", fields={"success_action_status": "201"})
    r = post_form(post, b"created via POST")
    assert r.status == 201, r
    root = ET.fromstring(r.body)
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    assert root.tag == f"{ns}PostResponse"
    assert root.findtext(f"{ns}Bucket") == bucket
    assert root.findtext(f"{ns}Key") == "post/created"
    assert root.findtext(f"{ns}ETag") == '"%s"' % hashlib.md5(b"created via POST").hexdigest()
    assert root.findtext(f"{ns}Location")
    assert c.get_object(Bucket=bucket, Key="post/created")["Body"].read() == b"created via POST"


def test_post_object_success_action_status_200(c, bucket):
    post = presigned_post(c, bucket, "post/ok200", fields={"success_action_status": "200"})
    r = post_form(post, b"ok")
    assert r.status == 200, r
    assert c.get_object(Bucket=bucket, Key="post/ok200")["Body"].read() == b"ok"


def test_post_object_filename_substitution(c, bucket):
    post = c.generate_presigned_post(
        bucket,
        "post/${filename}",
        Conditions=[["content-length-range", 1, 1000], ["starts-with", "$key", "post/"]],
        ExpiresIn=300,
    )
    r = post_form(post, b"named upload", filename="report.txt")
    assert r.status == 204, r
    assert c.get_object(Bucket=bucket, Key="post/report.txt")["Body"].read() == b"named upload"


def test_post_object_too_large(c, bucket, random_bytes):
    post = presigned_post(c, bucket, "post/too-large", max_size=1000)
    r = post_form(post, random_bytes(1001, "too-large"))
    assert 400 <= r.status < 500, r
    assert r.code == "EntityTooLarge", r
    assert_absent(c, bucket, "post/too-large")


def test_post_object_too_small(c, bucket):
    post = presigned_post(c, bucket, "post/too-small")  # content-length-range starts at 1
    r = post_form(post, b"")
    assert 400 <= r.status < 500, r
    assert r.code == "EntityTooSmall", r
    assert_absent(c, bucket, "post/too-small")


def test_post_object_key_outside_policy(c, bucket):
    post = presigned_post(c, bucket, "post/allowed")
    r = post_form(post, b"sneaky", override={"key": "elsewhere/sneaky"})
    assert r.status == 403, r
    assert r.code == "AccessDenied", r
    assert_absent(c, bucket, "elsewhere/sneaky")


def test_post_object_field_not_matching_exact_condition(c, bucket):
    post = presigned_post(c, bucket, "post/ctype", fields={"Content-Type": "image/png"})
    r = post_form(post, b"not a png", override={"Content-Type": "text/html"})
    assert r.status == 403, r
    assert r.code == "AccessDenied", r
    assert_absent(c, bucket, "post/ctype")


def test_post_object_bad_signature(c, bucket):
    post = presigned_post(c, bucket, "post/bad-sig")
    sig = post["fields"]["x-amz-signature"]
    r = post_form(post, b"forged", override={"x-amz-signature": ("1" if sig[0] == "0" else "0") + sig[1:]})
    assert r.status == 403, r
    assert r.code == "SignatureDoesNotMatch", r
    assert_absent(c, bucket, "post/bad-sig")


def test_post_object_expired_policy(c, bucket):
    post = presigned_post(c, bucket, "post/expired", expires=1)
    time.sleep(2.2)
    r = post_form(post, b"late")
    assert r.status == 403, r
    assert r.code == "AccessDenied", r
    assert_absent(c, bucket, "post/expired")


def test_post_object_with_a_customer_key_over_plain_http_is_refused(c, bucket):
    """SSE-C fields in a form over plain HTTP: 400, as for the headers, and nothing stored."""
    key = bytes(range(32))
    fields = {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
        "x-amz-server-side-encryption-customer-key-MD5": base64.b64encode(hashlib.md5(key).digest()).decode(),
    }
    post = presigned_post(c, bucket, "post/ssec", fields=fields)
    r = post_form(post, b"secret")
    assert r.status == 400 and b"InvalidRequest" in r.body, r
    assert c.list_objects_v2(Bucket=bucket, Prefix="post/ssec").get("KeyCount") == 0


def test_post_object_with_a_customer_key_and_another_encryption_is_refused(make_server, s3, new_bucket_name):
    """A form naming SSE-C and x-amz-server-side-encryption both: 400 InvalidArgument, as
    the same headers get, and nothing stored; SSE-C alone stores an object that needs the key."""
    srv = make_server(1, extra_args=["--allow-insecure-sse-c"])
    c = s3(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("post-ssec")))
    key = bytes(range(32))
    customer = {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
        "x-amz-server-side-encryption-customer-key-MD5": base64.b64encode(hashlib.md5(key).digest()).decode(),
    }
    both = presigned_post(c, bucket, "post/both", fields={**customer, "x-amz-server-side-encryption": "AES256"})
    r = post_form(both, b"secret")
    assert r.status == 400 and r.code == "InvalidArgument", r
    assert c.list_objects_v2(Bucket=bucket, Prefix="post/both").get("KeyCount") == 0
    alone = presigned_post(c, bucket, "post/ssec", fields=customer)
    assert post_form(alone, b"secret").status == 204
    with pytest.raises(ClientError) as exc:
        c.get_object(Bucket=bucket, Key="post/ssec")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    got = c.get_object(Bucket=bucket, Key="post/ssec", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    assert got["Body"].read() == b"secret"
