//! Who the client is, as far as policies, the access log and the metrics are concerned: its
//! address and whether it reached us over TLS.
//!
//! Usually that is the connection's peer and the connection's own transport. Behind a load
//! balancer the peer is the balancer, so for peers inside a `--trusted-proxy` network the
//! client is taken from `Forwarded` (RFC 7239) or, without it, `X-Forwarded-For`, and the
//! scheme from the same `Forwarded` element or `X-Forwarded-Proto`. Headers from any other
//! peer are ignored: anyone can send them.
//!
//! A forwarding chain is read from the right (the hop nearest us) leftwards, skipping hops that
//! are themselves trusted proxies; the first untrusted address is the client. Reading from the
//! left would let a client name any address it likes by sending its own `X-Forwarded-For`,
//! which proxies append to rather than replace.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderMap;
use ipnet::IpNet;

/// The client of one request, put into its extensions by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    pub ip: IpAddr,
    /// Whether the client's request travelled over TLS (`aws:SecureTransport`).
    pub secure: bool,
}

impl ClientAddr {
    pub fn scheme(&self) -> &'static str {
        if self.secure { "https" } else { "http" }
    }
}

/// The networks whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl std::fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nets: Vec<String> = self.0.iter().map(|n| n.to_string()).collect();
        f.write_str(&nets.join(", "))
    }
}

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`) or single addresses (`10.0.0.5`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            let net = IpNet::from_str(entry)
                .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                .map_err(|_| {
                    format!(
                        "trusted proxy {entry:?}: expected a CIDR like 10.0.0.0/8 or an address"
                    )
                })?;
            nets.push(net.trunc());
        }
        Ok(TrustedProxies(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that arrived from `peer` over a connection that is (or is not)
    /// TLS, with these headers.
    pub fn client(&self, peer: IpAddr, tls: bool, headers: &HeaderMap) -> ClientAddr {
        let peer = peer.to_canonical();
        let direct = ClientAddr {
            ip: peer,
            secure: tls,
        };
        if !self.contains(peer) {
            return direct;
        }
        let hops = forwarded_hops(headers);
        let (hops, proto_of_hop) = match hops {
            Some(hops) => (hops, true),
            None => (x_forwarded_for(headers), false),
        };
        // Walk from the nearest hop outwards while the hops are trusted proxies.
        let mut client = direct;
        for hop in hops.iter().rev() {
            let Some(ip) = hop.ip else {
                // An address we cannot read (`unknown`, an obfuscated name, garbage): the
                // proxy that reported it is the last one we can vouch for.
                break;
            };
            client.ip = ip;
            if proto_of_hop {
                client.secure = hop.proto.map_or(client.secure, |https| https);
            }
            if !self.contains(ip) {
                break;
            }
        }
        if !proto_of_hop && let Some(https) = x_forwarded_proto(headers) {
            client.secure = https;
        }
        client
    }
}

/// One element of a forwarding chain: the address it names, and for `Forwarded`, the scheme
/// (`true`: https) that hop's client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hop {
    ip: Option<IpAddr>,
    proto: Option<bool>,
}

/// The elements of every `Forwarded` header, in order; `None` when there is none.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let mut hops = Vec::new();
    let mut any = false;
    for value in headers.get_all(http::header::FORWARDED) {
        any = true;
        let Ok(value) = value.to_str() else {
            hops.push(Hop {
                ip: None,
                proto: None,
            });
            continue;
        };
        for element in value.split(',') {
            let mut hop = Hop {
                ip: None,
                proto: None,
            };
            for pair in element.split(';') {
                let Some((name, v)) = pair.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match name.trim().to_ascii_lowercase().as_str() {
                    "for" => hop.ip = parse_node(v),
                    "proto" => hop.proto = parse_proto(v),
                    _ => {}
                }
            }
            hops.push(hop);
        }
    }
    any.then_some(hops)
}

/// The addresses of every `X-Forwarded-For` header, in order.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Hop> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        match value.to_str() {
            Ok(v) => hops.extend(v.split(',').map(|a| Hop {
                ip: parse_node(a.trim()),
                proto: None,
            })),
            Err(_) => hops.push(Hop {
                ip: None,
                proto: None,
            }),
        }
    }
    hops
}

/// The scheme the nearest trusted proxy reports in `X-Forwarded-Proto` (its last value: the
/// one that proxy set or appended).
fn x_forwarded_proto(headers: &HeaderMap) -> Option<bool> {
    let value = headers.get_all("x-forwarded-proto").iter().next_back()?;
    let last = value.to_str().ok()?.rsplit(',').next()?;
    parse_proto(last.trim())
}

fn parse_proto(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "https" => Some(true),
        "http" => Some(false),
        _ => None,
    }
}

/// An address as forwarding headers write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(v: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(v) {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = v.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return std::net::Ipv6Addr::from_str(inside)
            .ok()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    let (host, port) = v.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    std::net::Ipv4Addr::from_str(host).ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn lb() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8", "192.168.1.7"]).unwrap()
    }

    #[test]
    fn untrusted_peers_headers_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=203.0.113.9;proto=https"),
        ]);
        let c = lb().client(ip("198.51.100.1"), false, &h);
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("198.51.100.1"),
                secure: false
            }
        );
        // Nothing trusted at all: the same.
        let c = TrustedProxies::default().client(ip("10.0.0.1"), true, &h);
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("10.0.0.1"),
                secure: true
            }
        );
    }

    #[test]
    fn x_forwarded_for_from_a_trusted_peer() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        let c = lb().client(ip("10.1.2.3"), false, &h);
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("203.0.113.9"),
                secure: true
            }
        );
        // A single trusted address, given without a prefix length.
        let c = lb().client(ip("192.168.1.7"), false, &h);
        assert_eq!(c.ip, ip("203.0.113.9"));
        assert!(!lb().contains(ip("192.168.1.8")));
    }

    #[test]
    fn a_spoofed_leftmost_entry_is_not_believed() {
        // The client sent "X-Forwarded-For: 1.2.3.4"; the balancer appended the real address.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9")]);
        let c = lb().client(ip("10.0.0.2"), false, &h);
        assert_eq!(c.ip, ip("203.0.113.9"));
        // Two trusted proxies in a row are skipped; so are separate header lines.
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4, 203.0.113.9"),
            ("x-forwarded-for", "10.9.9.9"),
        ]);
        assert_eq!(lb().client(ip("10.0.0.2"), false, &h).ip, ip("203.0.113.9"));
        // Every hop trusted: the farthest one is the client.
        let h = headers(&[("x-forwarded-for", "10.3.3.3, 10.4.4.4")]);
        assert_eq!(lb().client(ip("10.0.0.2"), false, &h).ip, ip("10.3.3.3"));
    }

    #[test]
    fn forwarded_header_wins_and_carries_the_scheme() {
        let h = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.5.5.5;proto=http",
            ),
            ("x-forwarded-for", "198.51.100.50"),
            ("x-forwarded-proto", "http"),
        ]);
        let c = lb().client(ip("::ffff:10.0.0.2"), false, &h);
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("2001:db8:cafe::17"),
                secure: true
            }
        );
        let h = headers(&[("forwarded", "for=192.0.2.60:1234;proto=HTTPS;by=10.0.0.2")]);
        assert_eq!(
            lb().client(ip("10.0.0.2"), false, &h),
            ClientAddr {
                ip: ip("192.0.2.60"),
                secure: true
            }
        );
    }

    #[test]
    fn unreadable_hops_stop_at_the_proxy_that_reported_them() {
        let h = headers(&[("forwarded", "for=unknown, for=10.5.5.5")]);
        assert_eq!(lb().client(ip("10.0.0.2"), false, &h).ip, ip("10.5.5.5"));
        let h = headers(&[("x-forwarded-for", "not-an-address")]);
        assert_eq!(lb().client(ip("10.0.0.2"), true, &h).ip, ip("10.0.0.2"));
        // No forwarding headers at all: the peer, whose transport counts.
        let c = lb().client(ip("10.0.0.2"), true, &HeaderMap::new());
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("10.0.0.2"),
                secure: true
            }
        );
        let h = headers(&[("x-forwarded-proto", "gopher")]);
        assert!(lb().client(ip("10.0.0.2"), true, &h).secure);
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local"]).is_err());
        let t = TrustedProxies::parse(&["10.1.2.3/8", "::1"]).unwrap();
        assert!(t.contains(ip("10.200.0.1")));
        assert!(t.contains(ip("::1")));
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn header_text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[ -~]{0,80}",
                prop::collection::vec(
                    prop_oneof![
                        Just("for=".to_owned()),
                        Just("proto=".to_owned()),
                        Just(";".to_owned()),
                        Just(",".to_owned()),
                        Just("\"".to_owned()),
                        Just("[".to_owned()),
                        Just("]".to_owned()),
                        Just(":".to_owned()),
                        Just("10.0.0.1".to_owned()),
                        Just("2001:db8::1".to_owned()),
                        Just("https".to_owned()),
                        Just("unknown".to_owned()),
                        "[0-9a-f:.]{0,12}",
                    ],
                    0..12,
                )
                .prop_map(|parts| parts.concat()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever the headers say, nothing panics; an untrusted peer is always the
            /// client, and a trusted one names an address its headers or the peer gave.
            #[test]
            fn forwarding_headers_never_panic(
                fwd in header_text(),
                xff in header_text(),
                proto in header_text(),
                trusted_peer in any::<bool>(),
            ) {
                let mut h = HeaderMap::new();
                for (name, value) in [("forwarded", &fwd), ("x-forwarded-for", &xff), ("x-forwarded-proto", &proto)] {
                    if let Ok(v) = http::HeaderValue::from_str(value) {
                        h.insert(http::HeaderName::from_static(name), v);
                    }
                }
                let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
                let peer: IpAddr = if trusted_peer { "10.1.1.1" } else { "192.0.2.1" }.parse().unwrap();
                let c = t.client(peer, false, &h);
                if !trusted_peer {
                    prop_assert_eq!(c, ClientAddr { ip: peer, secure: false });
                } else {
                    let text = format!("{fwd} {xff}");
                    let canonical = |s: &str| s.parse::<IpAddr>().map(|ip| ip.to_canonical()).ok();
                    let named = text
                        .split(|ch: char| !(ch.is_ascii_hexdigit() || ch == '.' || ch == ':'))
                        .flat_map(|w| [w.to_owned(), w.rsplit_once(':').map(|(a, _)| a.to_owned()).unwrap_or_default()])
                        .any(|w| canonical(&w) == Some(c.ip));
                    prop_assert!(c.ip == peer || named, "{:?} from {:?}", c.ip, text);
                }
            }

            #[test]
            fn trusted_proxy_entries_never_panic(entry in "[ -~]{0,40}") {
                let _ = TrustedProxies::parse(&[entry]);
            }
        }
    }
}
