"""ListObjectsV2 and ListObjects (v1): prefix, delimiter, pagination, start-after,
encoding-type=url, KeyCount, and UTF-8 byte ordering."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_plus

import pytest


def utf8_sorted(items):
    return sorted(items, key=lambda k: k.encode("utf-8"))


SPECIAL_KEYS = [
    "special/with space",
    "special/plus+sign",
    "special/percent%20literal",
    "special/ünïcödé",
    "special/日本語/ファイル",
    "special/xml&<>'\"",
]
# Code-point (== UTF-8 byte) order differs from UTF-16 order for U+FF61 vs an
# astral-plane emoji, and from case-insensitive order for 'A' vs '_' vs 'a'.
SORT_KEYS = [
    "sort/A",
    "sort/a",
    "sort/_",
    "sort/~",
    "sort/é",
    "sort/\uff61",
    "sort/\U0001f600",
    "sort/z",
    "sort/0",
    "sort/-",
]
ALL_KEYS = (
    ["root-file"]
    + [f"flat/key-{i:03d}" for i in range(50)]
    + [f"tree/{d}/file-{j}" for d in "abcde" for j in range(10)]
    + [f"tree/top-{k}" for k in range(3)]
    + SPECIAL_KEYS
    + SORT_KEYS
)
assert len(ALL_KEYS) == 120 and len(set(ALL_KEYS)) == 120


def model(prefix: str = "", delimiter: str | None = None, start_after: str | None = None):
    """What S3 returns for a full (unpaginated) listing: (keys, common prefixes)."""
    keys, prefixes = [], []
    for k in utf8_sorted(ALL_KEYS):
        if not k.startswith(prefix):
            continue
        if start_after is not None and k.encode() <= start_after.encode():
            continue
        if delimiter:
            rest = k[len(prefix) :]
            i = rest.find(delimiter)
            if i >= 0:
                p = prefix + rest[: i + len(delimiter)]
                if p not in prefixes:
                    prefixes.append(p)
                continue
        keys.append(k)
    return keys, prefixes


@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server)


@pytest.fixture(scope="module")
def bucket(c, new_bucket_name):
    name = new_bucket_name("listing")
    c.create_bucket(Bucket=name)

    def put(key):
        c.put_object(Bucket=name, Key=key, Body=key.encode("utf-8"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, ALL_KEYS))
    return name


def keys_of(resp):
    return [o["Key"] for o in resp.get("Contents", [])]


def prefixes_of(resp):
    return [p["Prefix"] for p in resp.get("CommonPrefixes", [])]


def pages_v2(c, bucket, max_pages=1000, **kwargs):
    pages, token = [], None
    for _ in range(max_pages):
        args = dict(Bucket=bucket, **kwargs)
        if token is not None:
            args["ContinuationToken"] = token
        resp = c.list_objects_v2(**args)
        if token is not None:
            assert resp.get("ContinuationToken") == token
        assert resp["KeyCount"] == len(keys_of(resp)) + len(prefixes_of(resp))
        if "MaxKeys" in kwargs:
            assert resp["MaxKeys"] == kwargs["MaxKeys"]
            assert resp["KeyCount"] <= kwargs["MaxKeys"]
        pages.append(resp)
        if not resp["IsTruncated"]:
            assert not resp.get("NextContinuationToken")
            return pages
        assert resp["KeyCount"] > 0, "truncated page without entries"
        token = resp.get("NextContinuationToken")
        assert token, "truncated ListObjectsV2 response without NextContinuationToken"
    raise AssertionError("pagination did not terminate")


def pages_v1(c, bucket, max_pages=1000, **kwargs):
    pages, marker = [], None
    for _ in range(max_pages):
        args = dict(Bucket=bucket, **kwargs)
        if marker is not None:
            args["Marker"] = marker
        resp = c.list_objects(**args)
        if marker is not None:
            assert resp.get("Marker") == marker
        entries = len(keys_of(resp)) + len(prefixes_of(resp))
        if "MaxKeys" in kwargs:
            assert resp["MaxKeys"] == kwargs["MaxKeys"]
            assert entries <= kwargs["MaxKeys"]
        pages.append(resp)
        if not resp["IsTruncated"]:
            return pages
        assert entries > 0, "truncated page without entries"
        last = max(keys_of(resp) + prefixes_of(resp), key=lambda k: k.encode())
        if kwargs.get("Delimiter"):
            # S3 returns NextMarker only (and always) when a delimiter is given.
            assert resp.get("NextMarker") == last
        marker = resp.get("NextMarker") or last
        if resp.get("NextMarker"):
            assert resp["NextMarker"] == last
    raise AssertionError("pagination did not terminate")


def flatten(pages):
    keys = [k for p in pages for k in keys_of(p)]
    prefixes = [k for p in pages for k in prefixes_of(p)]
    return keys, prefixes


def assert_pages_ordered(pages):
    """Every entry of page i sorts before every entry of page i+1 (UTF-8 bytes)."""
    previous_max = None
    for p in pages:
        entries = [e.encode() for e in keys_of(p) + prefixes_of(p)]
        if not entries:
            continue
        assert keys_of(p) == utf8_sorted(keys_of(p))
        assert prefixes_of(p) == utf8_sorted(prefixes_of(p))
        if previous_max is not None:
            assert min(entries) > previous_max
        previous_max = max(entries)


# --------------------------------------------------------------- full list ---
def test_v2_lists_everything_in_utf8_byte_order(c, bucket):
    resp = c.list_objects_v2(Bucket=bucket)
    assert resp["IsTruncated"] is False
    assert resp["KeyCount"] == 120
    assert keys_of(resp) == utf8_sorted(ALL_KEYS)
    sizes = {o["Key"]: o["Size"] for o in resp["Contents"]}
    assert sizes == {k: len(k.encode()) for k in ALL_KEYS}


def test_v1_lists_everything_in_utf8_byte_order(c, bucket):
    resp = c.list_objects(Bucket=bucket)
    assert resp["IsTruncated"] is False
    assert keys_of(resp) == utf8_sorted(ALL_KEYS)


def test_sort_keys_use_utf8_byte_order(c, bucket):
    resp = c.list_objects_v2(Bucket=bucket, Prefix="sort/")
    assert keys_of(resp) == [
        "sort/-",
        "sort/0",
        "sort/A",
        "sort/_",
        "sort/a",
        "sort/z",
        "sort/~",
        "sort/é",
        "sort/\uff61",
        "sort/\U0001f600",
    ]


# -------------------------------------------------------------- pagination ---
@pytest.mark.parametrize("max_keys", [1, 7, 50])
def test_v2_pagination_continuation_tokens(c, bucket, max_keys):
    pages = pages_v2(c, bucket, MaxKeys=max_keys)
    keys, prefixes = flatten(pages)
    assert prefixes == []
    assert keys == utf8_sorted(ALL_KEYS)  # every key exactly once, in order
    assert len(pages) == -(-120 // max_keys)
    assert all(len(keys_of(p)) == max_keys for p in pages[:-1])
    assert_pages_ordered(pages)


@pytest.mark.parametrize("max_keys", [1, 7, 50])
def test_v1_pagination_markers(c, bucket, max_keys):
    pages = pages_v1(c, bucket, MaxKeys=max_keys)
    keys, prefixes = flatten(pages)
    assert prefixes == []
    assert keys == utf8_sorted(ALL_KEYS)
    assert len(pages) == -(-120 // max_keys)
    assert_pages_ordered(pages)


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize("max_keys", [1, 2, 3])
def test_delimiter_pagination(c, bucket, api, max_keys):
    pager = pages_v2 if api == "v2" else pages_v1
    pages = pager(c, bucket, Prefix="tree/", Delimiter="/", MaxKeys=max_keys)
    keys, prefixes = flatten(pages)
    exp_keys, exp_prefixes = model("tree/", "/")
    assert keys == exp_keys
    assert prefixes == exp_prefixes  # each common prefix exactly once
    assert_pages_ordered(pages)


# ----------------------------------------------------- prefix / delimiter ---
@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize("prefix", ["tree/a/", "flat/key-01", "special/", "sort/", "r", "nothing-here/"])
def test_prefix(c, bucket, api, prefix):
    resp = (c.list_objects_v2 if api == "v2" else c.list_objects)(Bucket=bucket, Prefix=prefix)
    exp_keys, _ = model(prefix)
    assert keys_of(resp) == exp_keys
    assert prefixes_of(resp) == []
    assert resp["IsTruncated"] is False
    if api == "v2":
        assert resp["KeyCount"] == len(exp_keys)
    # botocore decodes Prefix for v2 only; unquote_plus is a no-op on these prefixes otherwise.
    assert unquote_plus(resp.get("Prefix")) == prefix


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_delimiter_at_root(c, bucket, api):
    resp = (c.list_objects_v2 if api == "v2" else c.list_objects)(Bucket=bucket, Delimiter="/")
    assert keys_of(resp) == ["root-file"]
    assert prefixes_of(resp) == ["flat/", "sort/", "special/", "tree/"]
    assert resp.get("Delimiter") == "/"
    if api == "v2":
        assert resp["KeyCount"] == 5


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize("prefix", ["tree/", "special/", "tree/c/", "tree/t"])
def test_delimiter_with_prefix(c, bucket, api, prefix):
    resp = (c.list_objects_v2 if api == "v2" else c.list_objects)(Bucket=bucket, Prefix=prefix, Delimiter="/")
    exp_keys, exp_prefixes = model(prefix, "/")
    assert keys_of(resp) == exp_keys
    assert prefixes_of(resp) == exp_prefixes
    if api == "v2":
        assert resp["KeyCount"] == len(exp_keys) + len(exp_prefixes)


def test_delimiter_other_than_slash(c, bucket):
    resp = c.list_objects_v2(Bucket=bucket, Prefix="flat/", Delimiter="-0")
    exp_keys, exp_prefixes = model("flat/", "-0")
    assert exp_prefixes == ["flat/key-0"]
    assert keys_of(resp) == exp_keys
    assert prefixes_of(resp) == exp_prefixes


def test_empty_result(c, bucket):
    resp = c.list_objects_v2(Bucket=bucket, Prefix="zzz-no-such-prefix/")
    assert resp["KeyCount"] == 0
    assert resp["IsTruncated"] is False
    assert "Contents" not in resp
    assert "CommonPrefixes" not in resp


# ------------------------------------------------------------- start-after ---
@pytest.mark.parametrize(
    "start_after",
    ["flat/key-025", "flat/key-025x", "a", "tree/b/file-9", "special/plus+sign", "\U0010ffff"],
)
def test_v2_start_after(c, bucket, start_after):
    pages = pages_v2(c, bucket, StartAfter=start_after, MaxKeys=11)
    keys, _ = flatten(pages)
    exp_keys, _ = model(start_after=start_after)
    assert keys == exp_keys
    assert all(k.encode() > start_after.encode() for k in keys)
    assert pages[0].get("StartAfter") == start_after


@pytest.mark.parametrize("marker", ["flat/key-025", "sort/z"])
def test_v1_marker_is_exclusive(c, bucket, marker):
    resp = c.list_objects(Bucket=bucket, Marker=marker)
    exp_keys, _ = model(start_after=marker)
    assert keys_of(resp) == exp_keys


# ---------------------------------------------------------- encoding-type ---
@pytest.mark.parametrize("api", ["v1", "v2"])
def test_encoding_type_url(c, bucket, api):
    # With an explicit EncodingType botocore does NOT decode the response, so we
    # see exactly what the server sent.
    fn = c.list_objects_v2 if api == "v2" else c.list_objects
    resp = fn(Bucket=bucket, Prefix="special/", EncodingType="url")
    assert resp.get("EncodingType") == "url"
    raw_keys = keys_of(resp)
    for rk in raw_keys:
        assert rk.isascii(), f"key not URL-encoded: {rk!r}"
        assert " " not in rk and "<" not in rk and "&" not in rk, rk
    assert [unquote_plus(k) for k in raw_keys] == utf8_sorted(SPECIAL_KEYS)

    resp = fn(Bucket=bucket, Prefix="special/", Delimiter="/", EncodingType="url")
    assert [unquote_plus(p) for p in prefixes_of(resp)] == ["special/日本語/"]
    assert all(p.isascii() for p in prefixes_of(resp))
    assert [unquote_plus(k) for k in keys_of(resp)] == model("special/", "/")[0]


def test_botocore_auto_decoding_roundtrip(c, bucket):
    # Default boto3 calls send encoding-type=url and decode the answer; the keys
    # must come back exactly as stored.
    resp = c.list_objects_v2(Bucket=bucket, Prefix="special/")
    assert keys_of(resp) == utf8_sorted(SPECIAL_KEYS)
    for key in SPECIAL_KEYS:
        assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()


def _xml_children(elem, name):
    return [e for e in elem if e.tag.rsplit("}", 1)[-1] == name]


def _xml_text(elem, name):
    found = _xml_children(elem, name)
    return found[0].text if found else None


def test_raw_xml_without_encoding_type(server, bucket, raw_s3_request):
    resp = raw_s3_request(server, "GET", f"/{bucket}", query=[("list-type", "2"), ("prefix", "special/")])
    assert resp.status == 200, resp.body[:500]
    root = ET.fromstring(resp.body)
    assert root.tag.rsplit("}", 1)[-1] == "ListBucketResult"
    keys = [_xml_text(e, "Key") for e in _xml_children(root, "Contents")]
    assert keys == utf8_sorted(SPECIAL_KEYS)  # XML-escaped correctly, no URL encoding
    assert _xml_text(root, "KeyCount") == str(len(SPECIAL_KEYS))
    assert _xml_text(root, "Name") == bucket
    assert _xml_text(root, "IsTruncated") == "false"
