//! Which servers may federate with this one. Patterns are either a full origin
//! (`https://chat.example.org:8443`, matched exactly) or a host pattern (`chat.example.org`, or
//! `*.example.org` for any subdomain), matched against the origin's host whatever its scheme and
//! port. A denied origin is refused even when an allow pattern matches; a non-empty allow list
//! admits only what it matches.

use crate::Origin;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Origin(String),
    Host(String),
    Subdomains(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("federation pattern {pattern:?}: {reason}")]
pub struct PolicyError {
    pattern: String,
    reason: &'static str,
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, PolicyError> {
        let text = text.trim().to_ascii_lowercase();
        let error = |reason| PolicyError {
            pattern: text.clone(),
            reason,
        };
        if text.contains("://") {
            let origin = Origin::parse(&text, true).map_err(|_| error("not a valid origin"))?;
            return Ok(Pattern::Origin(origin.as_str().to_owned()));
        }
        let (subdomains, host) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !valid {
            return Err(error(
                "expected an origin, a host name, or *.<domain> (letters, digits, '.', '-')",
            ));
        }
        Ok(if subdomains {
            Pattern::Subdomains(format!(".{host}"))
        } else {
            Pattern::Host(host.to_owned())
        })
    }

    fn matches(&self, origin: &Origin) -> bool {
        match self {
            Pattern::Origin(exact) => origin.as_str() == exact,
            Pattern::Host(host) => origin.host() == host,
            Pattern::Subdomains(suffix) => origin.host().ends_with(suffix.as_str()),
        }
    }
}

/// The allow and deny lists, parsed once at start.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    allow: Vec<Pattern>,
    deny: Vec<Pattern>,
}

impl OriginPolicy {
    pub fn new(allow: &[String], deny: &[String]) -> Result<Self, PolicyError> {
        let parse = |list: &[String]| {
            list.iter()
                .filter(|p| !p.trim().is_empty())
                .map(|p| Pattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            allow: parse(allow)?,
            deny: parse(deny)?,
        })
    }

    pub fn permits(&self, origin: &Origin) -> bool {
        if self.deny.iter().any(|p| p.matches(origin)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|p| p.matches(origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Origin {
        Origin::parse(text, true).expect("origin")
    }

    fn policy(allow: &[&str], deny: &[&str]) -> OriginPolicy {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        OriginPolicy::new(&own(allow), &own(deny)).expect("valid policy")
    }

    #[test]
    fn everything_is_allowed_by_default() {
        assert!(policy(&[], &[]).permits(&origin("https://a.example")));
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = policy(&["*.example.org"], &["bad.example.org"]);
        assert!(p.permits(&origin("https://good.example.org")));
        assert!(!p.permits(&origin("https://bad.example.org:8443")));
        assert!(!p.permits(&origin("https://example.net")));
        // `*.example.org` is subdomains only, and no suffix trick gets through.
        assert!(!p.permits(&origin("https://example.org")));
        assert!(!p.permits(&origin("https://evilexample.org")));
    }

    #[test]
    fn a_full_origin_matches_exactly() {
        let p = policy(&[], &["https://chat.example.org:8443"]);
        assert!(!p.permits(&origin("https://chat.example.org:8443")));
        assert!(p.permits(&origin("https://chat.example.org")));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["*", "a/b", "https://x/y", "*.", "ex ample.org"] {
            assert!(OriginPolicy::new(&[bad.to_string()], &[]).is_err(), "{bad}");
        }
    }
}

/// Whether an origin names this machine or a private network by address (loopback, private,
/// link-local, unique-local, unspecified, multicast, or `localhost`). Federation refuses those
/// outside development, so a remote party cannot make this server call into its own network.
/// Names that resolve to such addresses need a resolver-level check (the push endpoint guard).
pub fn is_internal_address(origin: &Origin) -> bool {
    let host = origin.host().trim_start_matches('[').trim_end_matches(']');
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>().is_ok_and(is_internal_ip)
}

/// Whether an address belongs to this machine or a private network: loopback, private
/// (RFC 1918), carrier-grade NAT, link-local, IPv6 unique-local, unspecified, multicast,
/// broadcast, or an IPv4-mapped IPv6 form of one of those.
pub fn is_internal_ip(ip: std::net::IpAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, c, _] = ip.octets();
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_multicast()
                || ip.is_broadcast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b))
        }
        IpAddr::V6(ip) => {
            let s = ip.segments();
            let embedded = |hi: u16, lo: u16| {
                let [h1, h2] = hi.to_be_bytes();
                let [l1, l2] = lo.to_be_bytes();
                is_internal_ip(IpAddr::V4(Ipv4Addr::new(h1, h2, l1, l2)))
            };
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || ip.to_ipv4_mapped().is_some_and(|v4| is_internal_ip(IpAddr::V4(v4)))
                // IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4.
                || (s[..6] == [0; 6] && embedded(s[6], s[7]))
                || (s[0] == 0x64 && s[1] == 0xff9b && (s[2] == 1 || embedded(s[6], s[7])))
                || (s[0] == 0x2002 && embedded(s[1], s[2]))
        }
    }
}

#[cfg(test)]
mod address_tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "https://127.0.0.1:8443",
            "https://10.1.2.3",
            "https://192.168.0.1",
            "https://169.254.169.254",
            "https://100.64.0.1",
            "https://[::1]:443",
            "https://[fd00::1]",
            "https://[::ffff:10.0.0.1]",
            "https://localhost:7600",
            "https://0.1.2.3",
            "https://198.18.0.1",
            "https://240.0.0.1",
            "https://[64:ff9b::a00:5]",
            "https://[2002:a00:1::]",
            "https://[fec0::1]",
        ] {
            let origin = Origin::parse(internal, false).expect(internal);
            assert!(is_internal_address(&origin), "{internal}");
        }
        for public in [
            "https://chat.example.org",
            "https://93.184.216.34",
            "https://[2001:db8::1]",
        ] {
            let origin = Origin::parse(public, false).expect(public);
            assert!(!is_internal_address(&origin), "{public}");
        }
    }
}
