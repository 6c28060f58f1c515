"""Listing edge cases: awkward keys (unicode, spaces, %, +, newlines, control
characters, 1024 bytes), delimiters other than '/', pagination over 2,600 keys in
ListObjects v1 (Marker/NextMarker) and v2 (continuation tokens), MaxKeys caps,
FetchOwner, KeyCount, and EncodingType=url on every element it applies to."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote_plus

import pytest

KiB = 1024


def bsorted(items):
    return sorted(items, key=lambda k: k.encode("utf-8"))


def model(keys, prefix="", delimiter=None, start_after=None):
    """Full S3 listing of `keys`: (keys, common prefixes), both in UTF-8 byte order."""
    out_keys, prefixes = [], []
    for k in bsorted(keys):
        if not k.startswith(prefix):
            continue
        if start_after is not None and k.encode() <= start_after.encode():
            continue
        if delimiter:
            i = k.find(delimiter, len(prefix))
            if i >= 0:
                p = k[: i + len(delimiter)]
                if p not in prefixes:
                    prefixes.append(p)
                continue
        out_keys.append(k)
    return out_keys, prefixes


def put_all(c, bucket, keys, threads=16):
    def put(k):
        c.put_object(Bucket=bucket, Key=k, Body=b"")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, keys))


# ============================================================ big bucket ===
# 2,600 keys: 2,000 under eight top-level "directories" whose names cover ASCII,
# two-byte and four-byte UTF-8 (byte order != UTF-16 order), and 600 more directories.
TOPS = ["A", "_", "a", "z", "~", "é", "\u00ff", "\U0001f600"]
BIG_KEYS = [f"{TOPS[i % len(TOPS)]}/{i:04d}" for i in range(2000)] + [f"dir{j:03d}/leaf" for j in range(600)]
assert len(set(BIG_KEYS)) == 2600


@pytest.fixture(scope="module")
def c(server, s3):
    return s3(server, max_pool_connections=16)


@pytest.fixture(scope="module")
def big(c, new_bucket_name):
    name = new_bucket_name("big-listing")
    c.create_bucket(Bucket=name)
    put_all(c, name, BIG_KEYS)
    return name


def pages_v2(c, bucket, **kwargs):
    pages, token = [], None
    for _ in range(100):
        args = dict(kwargs)
        if token:
            args["ContinuationToken"] = token
        resp = c.list_objects_v2(Bucket=bucket, **args)
        pages.append(resp)
        if not resp["IsTruncated"]:
            assert "NextContinuationToken" not in resp
            return pages
        token = resp["NextContinuationToken"]
        assert token
    pytest.fail("more than 100 pages")


def pages_v1(c, bucket, **kwargs):
    pages, marker = [], None
    for _ in range(100):
        args = dict(kwargs)
        if marker is not None:
            args["Marker"] = marker
        resp = c.list_objects(Bucket=bucket, **args)
        pages.append(resp)
        if not resp["IsTruncated"]:
            return pages
        items = [o["Key"] for o in resp.get("Contents", [])] + [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
        last = max(items, key=lambda s: s.encode())
        if "Delimiter" in kwargs:
            # With a delimiter, a truncated v1 response must carry NextMarker.
            assert resp.get("NextMarker") == last, (resp.get("NextMarker"), last)
        elif "NextMarker" in resp:
            assert resp["NextMarker"] == last
        marker = resp.get("NextMarker", last)
    pytest.fail("more than 100 pages")


def collect(pages):
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    prefixes = [cp["Prefix"] for p in pages for cp in p.get("CommonPrefixes", [])]
    return keys, prefixes


@pytest.mark.parametrize("max_keys", [None, 333], ids=["default-1000", "333"])
def test_pagination_v2(c, big, max_keys):
    kwargs = {} if max_keys is None else {"MaxKeys": max_keys}
    pages = pages_v2(c, big, **kwargs)
    per_page = max_keys or 1000
    assert len(pages) == -(-2600 // per_page)
    for p in pages[:-1]:
        assert p["KeyCount"] == per_page == len(p["Contents"])
        assert p["MaxKeys"] == per_page
    assert pages[-1]["KeyCount"] == len(pages[-1]["Contents"]) == 2600 - per_page * (len(pages) - 1)
    keys, _ = collect(pages)
    assert keys == bsorted(BIG_KEYS)  # each key exactly once, in byte order


@pytest.mark.parametrize("max_keys", [None, 333], ids=["default-1000", "333"])
def test_pagination_v1(c, big, max_keys):
    kwargs = {} if max_keys is None else {"MaxKeys": max_keys}
    pages = pages_v1(c, big, **kwargs)
    per_page = max_keys or 1000
    assert len(pages) == -(-2600 // per_page)
    for p in pages[:-1]:
        assert len(p["Contents"]) == per_page
    keys, _ = collect(pages)
    assert keys == bsorted(BIG_KEYS)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_pagination_with_delimiter(c, big, version):
    pages = (pages_v1 if version == "v1" else pages_v2)(c, big, Delimiter="/", MaxKeys=333)
    keys, prefixes = collect(pages)
    exp_keys, exp_prefixes = model(BIG_KEYS, delimiter="/")
    assert keys == exp_keys == []
    assert len(prefixes) == len(set(prefixes)), "a common prefix was repeated across pages"
    assert prefixes == exp_prefixes
    assert len(pages) == 2
    if version == "v2":
        assert [p["KeyCount"] for p in pages] == [333, len(exp_prefixes) - 333]


def test_pagination_with_prefix_and_start_after(c, big):
    pages = pages_v2(c, big, Prefix="é/", StartAfter="é/1000", MaxKeys=100)
    keys, _ = collect(pages)
    exp, _ = model(BIG_KEYS, prefix="é/", start_after="é/1000")
    assert keys == exp and len(exp) > 100


def test_max_keys_above_1000_is_capped(c, big):
    resp = c.list_objects_v2(Bucket=big, MaxKeys=5000)
    assert len(resp["Contents"]) == 1000 and resp["KeyCount"] == 1000
    assert resp["IsTruncated"] is True
    resp = c.list_objects(Bucket=big, MaxKeys=5000)
    assert len(resp["Contents"]) == 1000 and resp["IsTruncated"] is True


def test_paginator_v1_and_v2_agree(c, big):
    k2 = [o["Key"] for p in c.get_paginator("list_objects_v2").paginate(Bucket=big, PaginationConfig={"PageSize": 700}) for o in p.get("Contents", [])]
    k1 = [o["Key"] for p in c.get_paginator("list_objects").paginate(Bucket=big, PaginationConfig={"PageSize": 700}) for o in p.get("Contents", [])]
    assert k1 == k2 == bsorted(BIG_KEYS)


def test_fetch_owner(c, big):
    without = c.list_objects_v2(Bucket=big, MaxKeys=5)
    assert all("Owner" not in o for o in without["Contents"])
    with_owner = c.list_objects_v2(Bucket=big, MaxKeys=5, FetchOwner=True)
    assert len(with_owner["Contents"]) == 5
    for o in with_owner["Contents"]:
        assert o.get("Owner", {}).get("ID"), o
    ids = {o["Owner"]["ID"] for o in with_owner["Contents"]}
    assert len(ids) == 1
    # ListObjects v1 reports the same owner (when it reports one).
    v1 = c.list_objects(Bucket=big, MaxKeys=5)
    assert all(o["Owner"]["ID"] in ids for o in v1["Contents"] if "Owner" in o)


def test_key_count_counts_keys_and_prefixes(c, big):
    resp = c.list_objects_v2(Bucket=big, Prefix="", Delimiter="/", MaxKeys=5)
    assert resp["KeyCount"] == 5
    assert len(resp.get("CommonPrefixes", [])) + len(resp.get("Contents", [])) == 5
    resp = c.list_objects_v2(Bucket=big, Prefix="dir00", Delimiter="/")
    assert resp["KeyCount"] == 10 and len(resp["CommonPrefixes"]) == 10
    resp = c.list_objects_v2(Bucket=big, Prefix="dir001/")
    assert resp["KeyCount"] == 1 and [o["Key"] for o in resp["Contents"]] == ["dir001/leaf"]
    resp = c.list_objects_v2(Bucket=big, Prefix="nothing-here/")
    assert resp["KeyCount"] == 0 and "Contents" not in resp


# ====================================================== awkward keys ===
LONG_KEY = "long/" + "x" * (1024 - len("long/") - 2) + "é"
assert len(LONG_KEY.encode()) == 1024
ODD_KEYS = [
    "uni/日本語/ファイル",
    "uni/ünïcödé",
    "uni/\U0001f600-emoji",
    "sp/a b",
    "sp/ leading",
    "sp/trailing ",
    "sp/two  spaces",
    "pct/100%",
    "pct/%41%42",
    "pct/%zz",
    "plus/a+b",
    "plus/+",
    "nl/line1\nline2",
    "nl/ends-with-newline\n",
    "tab/a\tb",
    "xml/<tag>&amp;\"'",
    LONG_KEY,
]
# Not representable in XML 1.0 text: only listable with EncodingType=url.
CTRL_KEYS = ["ctl/\x01soh", "ctl/bell\x07", "ctl/\x1f"]
DELIM_KEYS = [
    "dl|a|1",
    "dl|a|2",
    "dl|b",
    "dl-x-1",
    "dl-x-2",
    "dl-y",
    "dlabc",
    "dlzzabyy",
    "dlzzabzz",
    "dlzzac",
    "dlabab",
]
ENC_KEYS = [
    "enc/a b+c/1",
    "enc/a b+c/2",
    "enc/ü/x",
    "enc/%41",
    "enc/x\x01y",
    "enc/plain",
    "enc/nl\nx",
]
ALL_ODD = ODD_KEYS + CTRL_KEYS + DELIM_KEYS + ENC_KEYS


@pytest.fixture(scope="module")
def odd(c, new_bucket_name):
    name = new_bucket_name("odd-keys")
    c.create_bucket(Bucket=name)
    put_all(c, name, ALL_ODD, threads=8)
    return name


def test_odd_keys_roundtrip(c, odd):
    for k in ODD_KEYS + CTRL_KEYS:
        c.put_object(Bucket=odd, Key=k, Body=k.encode())
        assert c.get_object(Bucket=odd, Key=k)["Body"].read() == k.encode(), repr(k)
        assert c.head_object(Bucket=odd, Key=k)["ContentLength"] == len(k.encode())


def test_odd_keys_listed_exactly(c, odd):
    # boto3 sets EncodingType=url itself and decodes the answer.
    listed = [o["Key"] for p in c.get_paginator("list_objects_v2").paginate(Bucket=odd) for o in p.get("Contents", [])]
    assert listed == bsorted(ALL_ODD)
    listed_v1 = [o["Key"] for p in c.get_paginator("list_objects").paginate(Bucket=odd) for o in p.get("Contents", [])]
    assert listed_v1 == bsorted(ALL_ODD)


def _raw_list(server, raw_s3_request, bucket, params):
    resp = raw_s3_request(server, "GET", f"/{bucket}", query=params)
    assert resp.status == 200, resp.body[:500]
    root = ET.fromstring(resp.body)
    for el in root.iter():
        if "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def test_odd_keys_raw_xml_without_encoding(server, raw_s3_request, odd):
    # Without encoding-type the keys are XML text; newlines and tabs must survive.
    for prefix in ("uni/", "sp/", "pct/", "plus/", "nl/", "tab/", "xml/", "long/"):
        root = _raw_list(server, raw_s3_request, odd, [("list-type", "2"), ("prefix", prefix)])
        got = [e.findtext("Key") for e in root.findall("Contents")]
        assert got == bsorted([k for k in ODD_KEYS if k.startswith(prefix)]), prefix
        assert root.find("EncodingType") is None


def test_start_after_long_key(c, odd):
    resp = c.list_objects_v2(Bucket=odd, Prefix="long/", StartAfter=LONG_KEY)
    assert resp["KeyCount"] == 0
    resp = c.list_objects_v2(Bucket=odd, Prefix="long/", StartAfter=LONG_KEY[:-1])
    assert [o["Key"] for o in resp["Contents"]] == [LONG_KEY]


@pytest.mark.parametrize(
    "prefix,delimiter",
    [("dl", "|"), ("dl", "-"), ("dl", "ab"), ("", "ab"), ("dl|", "|"), ("nl/", "\n"), ("sp/", " ")],
    ids=["pipe", "dash", "multi-char", "multi-char-no-prefix", "pipe-nested", "newline", "space"],
)
def test_other_delimiters(c, odd, prefix, delimiter):
    exp_keys, exp_prefixes = model(ALL_ODD, prefix=prefix, delimiter=delimiter)
    for version in ("v1", "v2"):
        pages = (pages_v1 if version == "v1" else pages_v2)(c, odd, Prefix=prefix, Delimiter=delimiter)
        keys, prefixes = collect(pages)
        assert keys == exp_keys, (version, keys, exp_keys)
        assert prefixes == exp_prefixes, (version, prefixes, exp_prefixes)
    # Page by page too: one entry per page.
    pages = pages_v2(c, odd, Prefix=prefix, Delimiter=delimiter, MaxKeys=1)
    keys, prefixes = collect(pages)
    assert keys == exp_keys and prefixes == exp_prefixes


def test_multichar_delimiter_exact_prefixes(c, odd):
    resp = c.list_objects_v2(Bucket=odd, Prefix="dl", Delimiter="ab")
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["dlab", "dlzzab"]
    assert "dlzzac" in [o["Key"] for o in resp["Contents"]]


# ============================================================ url encoding ===
def _decode(s):
    return unquote_plus(s)


def _needs_encoding(s):
    return any(not (ch.isascii() and (ch.isalnum() or ch in "-_.~/")) for ch in s)


def _check_encoded(raw, expected, what, failures):
    if raw is None:
        failures.append(f"{what}: missing (expected {expected!r})")
        return
    if _decode(raw) != expected:
        failures.append(f"{what}: {raw!r} decodes to {_decode(raw)!r}, expected {expected!r}")
    elif _needs_encoding(expected) and raw == expected:
        failures.append(f"{what}: {raw!r} was not url-encoded")


def test_encoding_type_url_v2(c, odd):
    prefix, delimiter, start_after = "enc/", "+", "enc/ "
    exp_keys, exp_prefixes = model(ALL_ODD, prefix=prefix, delimiter=delimiter, start_after=start_after)
    resp = c.list_objects_v2(Bucket=odd, Prefix=prefix, Delimiter=delimiter, StartAfter=start_after, EncodingType="url")
    assert resp.get("EncodingType") == "url"
    failures = []
    _check_encoded(resp.get("Delimiter"), delimiter, "Delimiter", failures)
    _check_encoded(resp.get("StartAfter"), start_after, "StartAfter", failures)
    _check_encoded(resp.get("Prefix"), prefix, "Prefix", failures)
    keys = [o["Key"] for o in resp.get("Contents", [])]
    prefixes = [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
    if [_decode(k) for k in keys] != exp_keys:
        failures.append(f"Keys {keys!r} decode to {[_decode(k) for k in keys]!r}, expected {exp_keys!r}")
    for raw, exp in zip(keys, exp_keys):
        _check_encoded(raw, exp, "Key", failures)
    if [_decode(p) for p in prefixes] != exp_prefixes:
        failures.append(f"CommonPrefixes {prefixes!r}, expected {exp_prefixes!r}")
    for raw, exp in zip(prefixes, exp_prefixes):
        _check_encoded(raw, exp, "CommonPrefix", failures)
    assert not failures, "\n".join(failures)
    assert exp_prefixes == ["enc/a b+"] and "enc/x\x01y" in exp_keys  # the case is not vacuous


def test_encoding_type_url_v2_prefix_needing_encoding(c, odd):
    resp = c.list_objects_v2(Bucket=odd, Prefix="enc/ü", EncodingType="url")
    failures = []
    _check_encoded(resp.get("Prefix"), "enc/ü", "Prefix", failures)
    keys = [o["Key"] for o in resp.get("Contents", [])]
    assert [_decode(k) for k in keys] == ["enc/ü/x"]
    _check_encoded(keys[0], "enc/ü/x", "Key", failures)
    assert not failures, "\n".join(failures)


def test_encoding_type_url_v1_markers(c, odd):
    prefix, delimiter = "enc/", "+"
    exp_keys, exp_prefixes = model(ALL_ODD, prefix=prefix, delimiter=delimiter)
    expected_items = bsorted(exp_keys + exp_prefixes)
    failures = []
    marker = None
    seen = []
    for _ in range(20):
        args = dict(Bucket=odd, Prefix=prefix, Delimiter=delimiter, MaxKeys=2, EncodingType="url")
        if marker is not None:
            args["Marker"] = marker
        resp = c.list_objects(**args)
        _check_encoded(resp.get("Prefix"), prefix, "Prefix", failures)
        _check_encoded(resp.get("Delimiter"), delimiter, "Delimiter", failures)
        if marker is not None:
            _check_encoded(resp.get("Marker"), marker, "Marker", failures)
        items = [o["Key"] for o in resp.get("Contents", [])] + [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
        decoded = [_decode(i) for i in items]
        for raw, dec in zip(items, decoded):
            _check_encoded(raw, dec, "Key/CommonPrefix", failures)
        seen += decoded
        if not resp["IsTruncated"]:
            break
        nm = resp.get("NextMarker")
        _check_encoded(nm, max(decoded, key=lambda s: s.encode()), "NextMarker", failures)
        # The encoded NextMarker is sent back decoded (a client decodes what it asked to be encoded).
        marker = _decode(nm) if nm else max(decoded, key=lambda s: s.encode())
    assert bsorted(seen) == expected_items and len(seen) == len(set(seen)), seen
    assert not failures, "\n".join(failures)


def test_control_characters_only_with_url_encoding(c, odd):
    resp = c.list_objects_v2(Bucket=odd, Prefix="ctl/", EncodingType="url")
    keys = [o["Key"] for o in resp.get("Contents", [])]
    assert [_decode(k) for k in keys] == bsorted(CTRL_KEYS)
    assert all("\x01" not in k and "\x07" not in k and "\x1f" not in k for k in keys)
