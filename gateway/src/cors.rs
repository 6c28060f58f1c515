//! CORS for browsers: preflight `OPTIONS` requests answered from the bucket's CORS rules (403
//! when none matches), and `Access-Control-*` headers added to actual responses whose
//! `Origin` a rule allows, presigned requests included. Rules are matched as S3 does: the
//! first rule whose origins, method and (for a preflight) every requested header match.

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use metastore::CorsRule;
use s3s::S3Error;

use crate::http::Frontend;
use crate::s3::IntoS3;

/// S3's limit on rules per bucket.
pub const MAX_RULES: usize = 100;
/// The methods a CORS rule may name.
pub const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

/// `pattern` with at most one `*` against `value`.
fn wildcard(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v) = if ignore_case {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_owned(), value.to_owned())
    };
    match p.split_once('*') {
        None => p == v,
        Some((head, tail)) => {
            v.len() >= head.len() + tail.len() && v.starts_with(head) && v.ends_with(tail)
        }
    }
}

/// The first rule that allows `origin` to use `method` with `headers`.
pub fn find<'a>(
    rules: &'a [CorsRule],
    origin: &str,
    method: &str,
    headers: &[String],
) -> Option<&'a CorsRule> {
    rules.iter().find(|r| {
        r.allowed_origins.iter().any(|o| wildcard(o, origin, false))
            && r.allowed_methods.iter().any(|m| m == method)
            && headers
                .iter()
                .all(|h| r.allowed_headers.iter().any(|a| wildcard(a, h, true)))
    })
}

/// The bucket a request is for: the host's first label under a configured domain
/// (virtual-host style), else the path's first segment.
fn bucket_of<B>(req: &Request<B>, domains: &[String]) -> Option<String> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name));
    if let Some(host) = host {
        for d in domains {
            if let Some(bucket) = host.strip_suffix(&format!(".{d}")) {
                return Some(bucket.to_owned());
            }
        }
    }
    let first = req.uri().path().trim_start_matches('/').split('/').next()?;
    (!first.is_empty()).then(|| first.to_owned())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The headers a matching rule adds, for a preflight (`requested`: the headers asked for) or
/// an actual request.
fn allow_headers(out: &mut HeaderMap, rule: &CorsRule, origin: &str, requested: Option<&str>) {
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.insert(name, v);
        }
    };
    put(
        "access-control-allow-origin",
        if any_origin {
            "*".into()
        } else {
            origin.into()
        },
    );
    if !any_origin {
        put("access-control-allow-credentials", "true".into());
    }
    put(
        "access-control-allow-methods",
        rule.allowed_methods.join(", "),
    );
    if let Some(requested) = requested.filter(|r| !r.trim().is_empty()) {
        put("access-control-allow-headers", requested.to_owned());
    }
    if !rule.expose_headers.is_empty() {
        put(
            "access-control-expose-headers",
            rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        put("access-control-max-age", age.to_string());
    }
    put(
        "vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method".into(),
    );
}

fn refused(status: StatusCode, code: &'static str, message: &str) -> S3Error {
    crate::s3::errors::custom(code, message, status)
}

/// Answers a preflight `OPTIONS` request (errors are S3 error documents).
pub async fn preflight<B>(
    front: &Frontend,
    req: &Request<B>,
) -> Result<Response<s3s::Body>, S3Error> {
    let h = req.headers();
    let (Some(origin), Some(method)) = (
        header(h, "origin"),
        header(h, "access-control-request-method"),
    ) else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
        ));
    };
    let Some(bucket) = bucket_of(req, &front.domains) else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "No bucket named.",
        ));
    };
    let record = front.service.bucket(&bucket).await.s3()?;
    if record.cors.is_empty() {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "AccessForbidden",
            "CORSResponse: CORS is not enabled for this bucket.",
        ));
    }
    let requested_raw = header(h, "access-control-request-headers");
    let requested: Vec<String> = requested_raw
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let Some(rule) = find(&record.cors, origin, method, &requested) else {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "AccessForbidden",
            "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
        ));
    };
    let mut resp = Response::new(s3s::Body::empty());
    allow_headers(resp.headers_mut(), rule, origin, requested_raw);
    Ok(resp)
}

/// What an actual request needs to have its response decorated: its origin and bucket.
pub struct Actual {
    origin: String,
    bucket: String,
    method: String,
}

impl Actual {
    pub fn of<B>(front: &Frontend, req: &Request<B>) -> Option<Actual> {
        let origin = header(req.headers(), "origin")?.to_owned();
        let bucket = bucket_of(req, &front.domains)?;
        let method = if req.method() == Method::HEAD {
            "HEAD".to_owned()
        } else {
            req.method().as_str().to_owned()
        };
        Some(Actual {
            origin,
            bucket,
            method,
        })
    }

    /// Adds the `Access-Control-*` headers when a rule of the bucket allows the origin.
    pub async fn decorate(self, front: &Frontend, resp: &mut Response<s3s::Body>) {
        let Ok(record) = front.service.bucket(&self.bucket).await else {
            return;
        };
        if let Some(rule) = find(&record.cors, &self.origin, &self.method, &[]) {
            allow_headers(resp.headers_mut(), rule, &self.origin, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        CorsRule {
            id: None,
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_methods: methods.iter().map(|s| s.to_string()).collect(),
            allowed_headers: headers.iter().map(|s| s.to_string()).collect(),
            expose_headers: vec![],
            max_age_seconds: None,
        }
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = [
            rule(&["https://*.example.com"], &["GET"], &[]),
            rule(&["*"], &["PUT", "GET"], &["x-amz-*", "Content-Type"]),
        ];
        let m = |o: &str, m: &str, h: &[&str]| {
            let h: Vec<String> = h.iter().map(|s| s.to_string()).collect();
            find(&rules, o, m, &h).map(|r| r.allowed_methods.len())
        };
        assert_eq!(m("https://app.example.com", "GET", &[]), Some(1));
        assert_eq!(
            m("https://app.example.com", "PUT", &["X-Amz-Date"]),
            Some(2)
        );
        assert_eq!(
            m("https://elsewhere.org", "PUT", &["content-type"]),
            Some(2)
        );
        assert_eq!(m("https://elsewhere.org", "PUT", &["authorization"]), None);
        assert_eq!(m("https://elsewhere.org", "DELETE", &[]), None);
        assert!(!wildcard(
            "https://*.example.com",
            "https://example.com",
            false
        ));
    }
}
