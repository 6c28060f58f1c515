"""Bucket event notifications against the real binary and webhook receivers on 127.0.0.1: the
configuration calls and their validation, S3's event JSON for every kind of write and delete
(and lifecycle expiry), prefix/suffix filters, the bearer token, delivery that a dead or
hanging target neither slows nor blocks, retries that survive a restart, and the bounded
queue, all counted in /metrics.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import free_port, new_bucket_name, s3_client
from test_lifecycle import eventually
from test_object_lock import error_of
from test_observability import scrape
from test_presigned_post import post_form, presigned_post

WAIT = 20


class Receiver:
    """A webhook receiver: records every POST answered 200 (headers, lowercased, and JSON body);
    answers `status`."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.requests = 0
        self.status = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests += 1
                    status = receiver.status
                    if status == 200:
                        receiver.events.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                                "body": json.loads(body)})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/events"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def records(self, bucket: str) -> list[dict]:
        with self.lock:
            return [r for e in self.events for r in e["body"]["Records"] if r["s3"]["bucket"]["name"] == bucket]

    def wait_for(self, bucket: str, n: int, timeout: float = WAIT) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(got := self.records(bucket)) < n:
            if time.monotonic() > deadline:
                pytest.fail(f"{len(got)} of {n} events for {bucket} within {timeout}s: {got}", pytrace=False)
            time.sleep(0.2)
        return got

    def close(self) -> None:
        self.http.shutdown()


@pytest.fixture(scope="module")
def hooks():
    hook, flaky = Receiver(), Receiver()
    # Accepts connections (the kernel's backlog) and never answers.
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)
    yield {"hook": hook, "flaky": flaky, "hang": f"http://127.0.0.1:{hang.getsockname()[1]}/",
           "down": f"http://127.0.0.1:{free_port()}/"}
    hook.close()
    flaky.close()
    hang.close()


@pytest.fixture(scope="module")
def srv(server_factory, tmp_path_factory, hooks):
    srv = server_factory(tmp_path_factory.mktemp("notify"), 1, start=False)
    # The targets through the variable (;-separated; the bounded-queue test uses the flag).
    srv.env_overrides["TESSERA_NOTIFY_WEBHOOKS"] = ";".join([
        f"hook={hooks['hook'].url},auth_token=s3cret", f"flaky={hooks['flaky'].url}",
        f"hang={hooks['hang']}", f"down={hooks['down']}"])
    srv.env_overrides["TESSERA_LIFECYCLE_DAY_SECS"] = "2"
    srv.start()
    yield srv
    srv.stop()


def arn(name: str) -> str:
    return f"arn:tessera:sqs::{name}:webhook"


def notify(c, bucket: str, *queues: dict) -> None:
    c.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": list(queues)})


def test_configuration_round_trip_and_validation(srv):
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("nt-config")))
    assert "QueueConfigurations" not in c.get_bucket_notification_configuration(Bucket=bucket)
    queues = [
        {"Id": "text", "QueueArn": arn("hook"), "Events": ["s3:ObjectCreated:*"],
         "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "in/"}, {"Name": "Suffix", "Value": ".txt"}]}}},
        {"Id": "gone", "QueueArn": arn("flaky"), "Events": ["s3:ObjectRemoved:Delete", "s3:LifecycleExpiration:*"]},
    ]
    notify(c, bucket, *queues)
    got = c.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert got == queues

    def refused(queue: dict) -> tuple[int, str]:
        return error_of(lambda: notify(c, bucket, queue))

    assert refused({"QueueArn": arn("nobody"), "Events": ["s3:ObjectCreated:*"]}) == (400, "InvalidArgument")
    assert refused({"QueueArn": "arn:aws:sqs:us-east-1:123456789012:q", "Events": ["s3:ObjectCreated:*"]}) == (400, "InvalidArgument")
    assert refused({"QueueArn": arn("hook"), "Events": ["s3:ObjectCreated:Nope"]}) == (400, "InvalidArgument")
    assert refused({"QueueArn": arn("hook"), "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "a"},
                                                        {"Name": "Prefix", "Value": "b"}]}}}) == (400, "InvalidArgument")
    topic = {"TopicConfigurations": [{"TopicArn": "arn:aws:sns:us-east-1:1:t", "Events": ["s3:ObjectCreated:*"]}]}
    assert error_of(lambda: c.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration=topic)) == (400, "InvalidArgument")
    # Nothing refused replaced the configuration; an empty one removes it.
    assert c.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"] == queues
    c.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    assert "QueueConfigurations" not in c.get_bucket_notification_configuration(Bucket=bucket)


def test_every_write_and_delete_is_delivered(srv, hooks):
    hook = hooks["hook"]
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("nt-events")))
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    notify(c, bucket, {"Id": "all", "QueueArn": arn("hook"), "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]})
    put = c.put_object(Bucket=bucket, Key="dir/a b.txt", Body=b"hello")
    c.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "dir/a b.txt"})
    up = c.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = c.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"p" * 10)
    c.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up,
                                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    r = post_form(presigned_post(c, bucket, "post/form"), b"posted")
    assert r.status == 204, r
    marker = c.delete_object(Bucket=bucket, Key="copy")["VersionId"]
    c.delete_object(Bucket=bucket, Key="copy", VersionId=marker)
    records = hook.wait_for(bucket, 6)
    names = [(r["eventName"], r["s3"]["object"]["key"]) for r in records]
    assert names == [
        ("ObjectCreated:Put", "dir%2Fa+b.txt"),
        ("ObjectCreated:Copy", "copy"),
        ("ObjectCreated:CompleteMultipartUpload", "mp"),
        ("ObjectCreated:Post", "post%2Fform"),
        ("ObjectRemoved:DeleteMarkerCreated", "copy"),
        ("ObjectRemoved:Delete", "copy"),
    ], names
    first = records[0]
    assert first["eventSource"] == "aws:s3" and first["eventVersion"] == "2.1"
    assert first["awsRegion"] and first["eventTime"].endswith("Z")
    assert first["userIdentity"]["principalId"] == "root"
    assert first["requestParameters"]["sourceIPAddress"] == "127.0.0.1"
    s3 = first["s3"]
    assert s3["configurationId"] == "all" and s3["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert s3["object"]["size"] == 5 and s3["object"]["eTag"] == put["ETag"].strip('"')
    assert s3["object"]["versionId"] == put["VersionId"]
    assert records[4]["s3"]["object"]["versionId"] == marker
    with hook.lock:
        sent = [e for e in hook.events if e["body"]["Records"][0]["s3"]["bucket"]["name"] == bucket]
    assert all(e["headers"]["authorization"] == "Bearer s3cret" for e in sent)
    assert sent[0]["body"]["EventName"] == "s3:ObjectCreated:Put"
    assert sent[0]["body"]["Key"] == f"{bucket}/dir/a b.txt"
    # Sequencers order the events of one key.
    copies = [r["s3"]["object"]["sequencer"] for r in records if r["s3"]["object"]["key"] == "copy"]
    assert copies == sorted(copies) and len(set(copies)) == 3


def test_prefix_and_suffix_filters(srv, hooks):
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("nt-filter")))
    notify(c, bucket, {"Id": "txt", "QueueArn": arn("hook"), "Events": ["s3:ObjectCreated:Put"],
                       "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"},
                                                           {"Name": "suffix", "Value": ".txt"}]}}})
    for key in ("in/x.bin", "out/x.txt", "in/x.txt"):
        c.put_object(Bucket=bucket, Key=key, Body=b"x")
    c.delete_object(Bucket=bucket, Key="in/x.txt")  # not a configured event
    c.put_object(Bucket=bucket, Key="in/last.txt", Body=b"x")
    records = hooks["hook"].wait_for(bucket, 2)
    time.sleep(1)
    assert [r["s3"]["object"]["key"] for r in hooks["hook"].records(bucket)] == ["in%2Fx.txt", "in%2Flast.txt"]
    assert len(records) == 2


def test_dead_targets_neither_slow_nor_block(srv, hooks):
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("nt-dead")))
    notify(c, bucket, *({"Id": name, "QueueArn": arn(name), "Events": ["s3:ObjectCreated:*"]}
                        for name in ("hang", "down", "hook")))
    took = []
    for i in range(20):
        started = time.monotonic()
        c.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
        took.append(time.monotonic() - started)
    # One delivery attempt to the hanging target waits 5 s; none is in a request's path.
    assert max(took) < 1 and sum(took) < 4, took
    hooks["hook"].wait_for(bucket, 20, timeout=10)

    def counted():
        m = scrape(srv)
        return (m.counter("tessera_notify_failed_total", target="down") >= 1
                and m.counter("tessera_notify_failed_total", target="hang") >= 1
                and m.counter("tessera_notify_delivered_total", target="hook") >= 20
                and m.value("tessera_notify_queue_events") >= 20)
    eventually(counted, "failed attempts to down and hang, 20 deliveries to hook and 20+ queued, in /metrics")


def test_nothing_is_lost_while_the_receiver_is_down_or_the_server_restarts(srv, hooks):
    """The receiver fails every request for 30 s, and the server restarts meanwhile with the
    events still queued: once the receiver is back, every event arrives."""
    flaky = hooks["flaky"]
    flaky.status = 503
    down_since = time.monotonic()
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("nt-restart")))
    notify(c, bucket, {"Id": "f", "QueueArn": arn("flaky"), "Events": ["s3:ObjectCreated:*"]})
    for i in range(3):
        c.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    eventually(lambda: flaky.requests >= 2, "the flaky target is tried, and retried")
    srv.stop()
    srv.start()
    c = s3_client(srv)
    c.put_object(Bucket=bucket, Key="k3", Body=b"x")
    time.sleep(max(0.0, 30 - (time.monotonic() - down_since)))
    tried = flaky.requests
    flaky.status = 200
    # Backoff doubles to a minute: after 30 s down the next try comes within about 32 s.
    records = flaky.wait_for(bucket, 4, timeout=75)
    # At least once: every event arrived; a retry may repeat one, never lose one.
    assert {r["s3"]["object"]["key"] for r in records} == {"k0", "k1", "k2", "k3"}
    assert tried >= 4, f"only {tried} attempts in 30 s"


def test_lifecycle_expiry_is_an_event(srv, hooks):
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("nt-lifecycle")))
    c.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "soon", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]})
    notify(c, bucket, {"Id": "exp", "QueueArn": arn("hook"), "Events": ["s3:LifecycleExpiration:*"]})
    c.put_object(Bucket=bucket, Key="short-lived", Body=b"x")
    (record,) = hooks["hook"].wait_for(bucket, 1)
    assert record["eventName"] == "LifecycleExpiration:Delete"
    assert record["s3"]["object"]["key"] == "short-lived"


def test_the_queue_is_bounded(make_server):
    srv = make_server(1, extra_args=["--notify-webhook", f"down=http://127.0.0.1:{free_port()}/",
                                     "--notify-queue-limit", "5"])
    c = s3_client(srv)
    c.create_bucket(Bucket=(bucket := new_bucket_name("nt-bounded")))
    notify(c, bucket, {"Id": "d", "QueueArn": arn("down"), "Events": ["s3:ObjectCreated:*"]})
    for i in range(20):
        c.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    def bounded():
        m = scrape(srv)
        return m.counter("tessera_notify_dropped_total") >= 15 and m.value("tessera_notify_queue_events") <= 5
    eventually(bounded, "15 of 20 events dropped and at most 5 queued, in /metrics")
