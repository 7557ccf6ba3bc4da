//! Server origins (PROTOCOL.md section 1): `https://host[:port]`, lower-case host, no path, no
//! trailing slash; `http://` only in insecure development mode.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OriginError {
    #[error("origin must start with https:// (http:// only with --insecure-dev)")]
    Scheme,
    #[error("origin must be scheme://host[:port] with no path, query or trailing slash")]
    Shape,
    #[error("origin host is empty or has invalid characters")]
    Host,
    #[error("origin port is not a number between 1 and 65535")]
    Port,
    #[error("origin is longer than {MAX_ORIGIN_BYTES} bytes")]
    TooLong,
}

/// A host name is at most 253 bytes (RFC 1035); with the scheme and a port this is ample, and
/// it bounds what one origin costs wherever it is stored or sent.
pub const MAX_ORIGIN_BYTES: usize = 280;

impl Origin {
    /// Parses and normalises an origin (lower-cases scheme and host).
    pub fn parse(text: &str, allow_http: bool) -> Result<Self, OriginError> {
        if text.len() > MAX_ORIGIN_BYTES {
            return Err(OriginError::TooLong);
        }
        let lower = text.to_ascii_lowercase();
        let (scheme, rest) = if let Some(rest) = lower.strip_prefix("https://") {
            ("https", rest)
        } else if let Some(rest) = lower.strip_prefix("http://") {
            if !allow_http {
                return Err(OriginError::Scheme);
            }
            ("http", rest)
        } else {
            return Err(OriginError::Scheme);
        };
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(OriginError::Shape);
        }
        let (host, port) = split_host_port(rest)?;
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !host_ok {
            return Err(OriginError::Host);
        }
        // The scheme's default port is left out, so one server has one spelling.
        let origin = match port {
            Some(443) if scheme == "https" => format!("{scheme}://{host}"),
            Some(80) if scheme == "http" => format!("{scheme}://{host}"),
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        };
        Ok(Origin(origin))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// The host without scheme or port (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        let rest = self.0.split_once("://").map_or("", |(_, rest)| rest);
        match rest.find(']') {
            Some(end) => &rest[..=end],
            None => rest.rsplit_once(':').map_or(rest, |(host, _)| host),
        }
    }
}

fn split_host_port(rest: &str) -> Result<(&str, Option<u16>), OriginError> {
    // IPv6 literal: [::1]:port
    if rest.starts_with('[')
        && let Some(end) = rest.find(']')
    {
        let host = &rest[..=end];
        return match &rest[end + 1..] {
            "" => Ok((host, None)),
            port => match port.strip_prefix(':') {
                Some(port) => Ok((host, Some(parse_port(port)?))),
                None => Err(OriginError::Shape),
            },
        };
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(parse_port(port)?)),
        None => (rest, None),
    };
    // Colons and brackets belong to IPv6 literals only.
    if host.contains([':', '[', ']']) {
        return Err(OriginError::Host);
    }
    Ok((host, port))
}

fn parse_port(text: &str) -> Result<u16, OriginError> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OriginError::Port);
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 && !text.starts_with('0') => Ok(port),
        _ => Err(OriginError::Port),
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_keeps_the_port() {
        let origin = Origin::parse("HTTPS://Chat.Example.ORG:8443", false).expect("valid");
        assert_eq!(origin.as_str(), "https://chat.example.org:8443");
    }

    #[test]
    fn refuses_http_unless_insecure_dev() {
        assert_eq!(
            Origin::parse("http://127.0.0.1:7600", false),
            Err(OriginError::Scheme)
        );
        assert!(Origin::parse("http://127.0.0.1:7600", true).is_ok());
    }

    #[test]
    fn refuses_paths_trailing_slashes_and_bad_ports() {
        assert_eq!(
            Origin::parse("https://a.example/", false),
            Err(OriginError::Shape)
        );
        assert_eq!(
            Origin::parse("https://a.example/x", false),
            Err(OriginError::Shape)
        );
        assert_eq!(
            Origin::parse("https://a.example:0", false),
            Err(OriginError::Port)
        );
        assert_eq!(
            Origin::parse("https://a.example:99999", false),
            Err(OriginError::Port)
        );
        assert_eq!(
            Origin::parse("https://user@a.example", false),
            Err(OriginError::Shape)
        );
        assert_eq!(
            Origin::parse("ftp://a.example", false),
            Err(OriginError::Scheme)
        );
        // Found by fuzzing (fuzz/regressions/origin): `https://c:` would not parse again.
        assert_eq!(
            Origin::parse("HTTPS://C::443", false),
            Err(OriginError::Host)
        );
        assert_eq!(
            Origin::parse("https://a:b:443", false),
            Err(OriginError::Host)
        );
        assert_eq!(
            Origin::parse("https://a]:443", false),
            Err(OriginError::Host)
        );
        assert_eq!(
            Origin::parse("https://h:+8443", false),
            Err(OriginError::Port)
        );
        let long = format!("https://{}.example", "a".repeat(MAX_ORIGIN_BYTES));
        assert_eq!(Origin::parse(&long, false), Err(OriginError::TooLong));
        let longest_host = format!("https://{}:65535", "a".repeat(253));
        assert!(Origin::parse(&longest_host, false).is_ok());
    }

    #[test]
    fn drops_the_default_port() {
        let origin = Origin::parse("https://chat.example.org:443", false).expect("valid");
        assert_eq!(origin.as_str(), "https://chat.example.org");
        let origin = Origin::parse("http://127.0.0.1:80", true).expect("valid");
        assert_eq!(origin.as_str(), "http://127.0.0.1");
    }

    #[test]
    fn accepts_ipv6_literals() {
        let origin = Origin::parse("https://[::1]:7600", false).expect("valid");
        assert_eq!(origin.as_str(), "https://[::1]:7600");
    }
}
