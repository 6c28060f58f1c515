//! Virtual-host-style addressing: `BUCKET.DOMAIN[:PORT]`.

use s3s::S3Result;
use s3s::host::{MultiDomain, S3Host, VirtualHost};

/// s3s' `MultiDomain`, tolerating the `:port` that every client sends on a non-default port.
#[derive(Debug)]
pub struct Domains(MultiDomain);

impl Domains {
    pub fn new(domains: &[String]) -> Result<Self, String> {
        MultiDomain::new(domains)
            .map(Domains)
            .map_err(|e| e.to_string())
    }
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        // A port is all digits (a bracketed IPv6 literal without port ends in "]").
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

impl S3Host for Domains {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        self.0.parse_host_header(strip_port(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_ignored() {
        assert_eq!(strip_port("b.example.test:9000"), "b.example.test");
        assert_eq!(strip_port("b.example.test"), "b.example.test");
        assert_eq!(strip_port("[::1]:9000"), "[::1]");
        let d = Domains::new(&["example.test".to_string()]).unwrap();
        let vh = d.parse_host_header("photos.example.test:9000").unwrap();
        assert_eq!(vh.bucket(), Some("photos"));
        assert_eq!(
            d.parse_host_header("example.test:9000").unwrap().bucket(),
            None
        );
    }
}
