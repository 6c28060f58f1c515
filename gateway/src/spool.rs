//! Request bodies of unknown length: `Transfer-Encoding: chunked` without `Content-Length`
//! and without aws-chunked framing. s3s needs the length before it reads a body, so such a
//! body is first written to an unlinked temporary file (in `TMPDIR`), then handed on with its
//! length. Some clients stream uploads this way; AWS refuses them, tessera stores them whole.

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, StreamBody};
use s3s::{S3Error, S3ErrorCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// S3's largest single PUT: a longer body of unknown length is refused as it arrives.
const MAX_SPOOLED: u64 = 5 << 30;
/// How much of the spooled file is read at a time when it is handed on.
const READ_SIZE: usize = 256 << 10;

/// Bodies spooled at once. The spool is written before s3s checks the signature, so it is
/// bounded: a flood of such requests gets 503 SlowDown rather than filling `TMPDIR`.
static SPOOLS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Whether `req` is a signed PUT whose body length is unknown until it ends (an unsigned one
/// is left to s3s, which refuses it).
pub fn needed<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    let query = req.uri().query().unwrap_or("");
    let signed = h.contains_key(http::header::AUTHORIZATION)
        || query.contains("X-Amz-Signature=")
        || query.contains("Signature=");
    signed
        && req.method() == http::Method::PUT
        && !h.contains_key(http::header::CONTENT_LENGTH)
        && h.get(http::header::TRANSFER_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        && !h
            .get("x-amz-content-sha256")
            .is_some_and(|v| v.as_bytes().starts_with(b"STREAMING-"))
}

fn failed(code: S3ErrorCode, message: String) -> S3Error {
    S3Error::with_message(code, message)
}

/// Reads the whole body into a temporary file and gives the request back with a
/// `Content-Length` and a body that streams from the file.
pub async fn spool(req: Request<s3s::Body>) -> Result<Request<s3s::Body>, S3Error> {
    // Held until the spooled body has been read to its end (or dropped).
    let Ok(slot) = SPOOLS.try_acquire() else {
        return Err(failed(
            S3ErrorCode::SlowDown,
            "Too many uploads of unknown length at once: retry, or send a Content-Length".into(),
        ));
    };
    let (mut parts, mut body) = req.into_parts();
    let dir = std::env::temp_dir();
    let file = tokio::task::spawn_blocking(move || tempfile::tempfile_in(&dir))
        .await
        .map_err(|e| failed(S3ErrorCode::InternalError, e.to_string()))?
        .map_err(|e| {
            failed(
                S3ErrorCode::InternalError,
                format!("cannot spool a body of unknown length: {e}"),
            )
        })?;
    let mut file = tokio::fs::File::from_std(file);
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| failed(S3ErrorCode::IncompleteBody, format!("body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        len += data.len() as u64;
        if len > MAX_SPOOLED {
            return Err(failed(
                S3ErrorCode::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size.".into(),
            ));
        }
        file.write_all(&data)
            .await
            .map_err(|e| failed(S3ErrorCode::InternalError, format!("spool: {e}")))?;
    }
    file.rewind()
        .await
        .map_err(|e| failed(S3ErrorCode::InternalError, format!("spool: {e}")))?;
    parts.headers.remove(http::header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    let chunks = futures::stream::unfold(Some((file, slot)), |state| async move {
        let (mut file, slot) = state?;
        let mut buf = vec![0u8; READ_SIZE];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some((file, slot))))
            }
            // The error ends the stream.
            Err(e) => Some((Err(e), None)),
        }
    });
    let body = StreamBody::new(chunks.map(|c| c.map(http_body::Frame::data)));
    Ok(Request::from_parts(
        parts,
        s3s::Body::http_body_unsync(body),
    ))
}
