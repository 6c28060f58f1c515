"""The web console at /console/, driven in real headless Chromium (Debian's chromium and
chromium-driver, through Selenium), and its HTTP endpoints driven directly.

One server (4 disks, EC 2+2) and one browser serve the whole module; each test logs in as it
needs. What a test does in the browser it checks with boto3 or curl against the server.
With TESSERA_CONSOLE_SCREENSHOTS=DIR the screenshot test writes its PNGs there (that is how
docs/console/ is made); otherwise to a temporary directory.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import ROOT_PASSWORD, ROOT_USER, poll

MiB = 1024 * 1024
WAIT = 30


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    assert Path(browser).exists() and Path(driver).exists(), (
        "chromium and chromium-driver are needed (scripts/test installs them)"
    )
    return browser, driver


@pytest.fixture(scope="module")
def srv(server_factory, tmp_path_factory):
    s = server_factory(tmp_path_factory.mktemp("console"), 4, extra_args=["--disk-check-secs", "1"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    path, driver_path = chromium_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = path
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
        # Nothing but the server under test: no update checks, sync, or first-run pages.
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-default-apps", "--disable-extensions",
        "--no-proxy-server",
    ):
        opts.add_argument(arg)
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    d = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=driver_path))
    d.set_window_size(1280, 900)
    yield d
    d.quit()


def wait(d, condition, timeout=WAIT):
    return WebDriverWait(d, timeout).until(condition)


def by_testid(d, name, timeout=WAIT):
    return wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, f"[data-testid='{name}']")), timeout)


def clickable(d, name, timeout=WAIT):
    return wait(d, EC.element_to_be_clickable((By.CSS_SELECTOR, f"[data-testid='{name}']")), timeout)


def row(d, kind, attr, value, timeout=WAIT):
    sel = f"[data-testid='{kind}'][data-{attr}='{value}']"
    return wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, sel)), timeout)


def error_text(d, timeout=WAIT) -> str:
    """The newest error message on the page."""
    by_testid(d, "message-error", timeout)
    return d.find_elements(By.CSS_SELECTOR, "[data-testid='message-error']")[-1].text


def wait_error(d, text, timeout=WAIT) -> str:
    """Waits for an error message containing `text`; returns it."""
    wait(d, lambda drv: any(text in e.text for e in drv.find_elements(By.CSS_SELECTOR, "[data-testid='message-error']")), timeout)
    return error_text(d)


def login(d, srv, access=ROOT_USER, secret=ROOT_PASSWORD):
    d.get(f"{srv.url}/console/")
    # The page asks for the session first: then it shows either the login form or a logout.
    wait(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "[data-testid='logout'], [data-testid='login-access-key']"))
    if d.find_elements(By.CSS_SELECTOR, "[data-testid='logout']"):
        clickable(d, "logout").click()
    by_testid(d, "login-access-key").send_keys(access)
    by_testid(d, "login-secret-key").send_keys(secret)
    clickable(d, "login-submit").click()
    wait(d, lambda drv: drv.find_element(By.CSS_SELECTOR, "[data-testid='whoami']").text == access)


def open_hash(d, srv, fragment):
    d.get(f"{srv.url}/console/#{fragment}")


def upload_via_input(d, name, paths):
    field = by_testid(d, name)
    field.send_keys("\n".join(str(p) for p in paths))


def test_login_create_bucket_upload_a_large_file_and_a_folder(srv, browser, s3, tmp_path, random_bytes, new_bucket_name):
    d = browser
    login(d, srv)
    bucket = new_bucket_name("console")
    by_testid(d, "bucket-create-name").send_keys(bucket)
    clickable(d, "bucket-create-submit").click()
    row(d, "bucket-row", "name", bucket).find_element(By.TAG_NAME, "a").click()

    big = tmp_path / "big.bin"
    big.write_bytes(random_bytes(20 * MiB, "console-big"))
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    small = {"photos/a.txt": b"first file\n", "photos/b.json": b'{"b": 2}\n', "photos/nested/c.bin": random_bytes(3000, "c")}
    for key, data in small.items():
        (tmp_path / key).write_bytes(data)

    upload_via_input(d, "object-upload-input", [big])
    row(d, "object-row", "key", "big.bin", timeout=120)
    upload_via_input(d, "folder-upload-input", [folder])
    row(d, "prefix-row", "prefix", "photos/", timeout=60)

    c = s3(srv)
    got = c.get_object(Bucket=bucket, Key="big.bin")
    assert got["Body"].read() == big.read_bytes()
    # 20 MiB goes up in parts of 8 MiB: a multipart upload of three parts.
    assert got["ETag"].strip('"').endswith("-3"), got["ETag"]
    listed = {o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {"big.bin", *small}, listed
    for key, data in small.items():
        assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key

    # The folder page lists the folder's files; the breadcrumbs lead back up.
    row(d, "prefix-row", "prefix", "photos/").find_element(By.TAG_NAME, "a").click()
    row(d, "object-row", "key", "photos/a.txt")
    row(d, "prefix-row", "prefix", "photos/nested/")
    d.find_element(By.LINK_TEXT, bucket).click()
    row(d, "object-row", "key", "big.bin")

    # The bucket list counts them.
    d.find_element(By.LINK_TEXT, "Buckets").click()
    counted = row(d, "bucket-row", "name", bucket)
    wait(d, lambda _: counted.find_element(By.CSS_SELECTOR, "[data-testid='bucket-objects']").text == "4")
    size = sum(len(v) for v in small.values()) + 20 * MiB
    assert counted.find_element(By.CSS_SELECTOR, "[data-testid='bucket-size']").get_attribute("title").startswith(f"{size} bytes")


def test_share_link_works_until_it_expires(srv, browser, s3, new_bucket_name):
    d = browser
    c = s3(srv)
    bucket = new_bucket_name("share")
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="docs/report 1.txt", Body=b"shared bytes")
    login(d, srv)
    open_hash(d, srv, f"/o/{bucket}/docs/report%201.txt")
    clickable(d, "object-share").click()
    amount = by_testid(d, "share-expiry")
    amount.clear()
    amount.send_keys("1")
    Select(by_testid(d, "share-expiry-unit")).select_by_value("hours")
    clickable(d, "share-create").click()
    url_field = by_testid(d, "share-url")
    wait(d, lambda _: url_field.get_attribute("value").startswith("http"))
    url = url_field.get_attribute("value")
    assert "X-Amz-Expires=3600" in url, url
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", url], capture_output=True, timeout=30)
    body, status = out.stdout.rsplit(b"\n", 1)
    assert (status, body) == (b"200", b"shared bytes")

    amount.clear()
    amount.send_keys("2")
    Select(by_testid(d, "share-expiry-unit")).select_by_value("seconds")
    clickable(d, "share-create").click()
    wait(d, lambda _: "X-Amz-Expires=2&" in url_field.get_attribute("value") or url_field.get_attribute("value").endswith("X-Amz-Expires=2"))
    short = url_field.get_attribute("value")
    time.sleep(3)
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", short], capture_output=True, timeout=30)
    assert out.stdout == b"403"


def test_tags_are_edited_and_a_large_upload_can_be_cancelled(srv, browser, s3, tmp_path, random_bytes, new_bucket_name):
    d = browser
    c = s3(srv)
    bucket = new_bucket_name("tags")
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="photo.jpg", Body=b"jpeg", Tagging="team=blue")
    login(d, srv)
    open_hash(d, srv, f"/o/{bucket}/photo.jpg")
    wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "[data-testid='tag-row']")) == 1)
    d.find_element(By.XPATH, "//button[text()='Add tag']").click()
    new_key, new_value = d.find_elements(By.CSS_SELECTOR, "[data-testid='tag-row']")[-1].find_elements(By.TAG_NAME, "input")
    new_key.send_keys("year")
    new_value.send_keys("2026")
    clickable(d, "tags-save").click()
    poll(lambda: len(c.get_object_tagging(Bucket=bucket, Key="photo.jpg")["TagSet"]) == 2, 10)
    assert {t["Key"]: t["Value"] for t in c.get_object_tagging(Bucket=bucket, Key="photo.jpg")["TagSet"]} == {"team": "blue", "year": "2026"}

    # A multipart upload cancelled half-way leaves neither an object nor an open upload.
    big = tmp_path / "slow.bin"
    big.write_bytes(random_bytes(24 * MiB, "slow"))
    open_hash(d, srv, f"/b/{bucket}/")
    by_testid(d, "object-upload-input")
    d.set_network_conditions(offline=False, latency=0, download_throughput=100 * MiB, upload_throughput=2 * MiB)
    try:
        upload_via_input(d, "object-upload-input", [big])
        progress = row(d, "upload-row", "key", "slow.bin").find_element(By.TAG_NAME, "progress")
        wait(d, lambda _: int(progress.get_attribute("value") or 0) > 0)
        assert c.list_multipart_uploads(Bucket=bucket).get("Uploads"), "no multipart upload under way"
        clickable(d, "upload-cancel").click()
        wait(d, lambda drv: row(drv, "upload-row", "key", "slow.bin").find_element(By.CLASS_NAME, "state").text == "cancelled")
    finally:
        d.delete_network_conditions()
    poll(lambda: not c.list_multipart_uploads(Bucket=bucket).get("Uploads"), 10)
    assert [o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]] == ["photo.jpg"]


def test_delete_asks_for_confirmation(srv, browser, s3, new_bucket_name):
    d = browser
    c = s3(srv)
    bucket = new_bucket_name("delete")
    c.create_bucket(Bucket=bucket)
    for key in ("keep.txt", "one.txt", "two.txt", "three.txt"):
        c.put_object(Bucket=bucket, Key=key, Body=key.encode())
    login(d, srv)
    open_hash(d, srv, f"/o/{bucket}/one.txt")
    clickable(d, "object-delete").click()
    # Cancelled first: nothing goes.
    dialog = wait(d, EC.visibility_of_element_located((By.ID, "confirm-dialog")))
    dialog.find_element(By.XPATH, ".//button[text()='Cancel']").click()
    assert c.head_object(Bucket=bucket, Key="one.txt")["ContentLength"] == 7
    clickable(d, "object-delete").click()
    clickable(d, "confirm").click()
    row(d, "object-row", "key", "keep.txt")
    assert {o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]} == {"keep.txt", "two.txt", "three.txt"}

    # Several at once, from the folder's list.
    for key in ("two.txt", "three.txt"):
        row(d, "object-row", "key", key).find_element(By.CSS_SELECTOR, "[data-testid='object-select']").click()
    clickable(d, "objects-delete-selected").click()
    clickable(d, "confirm").click()
    wait(d, lambda drv: not drv.find_elements(By.CSS_SELECTOR, "[data-testid='object-row'][data-key='two.txt']"))
    assert [o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]] == ["keep.txt"]


def test_restore_an_older_version(srv, browser, s3, new_bucket_name):
    d = browser
    c = s3(srv)
    bucket = new_bucket_name("versions")
    c.create_bucket(Bucket=bucket)
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = c.put_object(Bucket=bucket, Key="notes.txt", Body=b"first draft")["VersionId"]
    c.put_object(Bucket=bucket, Key="notes.txt", Body=b"second draft")
    login(d, srv)
    open_hash(d, srv, f"/o/{bucket}/notes.txt")
    row(d, "version-row", "version-id", v1).find_element(By.CSS_SELECTOR, "[data-testid='version-restore']").click()
    poll(lambda: c.get_object(Bucket=bucket, Key="notes.txt")["Body"].read() == b"first draft", 20)
    versions = c.list_object_versions(Bucket=bucket, Prefix="notes.txt")["Versions"]
    assert len(versions) == 3, versions

    # A deleted object shows with "Show deleted", and its page offers its versions.
    c.delete_object(Bucket=bucket, Key="notes.txt")
    open_hash(d, srv, f"/b/{bucket}/")
    clickable(d, "show-deleted").click()
    deleted = row(d, "object-row", "key", "notes.txt")
    assert "deleted" in deleted.get_attribute("class")


def test_bucket_settings(srv, browser, s3, new_bucket_name):
    d = browser
    c = s3(srv)
    bucket = new_bucket_name("settings")
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="public.txt", Body=b"for everyone")
    login(d, srv)
    open_hash(d, srv, f"/settings/{bucket}")

    Select(by_testid(d, "versioning-status")).select_by_value("Enabled")
    clickable(d, "versioning-save").click()
    poll(lambda: c.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled", 10)

    # A broken policy gets the server's MalformedPolicy message.
    editor = by_testid(d, "policy-editor")
    editor.clear()
    editor.send_keys('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}')
    clickable(d, "policy-save").click()
    assert wait_error(d, "MalformedPolicy: ").startswith("MalformedPolicy: Missing required field Principal")
    # The canned public-read opens the bucket to anonymous reads.
    Select(by_testid(d, "policy-canned")).select_by_value("public-read")
    clickable(d, "policy-save").click()
    by_testid(d, "message-notice")
    status, _, body = request(srv, "GET", f"/{bucket}/public.txt")
    assert (status, body) == (200, b"for everyone")
    Select(by_testid(d, "policy-canned")).select_by_value("private")
    clickable(d, "policy-save").click()
    poll(lambda: request(srv, "GET", f"/{bucket}/public.txt")[0] == 403, 10)

    # Lifecycle as S3 XML: the server checks it, with its own message.
    d.find_element(By.XPATH, "//section[@aria-label='Lifecycle rules']//summary").click()
    lifecycle = by_testid(d, "setting-lifecycle")
    lifecycle.send_keys("<LifecycleConfiguration><Rule><ID>old</ID><Status>Enabled</Status><Filter><Prefix>tmp/</Prefix></Filter>"
                        "<Expiration><Days>0</Days></Expiration></Rule></LifecycleConfiguration>")
    clickable(d, "setting-lifecycle-save").click()
    wait_error(d, "'Days' for Expiration action must be a positive integer")
    lifecycle.clear()
    lifecycle.send_keys("<LifecycleConfiguration><Rule><ID>old</ID><Status>Enabled</Status><Filter><Prefix>tmp/</Prefix></Filter>"
                        "<Expiration><Days>7</Days></Expiration></Rule></LifecycleConfiguration>")
    clickable(d, "setting-lifecycle-save").click()
    poll(lambda: c.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["Expiration"]["Days"] == 7, 10)
    # What exists shows when the page opens.
    d.refresh()
    assert by_testid(d, "setting-lifecycle-state").text == "configured"
    assert by_testid(d, "setting-cors-state").text == "none"
    assert "<Days>7</Days>" in by_testid(d, "setting-lifecycle").get_attribute("value")


def test_readonly_user_is_refused_with_the_servers_message_and_logs_out(srv, browser, s3, tmp_path, new_bucket_name):
    d = browser
    c = s3(srv)
    bucket = new_bucket_name("readonly")
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="existing.txt", Body=b"hello")
    login(d, srv)
    open_hash(d, srv, "/users")
    name = f"viewer{int(time.time() * 1000) % 100000}"
    by_testid(d, "user-create-name").send_keys(name)
    Select(by_testid(d, "user-create-policy")).select_by_value("readonly")
    clickable(d, "user-create-submit").click()
    secret = by_testid(d, "user-secret").get_attribute("value")
    access = by_testid(d, "user-access-key").text
    assert len(secret) >= 20 and access
    row(d, "user-row", "name", name)

    login(d, srv, access, secret)
    # A readonly user has no Users page.
    assert not d.find_elements(By.CSS_SELECTOR, "[data-testid='nav-users']")
    open_hash(d, srv, f"/b/{bucket}/")
    row(d, "object-row", "key", "existing.txt")
    f = tmp_path / "refused.txt"
    f.write_bytes(b"not allowed")
    upload_via_input(d, "object-upload-input", [f])
    wait_error(d, "AccessDenied: Access Denied")
    assert [o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]] == ["existing.txt"]

    clickable(d, "logout").click()
    by_testid(d, "login-access-key")
    assert not any(ck["name"] == "tessera_console" for ck in d.get_cookies())
    # The session is over on the server too, not only forgotten by the page.
    d.get(f"{srv.url}/console/api/session")
    assert "NoSession" in d.page_source


def disk_states(d) -> list[str]:
    # Read in one script: the page redraws itself every 5 s, which would make elements found
    # one call earlier stale.
    return d.execute_script(
        "return [...document.querySelectorAll(\"[data-testid='cluster-disk-row']\")].map(r => r.dataset.state)")


def test_cluster_page_shows_a_removed_disk_offline(srv, browser, s3):
    d = browser
    login(d, srv)
    open_hash(d, srv, "/cluster")
    wait(d, lambda drv: len(disk_states(drv)) == 4)
    assert disk_states(d) == ["online"] * 4
    clickable(d, "heal-start").click()
    away = srv.dirs[3].with_name(srv.dirs[3].name + "-away")
    os.rename(srv.dirs[3], away)
    try:
        # The page refreshes itself every 5 s; the disk monitor checks every second.
        wait(d, lambda drv: disk_states(drv).count("offline") == 1, 30)
        offline = d.execute_script(
            "return document.querySelector(\"[data-testid='cluster-disk-row'][data-state='offline']\").dataset.path")
        assert offline == str(srv.dirs[3])
    finally:
        os.rename(away, srv.dirs[3])
    wait(d, lambda drv: disk_states(drv) == ["online"] * 4, 30)


def test_no_request_leaves_the_servers_origin(srv, browser):
    """Every request the pages made in this module went to the server itself."""
    d = browser
    login(d, srv)
    for fragment in ("/", "/users", "/cluster"):
        open_hash(d, srv, fragment)
        time.sleep(0.5)
    urls = []
    for entry in d.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    assert urls, "no request was recorded"
    # Chromium's own pages (chrome://, the blank tab) load nothing from the network.
    network = [u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss", "ftp")]
    assert any(u.startswith(srv.url + "/console/") for u in network), network
    outside = [u for u in network if not u.startswith(srv.url + "/")]
    assert not outside, outside
    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE" and "Content Security Policy" in e["message"]]
    assert not severe, severe


def test_main_pages_at_desktop_and_phone_width(srv, browser, s3, new_bucket_name, tmp_path):
    d = browser
    out = Path(os.environ.get("TESSERA_CONSOLE_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    c = s3(srv)
    bucket = new_bucket_name("shots")
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="readme.md", Body=b"# tessera\n\nObjects, erasure coded.\n", ContentType="text/markdown")
    c.put_object(Bucket=bucket, Key="data/report.json", Body=b'{"objects": 3, "ok": true}', ContentType="application/json")
    c.put_object(Bucket=bucket, Key="data/logo.svg", Body=(Path(__file__).parent.parent / "gateway/console/favicon.svg").read_bytes(), ContentType="image/svg+xml")
    login(d, srv)
    pages = {
        "buckets": "/",
        "browser": f"/b/{bucket}/",
        "object": f"/o/{bucket}/data/report.json",
        "users": "/users",
        "cluster": "/cluster",
    }
    try:
        for width in (1280, 360):
            d.set_window_size(width, 900)
            for name, fragment in pages.items():
                open_hash(d, srv, fragment)
                wait(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "main h1, main nav.crumbs"))
                time.sleep(0.3)
                # Nothing wider than the window: usable at 360 px without sideways scrolling.
                overflow = d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, f"{name} at {width} px is {overflow} px too wide"
                path = out / f"{name}-{width}.png"
                assert d.save_screenshot(str(path))
                assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        d.set_window_size(1280, 900)


# --- the console's HTTP endpoints, without a browser ---------------------------------------

def request(srv, method, path, body=None, headers=None):
    """One HTTP request to `srv` (a server, or a port number) on 127.0.0.1."""
    port = srv if isinstance(srv, int) else srv.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.headers, data


def api_login(srv, access=ROOT_USER, secret=ROOT_PASSWORD):
    status, headers, body = request(srv, "POST", "/console/api/login", json.dumps({"accessKey": access, "secretKey": secret}),
                                    {"content-type": "application/json", "x-tessera-csrf": "login"})
    assert status == 200, body
    cookie = headers["set-cookie"]
    return cookie.split(";")[0], json.loads(body)["csrf"], cookie


def test_login_checks_and_the_session_cookie(srv):
    body = json.dumps({"accessKey": ROOT_USER, "secretKey": ROOT_PASSWORD})
    status, _, out = request(srv, "POST", "/console/api/login", body, {"content-type": "application/json"})
    assert status == 403 and json.loads(out)["code"] == "InvalidCsrfToken", out
    bad = json.dumps({"accessKey": ROOT_USER, "secretKey": "wrong"})
    status, _, out = request(srv, "POST", "/console/api/login", bad, {"x-tessera-csrf": "login"})
    assert status == 403 and json.loads(out)["code"] == "SignatureDoesNotMatch", out
    unknown = json.dumps({"accessKey": "NOSUCHKEY", "secretKey": "x"})
    status, _, out = request(srv, "POST", "/console/api/login", unknown, {"x-tessera-csrf": "login"})
    assert json.loads(out) == {"code": "InvalidAccessKeyId", "message": "The AWS Access Key Id you provided does not exist in our records."}
    status, _, out = request(srv, "POST", "/console/api/login", b"{not json", {"x-tessera-csrf": "login"})
    assert status == 400 and json.loads(out)["code"] == "InvalidRequest"

    cookie, csrf, raw = api_login(srv)
    assert "HttpOnly" in raw and "SameSite=Strict" in raw and "Path=/console" in raw, raw
    assert "Secure" not in raw, "plain HTTP: a Secure cookie would never come back"
    status, _, out = request(srv, "GET", "/console/api/session", headers={"cookie": cookie})
    assert status == 200 and json.loads(out)["accessKey"] == ROOT_USER and json.loads(out)["root"] is True
    # The secret never comes back.
    assert ROOT_PASSWORD.encode() not in out


def test_requests_act_as_the_session_and_need_the_csrf_token(srv, s3, new_bucket_name):
    bucket = new_bucket_name("api")
    status, _, out = request(srv, "GET", "/console/api/s3/")
    assert status == 401 and json.loads(out)["code"] == "NoSession"
    cookie, csrf, _ = api_login(srv)
    status, _, out = request(srv, "PUT", f"/console/api/s3/{bucket}", headers={"cookie": cookie})
    assert status == 403 and json.loads(out)["code"] == "InvalidCsrfToken"
    status, _, out = request(srv, "PUT", f"/console/api/s3/{bucket}", headers={"cookie": cookie, "x-tessera-csrf": "guess"})
    assert status == 403
    status, _, out = request(srv, "PUT", f"/console/api/s3/{bucket}", headers={"cookie": cookie, "x-tessera-csrf": csrf})
    assert status == 200, out
    html = b"<html><script>alert(document.cookie)</script></html>"
    key = "odd name+%/ünïcode (1).html"
    from urllib.parse import quote
    path = f"/console/api/s3/{bucket}/{quote(key)}"
    status, _, out = request(srv, "PUT", path, html, {"cookie": cookie, "x-tessera-csrf": csrf, "content-type": "text/html"})
    assert status == 200, out
    assert s3(srv).get_object(Bucket=bucket, Key=key)["Body"].read() == html
    # An HTML object opened through the console runs no script in the console's origin.
    status, headers, out = request(srv, "GET", path, headers={"cookie": cookie})
    assert status == 200 and out == html
    assert headers["content-security-policy"] == "sandbox"
    assert headers["x-content-type-options"] == "nosniff"
    # S3 errors come through as the server wrote them.
    status, _, out = request(srv, "GET", f"/console/api/s3/{bucket}/missing", headers={"cookie": cookie})
    assert status == 404 and b"<Code>NoSuchKey</Code>" in out
    # Root reaches the admin API through the console.
    status, _, out = request(srv, "GET", "/console/api/admin/info", headers={"cookie": cookie})
    assert status == 200 and len(json.loads(out)["disks"]) == 4
    # Logout ends the session.
    status, headers, _ = request(srv, "POST", "/console/api/logout", headers={"cookie": cookie, "x-tessera-csrf": csrf})
    assert status == 200 and "Max-Age=0" in headers["set-cookie"]
    status, _, _ = request(srv, "GET", "/console/api/s3/", headers={"cookie": cookie})
    assert status == 401


def test_a_removed_users_session_stops_working(srv, s3):
    from test_users import admin
    proc = admin(srv, "--json", "user", "add", "gone-soon", "--policy", "readwrite")
    key = json.loads(proc.stdout)
    cookie, _, _ = api_login(srv, key["access_key"], key["secret_key"])
    status, _, _ = request(srv, "GET", "/console/api/s3/", headers={"cookie": cookie})
    assert status == 200
    # A user may not use the admin API, through the console either.
    status, _, out = request(srv, "GET", "/console/api/admin/info", headers={"cookie": cookie})
    assert status == 403 and b"AccessDenied" in out
    admin(srv, "user", "remove", "gone-soon")
    status, _, out = request(srv, "GET", "/console/api/s3/", headers={"cookie": cookie})
    assert status == 403 and json.loads(out)["code"] == "InvalidAccessKeyId", out
    status, _, _ = request(srv, "GET", "/console/api/session", headers={"cookie": cookie})
    assert status == 401


def test_bucket_usage_covers_only_the_buckets_the_user_may_list(srv, s3, new_bucket_name):
    from test_users import admin, bucket_names
    root_bucket = new_bucket_name("rootonly")
    c = s3(srv)
    c.create_bucket(Bucket=root_bucket)
    c.put_object(Bucket=root_bucket, Key="k", Body=b"12345")
    key = json.loads(admin(srv, "--json", "user", "add", "tenant-usage", "--policy", "owner").stdout)
    mine = new_bucket_name("tenant")
    tenant = s3(srv, access_key=key["access_key"], secret_key=key["secret_key"])
    tenant.create_bucket(Bucket=mine)
    tenant.put_object(Bucket=mine, Key="a", Body=b"abc")
    tenant.put_object(Bucket=mine, Key="b", Body=b"defg")

    cookie, _, _ = api_login(srv, key["access_key"], key["secret_key"])
    status, _, out = request(srv, "GET", "/console/api/usage", headers={"cookie": cookie})
    assert status == 200, out
    usage = json.loads(out)
    assert set(usage) == bucket_names(tenant) and root_bucket not in usage, usage
    assert usage[mine] == {"objects": 2, "bytes": 7, "versions": 2, "versionBytes": 7}
    cookie, _, _ = api_login(srv)
    usage = json.loads(request(srv, "GET", "/console/api/usage", headers={"cookie": cookie})[2])
    assert usage[root_bucket]["bytes"] == 5 and usage[mine]["objects"] == 2
    admin(srv, "user", "remove", "tenant-usage")


def test_stats_for_the_charts(srv, s3):
    cookie, _, _ = api_login(srv)
    c = s3(srv)
    c.list_buckets()
    status, _, out = request(srv, "GET", "/console/api/stats", headers={"cookie": cookie})
    assert status == 200, out
    doc = json.loads(out)
    assert doc["intervalSecs"] == 10
    last = doc["points"][-1]
    # The live interval holds at least the request just made.
    assert last["requestsPerSec"] > 0, doc
    assert last["latencyMeanMs"] > 0, last
    # The 95th percentile is given as the bound of its latency bucket.
    assert last["latencyP95Ms"] in (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000), last
    status, _, _ = request(srv, "GET", "/console/api/stats")
    assert status == 401


def test_the_page_and_its_headers(srv):
    status, headers, out = request(srv, "GET", "/console")
    assert status == 308 and headers["location"] == "/console/"
    status, headers, out = request(srv, "GET", "/console/")
    assert status == 200 and b'data-testid' not in out[:0] and b"app.js" in out
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp, csp
    for asset in ("app.js", "ui.js", "s3.js", "browser.js", "object.js", "admin.js", "app.css", "favicon.svg"):
        status, _, out = request(srv, "GET", f"/console/{asset}")
        assert status == 200 and out, asset
    status, _, _ = request(srv, "GET", "/console/nope.js")
    assert status == 404


def test_a_bucket_named_console_stays_reachable_by_signed_requests(srv, s3):
    c = s3(srv)
    try:
        c.create_bucket(Bucket="console")
    except c.exceptions.BucketAlreadyOwnedByYou:
        pass
    c.put_object(Bucket="console", Key="api/s3/x", Body=b"an object, not the console")
    assert c.get_object(Bucket="console", Key="api/s3/x")["Body"].read() == b"an object, not the console"
    c.delete_object(Bucket="console", Key="api/s3/x")
    c.delete_bucket(Bucket="console")


def test_console_off(make_server):
    off = make_server(1, extra_args=["--console", "off"])
    status, _, out = request(off, "GET", "/console/")
    assert status != 200 or b"app.js" not in out
    assert b"<Error>" in out
    assert "console:" not in off.log_tail(200)


def test_the_consoles_own_port(make_server, s3):
    from conftest import free_port
    port = free_port()
    srv = make_server(1, extra_args=["--console-address", f"127.0.0.1:{port}"])
    assert f"http://127.0.0.1:{port}/ (--console-address)" in srv.log_tail(200)
    status, headers, _ = request(port, "GET", "/")
    assert status == 308 and headers["location"] == "/console/"
    status, _, out = request(port, "GET", "/console/")
    assert status == 200 and b"app.js" in out
    # It serves S3 as well, so a share link made there works there.
    c = s3(f"http://127.0.0.1:{port}")
    c.create_bucket(Bucket="via-console-port")
    assert "via-console-port" in {b["Name"] for b in c.list_buckets()["Buckets"]}
    # The S3 port's own / is S3's, not the console's.
    status, _, out = request(srv, "GET", "/")
    assert status == 403 and b"<Code>AccessDenied</Code>" in out


def test_over_https_the_cookie_is_secure_and_share_links_are_https(server_factory, test_ca, tmp_path):
    import ssl
    srv = server_factory(tmp_path / "tls", 1, ca=test_ca)
    context = ssl.create_default_context(cafile=str(test_ca.ca_pem))

    def tls_request(method, path, body=None, headers=None):
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, timeout=30, context=context)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, resp.headers, data

    status, headers, out = tls_request("POST", "/console/api/login",
                                       json.dumps({"accessKey": ROOT_USER, "secretKey": ROOT_PASSWORD}),
                                       {"x-tessera-csrf": "login"})
    assert status == 200, out
    assert "; Secure" in headers["set-cookie"], headers["set-cookie"]
    cookie, csrf = headers["set-cookie"].split(";")[0], json.loads(out)["csrf"]
    assert tls_request("PUT", "/console/api/s3/tls-share", headers={"cookie": cookie, "x-tessera-csrf": csrf})[0] == 200
    assert tls_request("PUT", "/console/api/s3/tls-share/k", b"over tls", {"cookie": cookie, "x-tessera-csrf": csrf})[0] == 200
    status, _, out = tls_request("POST", "/console/api/presign", json.dumps({"bucket": "tls-share", "key": "k", "expiresSecs": 60}),
                                 {"cookie": cookie, "x-tessera-csrf": csrf})
    url = json.loads(out)["url"]
    assert url.startswith(f"https://127.0.0.1:{srv.port}/tls-share/k?"), url
    assert urllib.request.urlopen(url, context=context, timeout=30).read() == b"over tls"
