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

/// Signs `request` (`url` its full URL, `authority` its host:port) with
/// `x-amz-content-sha256` set to the SHA-256 of `body`. The host header and every header of
/// the request that starts with `x-tessera-` are covered by the signature.
pub fn sign_request<B>(
    request: &mut http::Request<B>,
    url: &str,
    authority: &str,
    access_key: &str,
    secret_key: &str,
    body: &[u8],
) -> Result<(), String> {
    let own: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-tessera-"))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let identity: Identity =
        aws_credential_types::Credentials::new(access_key, secret_key, None, None, "tessera")
            .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
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
        request.method().as_str(),
        url,
        std::iter::once(("host", authority))
            .chain(own.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}
