//! The storage-node protocol end to end, in process: a node serving a real directory, and
//! `RemoteNode` passing the same ShardStore suite as the local and in-memory stores; then the
//! security rules (signatures, time window, body hash, shard ids).

use std::sync::Arc;

use bytes::Bytes;
use cluster::protocol::NODE_ACCESS_KEY;
use cluster::{NodeIdentity, RemoteNode};
use erasure::{LocalDiskStore, ShardStore};
use gateway::node::node_service;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const SECRET: &str = "cluster-secret-for-tests";

struct Node {
    url: String,
    authority: String,
    dir: tempfile::TempDir,
    _task: tokio::task::JoinHandle<()>,
}

async fn start_node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk0");
    std::fs::create_dir_all(&disk).unwrap();
    let store: Arc<dyn ShardStore> = Arc::new(LocalDiskStore::open(&disk).unwrap());
    let identity = Arc::new(NodeIdentity::load_or_create(std::slice::from_ref(&disk)).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(gateway::node::serve(
        listener,
        node_service(vec![store], identity, SECRET),
        None,
    ));
    Node {
        url: format!("http://{authority}"),
        authority,
        dir,
        _task: task,
    }
}

#[tokio::test]
async fn remote_node_passes_the_shard_store_suite() {
    let node = start_node().await;
    let remote = RemoteNode::new(&node.url, 0, SECRET).unwrap();
    erasure::store_suite::run(&remote).await;
    // The shards really are on the node's disk.
    assert!(node.dir.path().join("disk0/shards").is_dir());
}

#[tokio::test]
async fn the_first_deployment_claims_the_node_and_others_are_refused() {
    let node = start_node().await;
    let (status, info) = raw(
        &node,
        "GET",
        "/tessera-node/v1/info",
        Some(SECRET),
        b"",
        b"",
    )
    .await;
    assert_eq!(status, 200, "{info}");
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert!(info["deployment_id"].is_null(), "{info}");
    let node_id = info["node_id"].as_str().unwrap().to_owned();

    let ours = RemoteNode::new(&node.url, 0, SECRET)
        .unwrap()
        .for_deployment("deployment-a");
    ours.health().await.unwrap();
    let theirs = RemoteNode::new(&node.url, 0, SECRET)
        .unwrap()
        .for_deployment("deployment-b");
    let refused = theirs.health().await.unwrap_err();
    assert!(refused.to_string().contains("deployment-a"), "{refused}");
    ours.health().await.unwrap();

    let (_, info) = raw(
        &node,
        "GET",
        "/tessera-node/v1/info",
        Some(SECRET),
        b"",
        b"",
    )
    .await;
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["deployment_id"], "deployment-a");
    assert_eq!(info["node_id"], node_id.as_str());
    // The claim is on the disk: the node's identity after a restart is the same.
    let again = NodeIdentity::load_or_create(&[node.dir.path().join("disk0")]).unwrap();
    assert_eq!(again.node_id, node_id);
    assert_eq!(again.deployment().as_deref(), Some("deployment-a"));
}

#[tokio::test]
async fn a_shard_request_for_another_disk_is_refused() {
    let node = start_node().await;
    let client = std::sync::Arc::new(cluster::NodeClient::new(&node.url, SECRET, None).unwrap());
    let format = |id: &str| erasure::disk_format::DiskFormat {
        format_version: 1,
        deployment_id: "d".into(),
        disk_id: id.into(),
        disk_index: 0,
        disks: vec![id.into(), "other".into()],
        layout: erasure::Layout::new(2, Some(1)).unwrap(),
        chunk_size: 1 << 20,
    };
    let key = erasure::ShardKey {
        chunk: erasure::ChunkHash::from_hex(&"cd".repeat(32)).unwrap(),
        index: 0,
    };
    // Unformatted, the node cannot be the disk a gateway means.
    let meant = RemoteNode::on(client.clone(), 0).expecting("disk-a");
    let refused = meant.put(key, Bytes::from_static(b"x")).await.unwrap_err();
    assert!(refused.to_string().contains("unformatted"), "{refused}");

    client.put_format(0, &format("disk-a")).await.unwrap();
    meant.put(key, Bytes::from_static(b"shard")).await.unwrap();
    assert_eq!(&meant.get(key).await.unwrap()[..], b"shard");

    // A gateway that takes this node for another one (it came back on another node's
    // address) is refused for every shard call, and writes nothing.
    let mistaken = RemoteNode::on(client.clone(), 0).expecting("disk-b");
    let other = erasure::ShardKey { index: 1, ..key };
    let refused = mistaken
        .put(other, Bytes::from_static(b"misplaced"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("disk-a"), "{refused}");
    assert!(mistaken.get(key).await.is_err());
    assert!(mistaken.health().await.is_err());
    assert!(
        meant.get(other).await.is_err(),
        "the refused shard was stored"
    );
    // Requests that name no disk (older gateways, tools) still work.
    let unnamed = RemoteNode::on(client, 0);
    assert_eq!(&unnamed.get(key).await.unwrap()[..], b"shard");
}

/// Signs `req` with the cluster secret at `time`, covering only the host header, with
/// aws-sigv4 directly (to build requests the gateway's own signer never makes).
fn sign_with(
    req: &mut http::Request<Full<Bytes>>,
    url: &str,
    authority: &str,
    time: std::time::SystemTime,
    body: aws_sigv4::http_request::SignableBody<'_>,
) {
    use aws_sigv4::http_request::{PayloadChecksumKind, SignableRequest, SigningSettings, sign};
    let identity =
        aws_credential_types::Credentials::new(NODE_ACCESS_KEY, SECRET, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let method = req.method().as_str().to_owned();
    let signable =
        SignableRequest::new(&method, url, [("host", authority)].into_iter(), body).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(req);
}

/// Sends a request signed with `secret` (or unsigned), the signature computed over
/// `signed_body` while `sent_body` goes on the wire.
async fn raw(
    node: &Node,
    method: &str,
    path: &str,
    secret: Option<&str>,
    signed_body: &[u8],
    sent_body: &[u8],
) -> (u16, String) {
    let url = format!("{}{path}", node.url);
    let mut req = http::Request::builder()
        .method(method)
        .uri(&url)
        .header(http::header::HOST, &node.authority)
        .body(Full::new(Bytes::copy_from_slice(sent_body)))
        .unwrap();
    if let Some(secret) = secret {
        cluster::signing::sign_request(
            &mut req,
            &url,
            &node.authority,
            NODE_ACCESS_KEY,
            secret,
            cluster::signing::Payload::Sha256(signed_body),
        )
        .unwrap();
    }
    let client = Client::builder(TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn unsigned_wrongly_signed_stale_and_tampered_requests_touch_nothing() {
    let node = start_node().await;
    let id = format!("{}.0", "ab".repeat(32));
    let path = format!("/tessera-node/v1/disks/0/shards/{id}");
    let shard_file = node.dir.path().join(format!("disk0/shards/ab/ab/{id}"));

    let (status, _) = raw(&node, "PUT", &path, None, b"x", b"x").await;
    assert_eq!(status, 403, "unsigned");
    let (status, _) = raw(&node, "PUT", &path, Some("not-the-secret"), b"x", b"x").await;
    assert_eq!(status, 403, "wrong secret");
    let (status, body) = raw(&node, "PUT", &path, Some(SECRET), b"signed", b"sent!!").await;
    assert_eq!(status, 400, "tampered body: {body}");
    assert!(!shard_file.exists(), "a refused request stored a shard");

    // A request signed an hour ago is refused even with the right secret (no replay); the
    // same request signed now gets through (404: no such shard yet).
    let url = format!("{}{path}", node.url);
    let client = Client::builder(TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let an_hour = std::time::Duration::from_secs(3600);
    for (age, expected) in [(an_hour, 403), (std::time::Duration::ZERO, 404)] {
        let mut get = http::Request::builder()
            .method("GET")
            .uri(&url)
            .header(http::header::HOST, &node.authority)
            .body(Full::new(Bytes::new()))
            .unwrap();
        sign_with(
            &mut get,
            &url,
            &node.authority,
            std::time::SystemTime::now() - age,
            aws_sigv4::http_request::SignableBody::Bytes(&[]),
        );
        let status = client.request(get).await.unwrap().status().as_u16();
        assert_eq!(status, expected, "signed {age:?} ago");
    }

    // The right signature works.
    let (status, body) = raw(&node, "PUT", &path, Some(SECRET), b"shard", b"shard").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(std::fs::read(&shard_file).unwrap(), b"shard");
}

#[tokio::test]
async fn shard_ids_cannot_reach_outside_the_disk() {
    let node = start_node().await;
    let outside = node.dir.path().join("outside");
    for id in [
        "..%2F..%2Foutside".to_string(),
        "../../outside".to_string(),
        format!("{}.1/..", "ab".repeat(32)),
        format!("{}.1", "ab".repeat(31)),
        "x".to_string(),
    ] {
        let path = format!("/tessera-node/v1/disks/0/shards/{id}");
        let (status, body) = raw(&node, "PUT", &path, Some(SECRET), b"evil", b"evil").await;
        assert!(
            (400..500).contains(&status),
            "{id:?} answered {status}: {body}"
        );
    }
    let (status, _) = raw(
        &node,
        "PUT",
        &format!("/tessera-node/v1/disks/7/shards/{}.0", "ab".repeat(32)),
        Some(SECRET),
        b"x",
        b"x",
    )
    .await;
    assert_eq!(status, 400, "a disk the node does not have");
    assert!(!outside.exists());
    let stray: Vec<_> = walk(node.dir.path());
    assert!(stray.iter().all(|p| !p.ends_with("outside")), "{stray:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Shard bodies are bound by a BLAKE3 hash in a signed header (UNSIGNED-PAYLOAD): a body that
/// does not match it, or a hash header the signature does not cover, is refused.
#[tokio::test]
async fn blake3_bound_bodies_must_match_a_signed_hash() {
    let node = start_node().await;
    let id = format!("{}.1", "cd".repeat(32));
    let path = format!("/tessera-node/v1/disks/0/shards/{id}");
    let url = format!("{}{path}", node.url);
    let shard_file = node.dir.path().join(format!("disk0/shards/cd/cd/{id}"));
    let client = Client::builder(TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let request = |sent: &'static [u8]| {
        http::Request::builder()
            .method("PUT")
            .uri(&url)
            .header(http::header::HOST, &node.authority)
            .body(Full::new(Bytes::from_static(sent)))
            .unwrap()
    };
    let send = |req| async { client.request(req).await.unwrap().status().as_u16() };

    let mut tampered = request(b"sent!!");
    cluster::signing::sign_request(
        &mut tampered,
        &url,
        &node.authority,
        NODE_ACCESS_KEY,
        SECRET,
        cluster::signing::Payload::Blake3(b"signed"),
    )
    .unwrap();
    assert_eq!(
        send(tampered).await,
        400,
        "body differs from its signed BLAKE3"
    );

    // A valid UNSIGNED-PAYLOAD signature that does not cover the hash header, which is
    // added afterwards: refused (whoever added it could have changed the body too).
    let mut unsigned_hash = request(b"evil");
    sign_with(
        &mut unsigned_hash,
        &url,
        &node.authority,
        std::time::SystemTime::now(),
        aws_sigv4::http_request::SignableBody::UnsignedPayload,
    );
    unsigned_hash.headers_mut().insert(
        cluster::signing::BLAKE3_HEADER,
        blake3::hash(b"evil").to_hex().as_str().parse().unwrap(),
    );
    assert_eq!(
        send(unsigned_hash).await,
        400,
        "hash header outside the signature"
    );
    assert!(!shard_file.exists(), "a refused request stored a shard");

    let mut good = request(b"shard");
    cluster::signing::sign_request(
        &mut good,
        &url,
        &node.authority,
        NODE_ACCESS_KEY,
        SECRET,
        cluster::signing::Payload::Blake3(b"shard"),
    )
    .unwrap();
    assert_eq!(send(good).await, 200);
    assert_eq!(std::fs::read(&shard_file).unwrap(), b"shard");
}
