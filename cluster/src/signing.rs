//! SigV4-signing of the requests tessera itself sends (admin commands, shard traffic to
//! storage nodes), with aws-sigv4. The receiving side verifies them with s3s.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// Region and service name every tessera-internal signature uses.
const REGION: &str = "us-east-1";
const SERVICE: &str = "s3";

/// The signed header carrying a [`Payload::Blake3`] body's hash.
pub const BLAKE3_HEADER: &str = "x-tessera-content-blake3";

/// How the body is bound to the signature.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// SigV4's own way: `x-amz-content-sha256` is the body's SHA-256.
    Sha256(&'a [u8]),
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD`, and the body's BLAKE3 in the signed header
    /// [`BLAKE3_HEADER`]: as binding (the header cannot change without breaking the
    /// signature, and BLAKE3 is collision resistant) at a third of SHA-256's CPU, which
    /// matters for shard traffic, where every byte is hashed by both ends.
    Blake3(&'a [u8]),
}

/// Signs `request` (`url` its full URL, `authority` its host:port), binding `body` to the
/// signature as `payload` says. The host header and every header of the request that starts
/// with `x-tessera-` are covered by the signature.
pub fn sign_request<B>(
    request: &mut http::Request<B>,
    url: &str,
    authority: &str,
    access_key: &str,
    secret_key: &str,
    payload: Payload<'_>,
) -> Result<(), String> {
    if let Payload::Blake3(body) = payload {
        let hash = blake3::hash(body).to_hex();
        let value = http::HeaderValue::from_str(hash.as_str()).map_err(|e| e.to_string())?;
        request.headers_mut().insert(BLAKE3_HEADER, value);
    }
    let own: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-tessera-"))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = match payload {
        Payload::Sha256(body) => SignableBody::Bytes(body),
        Payload::Blake3(_) => SignableBody::UnsignedPayload,
    };
    sign_with(
        request,
        url,
        authority,
        &own,
        body,
        SigningSettings::default(),
        (access_key, secret_key),
    )
}

fn identity(access_key: &str, secret_key: &str) -> Identity {
    aws_credential_types::Credentials::new(access_key, secret_key, None, None, "tessera").into()
}

/// Signs `request` as `url` with the host and `headers` covered, `body` bound as given.
fn sign_with<B>(
    request: &mut http::Request<B>,
    url: &str,
    authority: &str,
    headers: &[(String, String)],
    body: SignableBody<'_>,
    mut settings: SigningSettings,
    keys: (&str, &str),
) -> Result<(), String> {
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let method = request.method().as_str().to_owned();
    let instructions = instructions(&method, url, authority, headers, body, settings, keys)?;
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// What SigV4 adds to a request (headers, or query parameters for a presigned URL).
fn instructions(
    method: &str,
    url: &str,
    authority: &str,
    headers: &[(String, String)],
    body: SignableBody<'_>,
    settings: SigningSettings,
    (access_key, secret_key): (&str, &str),
) -> Result<aws_sigv4::http_request::SigningInstructions, String> {
    let identity = identity(access_key, secret_key);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(SERVICE)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        std::iter::once(("host", authority))
            .chain(headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        body,
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions)
}

/// What SigV4's canonical form leaves unencoded: letters, digits and `-._~`.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` encoded as SigV4's canonical form encodes it (S3's `UriEncode`); `/` is kept when
/// `encode_slash` is false (object key paths).
pub fn uri_encode(text: &str, encode_slash: bool) -> String {
    if encode_slash {
        return percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string();
    }
    text.split('/')
        .map(|part| percent_encoding::utf8_percent_encode(part, UNRESERVED).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

fn settings_for_s3() -> SigningSettings {
    let mut settings = SigningSettings::default();
    // S3 signs the path as sent (already percent-encoded once, never normalized).
    settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    settings.uri_path_normalization_mode =
        aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
    settings
}

/// Signs `request` with `x-amz-content-sha256: UNSIGNED-PAYLOAD`, so its body streams through
/// unread: the console's requests, made on behalf of the user logged in. `url` must be the
/// request's path and query in S3's canonical encoding. The host, `content-type`,
/// `content-md5` and every `x-amz-*` header are covered by the signature.
pub fn sign_streaming<B>(
    request: &mut http::Request<B>,
    url: &str,
    authority: &str,
    access_key: &str,
    secret_key: &str,
) -> Result<(), String> {
    let signed: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            k.starts_with("x-amz-") || k == "content-type" || k == "content-md5"
        })
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    sign_with(
        request,
        url,
        authority,
        &signed,
        SignableBody::UnsignedPayload,
        settings_for_s3(),
        (access_key, secret_key),
    )
}

/// A presigned GET of `url` (a full URL whose path and query are in S3's canonical encoding;
/// `authority` its host:port), valid for `expires`: `url` with the SigV4 query parameters.
pub fn presign_get(
    url: &str,
    authority: &str,
    access_key: &str,
    secret_key: &str,
    expires: std::time::Duration,
) -> Result<String, String> {
    let mut settings = settings_for_s3();
    settings.signature_location = aws_sigv4::http_request::SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let instructions = instructions(
        "GET",
        url,
        authority,
        &[],
        SignableBody::UnsignedPayload,
        settings,
        (access_key, secret_key),
    )?;
    let mut out = url.to_owned();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (name, value) in instructions.params() {
        out.push(sep);
        sep = '&';
        out.push_str(name);
        out.push('=');
        out.push_str(&uri_encode(value, true));
    }
    Ok(out)
}
