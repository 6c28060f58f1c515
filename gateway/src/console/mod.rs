//! The web console at `/console/`: its files, its login sessions, and the requests it makes
//! on the user's behalf.
//!
//! The console is an S3 client that lives in the server. The page calls
//! `/console/api/s3/{bucket}/{key}?{query}` with its session cookie; this module looks up the
//! session's secret key, rewrites the request to `/{bucket}/{key}?{query}`, signs it with
//! SigV4 (body unsigned, so uploads stream through) and hands it to the S3 pipeline like any
//! client's request. So the console can do exactly what its identity may, and every answer
//! and error it shows is the server's own. `/console/api/admin/...` reaches the admin API
//! (`/tessera-admin/v1/...`, root only) the same way.
//!
//! Its own endpoints: `POST api/login` (JSON `accessKey`, `secretKey`), `GET api/session`,
//! `POST api/logout`, `POST api/presign` (a share link), `GET api/usage` (objects and bytes of
//! each bucket the session may list), `GET api/stats` (this gateway's request rates and
//! latencies over the last hour, for the charts). Answers are JSON; errors are `{"code", "message"}`.
//!
//! Security: the session token is an HttpOnly, SameSite=Strict cookie (Secure over TLS)
//! scoped to `/console`; every request that can change something must carry the session's
//! CSRF token in `x-tessera-csrf` (a header a cross-site page cannot set without a CORS
//! preflight, which `/console` never grants). The page's Content-Security-Policy allows no
//! origin but the server's. Objects shown through the console are served with
//! `Content-Security-Policy: sandbox`, so an HTML object cannot run script as the console.
//! Failed logins count toward the address's authentication-failure limit.
//!
//! A request to `/console...` that carries a SigV4 or SigV2 signature is an S3 request (for a
//! bucket named `console`) and never reaches this module.

mod assets;
mod forward;
pub mod session;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use s3s::auth::S3Auth;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::client::ClientAddr;
use crate::http::Frontend;
use crate::metrics::Metrics;
use crate::s3::{Authz, SecretLookup};
use session::{Session, Sessions};

pub const PREFIX: &str = "/console";
const COOKIE: &str = "tessera_console";
const CSRF_HEADER: &str = "x-tessera-csrf";
/// Login and share-link requests are a few hundred bytes.
const MAX_JSON: usize = 16 * 1024;
/// S3's longest presigned URL lifetime.
const MAX_SHARE_SECS: u64 = 604_800;
const ADMIN_TARGET: &str = "/tessera-admin/v1";

/// The page's policy: nothing but this server, no framing by others.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; media-src 'self' blob:; frame-src 'self' blob:; \
    object-src 'none'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Whether `path` is the console's (the S3 port serves it unless the request is signed).
pub fn is_console_path(path: &str) -> bool {
    path == PREFIX || path.starts_with("/console/")
}

/// Marks a request that came in on the console's own port (`--console-address`).
#[derive(Debug, Clone, Copy)]
pub struct ConsolePort;

/// Whether the request is an unsigned `GET /` on the console's own port: the console's page.
pub fn opens_console<B>(req: &Request<B>) -> bool {
    req.extensions().get::<ConsolePort>().is_some()
        && req.method() == Method::GET
        && req.uri().path() == "/"
        && req.uri().query().is_none()
}

/// What the console does with a request.
pub enum Routed {
    /// Answered here.
    Answer(Response<s3s::Body>),
    /// Rewritten and signed: the S3 pipeline serves it, and [`sandbox`] its answer.
    Forward(Request<Incoming>),
}

pub struct Console {
    sessions: Sessions,
    /// This gateway's request rates over the last hour.
    history: Arc<stats::History>,
    secrets: SecretLookup,
    root_access_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Login {
    access_key: String,
    secret_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Share {
    bucket: String,
    key: String,
    version_id: Option<String>,
    expires_secs: u64,
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<s3s::Body> {
    let mut resp = Response::new(s3s::Body::from(value.to_string()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<s3s::Body> {
    json_response(status, &json!({ "code": code, "message": message }))
}

/// An answer that ends a request early (boxed: a response is large next to what succeeds).
type Refused = Box<Response<s3s::Body>>;

fn no_session() -> Response<s3s::Body> {
    error(
        StatusCode::UNAUTHORIZED,
        "NoSession",
        "You are not logged in, or your session expired.",
    )
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then_some(value)
        })
}

fn secure(req: &Request<Incoming>) -> bool {
    req.extensions()
        .get::<ClientAddr>()
        .is_some_and(|c| c.secure)
}

fn session_cookie(value: &str, secure: bool, max_age: Option<Duration>) -> HeaderValue {
    let mut cookie = format!("{COOKIE}={value}; Path={PREFIX}; HttpOnly; SameSite=Strict");
    if secure {
        cookie.push_str("; Secure");
    }
    match max_age {
        Some(age) => cookie.push_str(&format!("; Max-Age={}", age.as_secs())),
        None => cookie.push_str("; Max-Age=0"),
    }
    HeaderValue::from_str(&cookie).expect("cookie text is ASCII")
}

/// The host the browser addressed (HTTP/1 Host, or HTTP/2's authority).
fn authority(req: &Request<Incoming>) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_owned())
}

async fn read_json<T: for<'de> Deserialize<'de>>(req: Request<Incoming>) -> Result<T, Refused> {
    let body = http_body_util::Limited::new(req.into_body(), MAX_JSON)
        .collect()
        .await
        .map_err(|_| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "The request body could not be read, or is too large.",
            ))
        })?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            &format!("The request body is not the JSON expected: {e}"),
        ))
    })
}

/// Adds what every answer the console forwards needs: an object opened through the console
/// (an HTML file, say) must not run script in the console's origin.
pub fn sandbox(mut resp: Response<s3s::Body>) -> Response<s3s::Body> {
    let is_pdf = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/pdf"));
    let h = resp.headers_mut();
    // A PDF keeps the browser's viewer, which a sandboxed document does not get; the viewer
    // runs no script of the document's in this origin.
    if !is_pdf {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox"),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

impl Console {
    /// A console whose charts sample `metrics` (until the console is dropped).
    pub fn new(authz: Arc<Authz>, root_access_key: String, metrics: Arc<Metrics>) -> Self {
        let history = Arc::new(stats::History::default());
        stats::History::spawn_sampler(Arc::downgrade(&history), metrics);
        Console {
            history,
            sessions: Sessions::default(),
            secrets: SecretLookup(authz),
            root_access_key,
        }
    }

    pub async fn route(&self, front: &Frontend, req: Request<Incoming>) -> Routed {
        let path = req.uri().path().to_owned();
        if path == PREFIX || path == "/" {
            let mut resp = Response::new(s3s::Body::empty());
            *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
            resp.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/console/"));
            return Routed::Answer(resp);
        }
        let rest = &path[PREFIX.len() + 1..];
        let Some(api) = rest.strip_prefix("api/") else {
            return Routed::Answer(self.asset(req.method(), rest));
        };
        let method = req.method().clone();
        let answer = match (&method, api) {
            (&Method::POST, "login") => self.login(front, req).await,
            (&Method::GET, "session") => match self.session(&req) {
                Some((_, s)) => self.session_json(&s),
                None => no_session(),
            },
            (&Method::POST, "logout") => self.logout(req),
            (&Method::POST, "presign") => self.presign(req).await,
            (&Method::GET, "usage") => self.usage(front, req).await,
            (&Method::GET, "stats") => match self.session(&req) {
                Some(_) => json_response(
                    StatusCode::OK,
                    &json!({
                        "intervalSecs": stats::INTERVAL.as_secs(),
                        "points": self.history.points(front.metrics.totals()),
                    }),
                ),
                None => no_session(),
            },
            (_, a) if a == "s3" || a.starts_with("s3/") => {
                return self.forward(req, &a[2..], "").await;
            }
            (_, a) if a.starts_with("admin/") => {
                return self.forward(req, &a[5..], ADMIN_TARGET).await;
            }
            _ => error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The console has no such request.",
            ),
        };
        Routed::Answer(answer)
    }

    fn asset(&self, method: &Method, name: &str) -> Response<s3s::Body> {
        if method != Method::GET && method != Method::HEAD {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "The console's files can only be read.",
            );
        }
        let Some(asset) = assets::find(name) else {
            return error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The console has no such file.",
            );
        };
        let body = if method == Method::HEAD {
            s3s::Body::empty()
        } else {
            s3s::Body::from(Bytes::from_static(asset.bytes))
        };
        let mut resp = Response::new(body);
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(asset.bytes.len()));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        resp
    }

    /// The live session the request's cookie names, with its token.
    fn session(&self, req: &Request<Incoming>) -> Option<(String, Session)> {
        let token = cookie_token(req.headers())?;
        Some((token.to_owned(), self.sessions.touch(token)?))
    }

    fn session_json(&self, s: &Session) -> Response<s3s::Body> {
        json_response(
            StatusCode::OK,
            &json!({
                "accessKey": s.access_key,
                "csrf": s.csrf,
                "root": s.access_key == self.root_access_key,
                "idleSecs": session::IDLE.as_secs(),
            }),
        )
    }

    /// The session, when the request also carries its CSRF token.
    fn session_with_csrf(&self, req: &Request<Incoming>) -> Result<Session, Refused> {
        let (_, s) = self.session(req).ok_or_else(|| Box::new(no_session()))?;
        let sent = req.headers().get(CSRF_HEADER).map(HeaderValue::as_bytes);
        if sent != Some(s.csrf.as_bytes()) {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                "InvalidCsrfToken",
                "The request lacks the console's CSRF token; reload the page.",
            )));
        }
        Ok(s)
    }

    async fn login(&self, front: &Frontend, req: Request<Incoming>) -> Response<s3s::Body> {
        // A custom header: a cross-site form cannot send it, and a cross-site script needs a
        // CORS preflight that the console never grants.
        if !req.headers().contains_key(CSRF_HEADER) {
            return error(
                StatusCode::FORBIDDEN,
                "InvalidCsrfToken",
                "A login must come from the console's page.",
            );
        }
        let client = req.extensions().get::<ClientAddr>().copied();
        if client.is_some_and(|c| front.auth_limit.blocked(c.ip)) {
            front.metrics.auth_throttled();
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SlowDown",
                "Too many failed authentication attempts from your address; please retry later.",
            );
        }
        let secure = secure(&req);
        let login: Login = match read_json(req).await {
            Ok(l) => l,
            Err(resp) => return *resp,
        };
        let refused = match self.secrets.get_secret_key(&login.access_key).await {
            Ok(secret) => {
                let matches = Sha256::digest(secret.expose().as_bytes())
                    == Sha256::digest(login.secret_key.as_bytes());
                (!matches).then(|| {
                    (
                        "SignatureDoesNotMatch",
                        "The secret key is not the one of this access key.".to_owned(),
                    )
                })
            }
            Err(e) => Some((
                "InvalidAccessKeyId",
                e.message().unwrap_or("Unknown access key.").to_owned(),
            )),
        };
        if let Some((code, message)) = refused {
            front.metrics.auth_failed();
            if let Some(c) = client {
                front.auth_limit.failed(c.ip);
            }
            return error(StatusCode::FORBIDDEN, code, &message);
        }
        let (token, session) = self.sessions.create(&login.access_key);
        tracing::info!(target: "access", access_key = %login.access_key, "console login");
        let mut resp = self.session_json(&session);
        resp.headers_mut().insert(
            header::SET_COOKIE,
            session_cookie(&token, secure, Some(session::MAX_AGE)),
        );
        resp
    }

    fn logout(&self, req: Request<Incoming>) -> Response<s3s::Body> {
        if let Err(resp) = self.session_with_csrf(&req) {
            return *resp;
        }
        if let Some(token) = cookie_token(req.headers()) {
            self.sessions.remove(token);
        }
        let mut resp = json_response(StatusCode::OK, &json!({}));
        resp.headers_mut()
            .insert(header::SET_COOKIE, session_cookie("", secure(&req), None));
        resp
    }

    /// A share link: a presigned GET of an object, signed with the session's key.
    async fn presign(&self, req: Request<Incoming>) -> Response<s3s::Body> {
        let session = match self.session_with_csrf(&req) {
            Ok(s) => s,
            Err(resp) => return *resp,
        };
        let scheme = if secure(&req) { "https" } else { "http" };
        let host = authority(&req);
        let share: Share = match read_json(req).await {
            Ok(s) => s,
            Err(resp) => return *resp,
        };
        if !(1..=MAX_SHARE_SECS).contains(&share.expires_secs) {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "A share link lasts from 1 second to 7 days (604800 seconds).",
            );
        }
        let secret = match self.secrets.get_secret_key(&session.access_key).await {
            Ok(s) => s,
            Err(e) => {
                return error(
                    StatusCode::FORBIDDEN,
                    "InvalidAccessKeyId",
                    e.message().unwrap_or(""),
                );
            }
        };
        let mut url = format!(
            "{scheme}://{host}/{}/{}",
            cluster::signing::uri_encode(&share.bucket, true),
            cluster::signing::uri_encode(&share.key, false)
        );
        if let Some(v) = share.version_id.filter(|v| !v.is_empty()) {
            url.push_str("?versionId=");
            url.push_str(&cluster::signing::uri_encode(&v, true));
        }
        match cluster::signing::presign_get(
            &url,
            &host,
            &session.access_key,
            secret.expose(),
            Duration::from_secs(share.expires_secs),
        ) {
            Ok(url) => json_response(StatusCode::OK, &json!({ "url": url })),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; tessera_console=abc; b=2"),
        );
        assert_eq!(cookie_token(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("tessera_console=xyz"),
        );
        assert_eq!(cookie_token(&h), Some("xyz"));
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("tessera_console=; x_tessera_console=q"),
        );
        assert_eq!(cookie_token(&h), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_tls() {
        let c = session_cookie("t", true, Some(Duration::from_secs(60)));
        let c = c.to_str().unwrap();
        assert!(
            c.starts_with("tessera_console=t; Path=/console; HttpOnly; SameSite=Strict; Secure"),
            "{c}"
        );
        assert!(c.ends_with("Max-Age=60"), "{c}");
        let plain = session_cookie("", false, None);
        assert!(!plain.to_str().unwrap().contains("Secure"));
        assert!(plain.to_str().unwrap().ends_with("Max-Age=0"));
    }

    #[test]
    fn console_paths() {
        assert!(is_console_path("/console"));
        assert!(is_console_path("/console/"));
        assert!(is_console_path("/console/api/s3/b/k"));
        assert!(!is_console_path("/consoles/x"));
        assert!(!is_console_path("/bucket/console/"));
    }

    #[test]
    fn every_asset_is_found() {
        for a in assets::ASSETS {
            assert!(!a.bytes.is_empty(), "{} is empty", a.name);
            assert_eq!(assets::find(a.name).map(|f| f.name), Some(a.name));
        }
        assert_eq!(assets::find("index.html").map(|a| a.name), Some(""));
        assert!(assets::find("../Cargo.toml").is_none());
    }
}
