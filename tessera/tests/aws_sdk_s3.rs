//! The Rust AWS SDK (aws-sdk-s3) against the real `tessera` binary, with the SDK's default
//! behaviour (including its default request checksums).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload,
    CompletedPart, Tag, Tagging, VersioningConfiguration,
};

const USER: &str = "sdkadmin";
const SECRET: &str = "sdkadmin-secret";

/// A running server on a free loopback port and temporary disks, stopped on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(port: u16, path_and_query: &str) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, raw[split + 4..].to_vec()))
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let disks: Vec<_> = (0..4)
        .map(|i| dir.path().join(format!("disk{i}")))
        .collect();
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .args([
            "--address",
            &format!("127.0.0.1:{port}"),
            "--gc-grace-secs",
            "1",
        ])
        .args(&disks)
        .env("TESSERA_ROOT_USER", USER)
        .env("TESSERA_ROOT_PASSWORD", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tessera");
    let server = Server {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(port, "/.tessera/health/live").map(|(s, _)| s) != Some(200) {
        assert!(Instant::now() < deadline, "tessera did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn client(port: u16) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .force_path_style(true)
        .credentials_provider(Credentials::new(USER, SECRET, None, None, "test"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(config)
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn get(c: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = c.get_object().bucket(bucket).key(key).send().await.unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_sdk_s3_scenario() {
    let server = start();
    let c = client(server.port);
    let b = "sdk-bucket";
    c.create_bucket().bucket(b).send().await.unwrap();
    let listed = c.list_buckets().send().await.unwrap();
    assert!(listed.buckets().iter().any(|x| x.name() == Some(b)));

    // Small object with metadata, uploaded with the SDK's default checksum behaviour.
    let small = data(10_000, 1);
    c.put_object()
        .bucket(b)
        .key("docs/small.bin")
        .content_type("application/x-test")
        .metadata("owner", "sdk")
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&c, b, "docs/small.bin").await, small);
    let head = c
        .head_object()
        .bucket(b)
        .key("docs/small.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(10_000));
    assert_eq!(head.content_type(), Some("application/x-test"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("owner"))
            .map(String::as_str),
        Some("sdk")
    );

    // An explicit SHA-256 checksum is verified, stored and returned.
    let big = data(3 << 20, 2);
    let put = c
        .put_object()
        .bucket(b)
        .key("docs/big.bin")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from(big.clone()))
        .send()
        .await
        .unwrap();
    let sha = put.checksum_sha256().expect("checksum echoed").to_string();
    let got = c
        .get_object()
        .bucket(b)
        .key("docs/big.bin")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_sha256(), Some(sha.as_str()));
    assert_eq!(got.body.collect().await.unwrap().into_bytes().to_vec(), big);

    // Ranged read across a chunk boundary.
    let ranged = c
        .get_object()
        .bucket(b)
        .key("docs/big.bin")
        .range("bytes=1048000-1049999")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ranged.content_range(),
        Some("bytes 1048000-1049999/3145728")
    );
    assert_eq!(
        ranged.body.collect().await.unwrap().into_bytes().to_vec(),
        big[1_048_000..1_050_000]
    );

    // Multipart upload: 5 MiB + 5 MiB + 2 MiB.
    let whole = data(12 << 20, 3);
    let up = c
        .create_multipart_upload()
        .bucket(b)
        .key("mp/object")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let mut parts = Vec::new();
    for (n, piece) in whole.chunks(5 << 20).enumerate() {
        let n = n as i32 + 1;
        let r = c
            .upload_part()
            .bucket(b)
            .key("mp/object")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(piece.to_vec()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    let done = c
        .complete_multipart_upload()
        .bucket(b)
        .key("mp/object")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        done.e_tag().unwrap().ends_with("-3\""),
        "{:?}",
        done.e_tag()
    );
    assert_eq!(get(&c, b, "mp/object").await, whole);

    // Listing with prefix and delimiter.
    let l = c
        .list_objects_v2()
        .bucket(b)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<_> = l
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["docs/", "mp/"]);
    let l = c
        .list_objects_v2()
        .bucket(b)
        .prefix("docs/")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = l.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["docs/big.bin", "docs/small.bin"]);

    // Copy, tagging, presigned GET.
    c.copy_object()
        .bucket(b)
        .key("copy/small.bin")
        .copy_source(format!("{b}/docs/small.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&c, b, "copy/small.bin").await, small);
    c.put_object_tagging()
        .bucket(b)
        .key("copy/small.bin")
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("k").value("v").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let tags = c
        .get_object_tagging()
        .bucket(b)
        .key("copy/small.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_set().len(), 1);
    let presigned = c
        .get_object()
        .bucket(b)
        .key("docs/small.bin")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap(),
        )
        .await
        .unwrap();
    let url = presigned.uri().to_string();
    let path = &url[url.find("/sdk-bucket").unwrap()..];
    let (status, body) = http_get(server.port, path).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, small);

    // Versioning.
    c.put_bucket_versioning()
        .bucket(b)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v1 = c
        .put_object()
        .bucket(b)
        .key("v/key")
        .body(ByteStream::from_static(b"one"))
        .send()
        .await
        .unwrap();
    let v2 = c
        .put_object()
        .bucket(b)
        .key("v/key")
        .body(ByteStream::from_static(b"two"))
        .send()
        .await
        .unwrap();
    assert_ne!(v1.version_id(), v2.version_id());
    let old = c
        .get_object()
        .bucket(b)
        .key("v/key")
        .version_id(v1.version_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.body.collect().await.unwrap().into_bytes().as_ref(),
        b"one"
    );
    let versions = c
        .list_object_versions()
        .bucket(b)
        .prefix("v/")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 2);

    // Delete everything, then the bucket.
    let all = c.list_object_versions().bucket(b).send().await.unwrap();
    for v in all.versions() {
        c.delete_object()
            .bucket(b)
            .key(v.key().unwrap())
            .version_id(v.version_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    for m in all.delete_markers() {
        c.delete_object()
            .bucket(b)
            .key(m.key().unwrap())
            .version_id(m.version_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    let err = c
        .get_object()
        .bucket(b)
        .key("docs/small.bin")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchKey"));
    c.delete_bucket().bucket(b).send().await.unwrap();
}
