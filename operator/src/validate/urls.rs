//! Origins, endpoint URLs and federation patterns, parsed the way mzchatd parses them, plus the
//! rule the operator adds: a routed origin needs a host name.

use std::fmt;

use super::names::is_rfc1123_label;

/// A server origin, normalised like mzchatd does: lower-case, the scheme's default port left
/// out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub https: bool,
    pub host: String,
    pub port: Option<u16>,
}

impl Origin {
    /// Hosts where http:// is accepted, for development clusters.
    const DEV_HOSTS: [&'static str; 2] = ["localhost", "127.0.0.1"];

    pub fn is_dev_host(&self) -> bool {
        Self::DEV_HOSTS.contains(&self.host.as_str())
    }

    /// Whether the host is a DNS name (what an Ingress rule or an HTTPRoute can match).
    pub fn has_dns_host(&self) -> bool {
        !is_ipv4(&self.host)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        match self.port {
            Some(port) => write!(f, "{scheme}://{}:{port}", self.host),
            None => write!(f, "{scheme}://{}", self.host),
        }
    }
}

/// Parses `https://host[:port]` (http:// only for localhost and 127.0.0.1).
pub fn parse_origin(text: &str) -> Result<Origin, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (https, rest) = match (
        lower.strip_prefix("https://"),
        lower.strip_prefix("http://"),
    ) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return Err(format!("{text:?} must start with https://")),
    };
    let (host, port) = split_authority(rest).map_err(|problem| format!("{text:?}: {problem}"))?;
    let origin = Origin {
        https,
        port: port.filter(|&p| p != if https { 443 } else { 80 }),
        host,
    };
    if !https && !origin.is_dev_host() {
        return Err(format!(
            "{text:?} must start with https:// (http:// is accepted only for localhost and 127.0.0.1, in development)"
        ));
    }
    Ok(origin)
}

/// A backend's URL: its scheme, host and port (the scheme's default when left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

/// Parses `scheme://host[:port]` with a scheme from `schemes` (name, default port); a trailing
/// `/` is allowed, a path is not.
pub fn parse_endpoint(text: &str, schemes: &[(&str, u16)]) -> Result<Endpoint, String> {
    let names = schemes
        .iter()
        .map(|(name, _)| format!("{name}://"))
        .collect::<Vec<_>>()
        .join(", ");
    let trimmed = text.trim();
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Err(format!("{text:?} must be a URL starting with {names}"));
    };
    let scheme = scheme.to_ascii_lowercase();
    let Some(&(_, default_port)) = schemes.iter().find(|(name, _)| *name == scheme) else {
        return Err(format!("{text:?} must start with {names}"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest).to_ascii_lowercase();
    let (host, port) = split_authority(&rest).map_err(|problem| format!("{text:?}: {problem}"))?;
    Ok(Endpoint {
        scheme,
        host,
        port: port.unwrap_or(default_port),
    })
}

fn split_authority(rest: &str) -> Result<(String, Option<u16>), &'static str> {
    if rest.is_empty() {
        return Err("the host is missing");
    }
    if rest.contains(['/', '?', '#']) {
        return Err("it must have no path, query or trailing slash");
    }
    if rest.contains('@') {
        return Err("credentials do not belong in the URL (use the Secret reference)");
    }
    if rest.starts_with('[') {
        return Err("IPv6 addresses are not supported here: use a host name");
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(p) if p > 0 && !port.starts_with('0') => (host, Some(p)),
            _ => return Err("the port must be a number between 1 and 65535"),
        },
        None => (rest, None),
    };
    if !(is_ipv4(host) || is_host_name(host)) {
        return Err(
            "the host must be a DNS name (letters, digits, '-' and '.') or an IPv4 address",
        );
    }
    Ok((host.to_owned(), port))
}

fn is_host_name(host: &str) -> bool {
    host.len() <= 253 && host.split('.').all(is_rfc1123_label)
}

fn is_ipv4(host: &str) -> bool {
    host.parse::<std::net::Ipv4Addr>().is_ok()
}

/// A federation allow/deny entry, normalised: an origin (matched exactly), a host, or
/// `*.domain` (its subdomains).
pub fn parse_federation_pattern(text: &str) -> Result<String, String> {
    let lower = text.trim().to_ascii_lowercase();
    if lower.contains("://") {
        // mzchatd accepts http:// origins here (servers in development), so does the operator.
        let (https, rest) = match (
            lower.strip_prefix("https://"),
            lower.strip_prefix("http://"),
        ) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            _ => {
                return Err(format!(
                    "{text:?} must be an https:// origin, a host or *.domain"
                ));
            }
        };
        let (host, port) = split_authority(rest).map_err(|p| format!("{text:?}: {p}"))?;
        let port = port.filter(|&p| p != if https { 443 } else { 80 });
        return Ok(Origin { https, host, port }.to_string());
    }
    let host = lower.strip_prefix("*.").unwrap_or(&lower);
    if host.is_empty() || !is_host_name(host) {
        return Err(format!(
            "{text:?} must be an origin (https://chat.example.org), a host (chat.example.org) or *.example.org"
        ));
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_like_mzchatd_does() {
        let origin = parse_origin("HTTPS://Chat.Example.org:443").expect("valid");
        assert_eq!(origin.to_string(), "https://chat.example.org");
        let origin = parse_origin("https://chat.example.org:8443").expect("valid");
        assert_eq!(origin.port, Some(8443));
    }

    #[test]
    fn http_is_only_for_development_hosts() {
        assert!(parse_origin("http://localhost:7600").is_ok());
        assert!(parse_origin("http://127.0.0.1:7600").is_ok());
        assert!(parse_origin("http://chat.example.org").is_err());
    }

    #[test]
    fn origins_have_no_path_credentials_or_bad_port() {
        for bad in [
            "https://chat.example.org/",
            "https://chat.example.org/x",
            "https://user@chat.example.org",
            "https://chat.example.org:0",
            "https://chat.example.org:70000",
            "https://[::1]",
            "https://",
            "chat.example.org",
            "ftp://chat.example.org",
            "https://chat_example.org",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn endpoints_get_their_scheme_default_port() {
        let nats = [("nats", 4222), ("tls", 4222)];
        let e = parse_endpoint("nats://nats.nats", &nats).expect("valid");
        assert_eq!((e.host.as_str(), e.port), ("nats.nats", 4222));
        let e = parse_endpoint("tls://nats.nats:4443/", &nats).expect("valid");
        assert_eq!(e.port, 4443);
        assert!(parse_endpoint("http://nats.nats", &nats).is_err());
        assert!(parse_endpoint("nats://nats.nats/path", &nats).is_err());
    }

    #[test]
    fn federation_patterns_are_origins_hosts_or_subdomains() {
        assert_eq!(
            parse_federation_pattern("HTTPS://A.example:443").as_deref(),
            Ok("https://a.example")
        );
        assert_eq!(
            parse_federation_pattern("*.Spam.example").as_deref(),
            Ok("*.spam.example")
        );
        assert!(parse_federation_pattern("a.example,b.example").is_err());
        assert!(parse_federation_pattern("*.").is_err());
        assert!(parse_federation_pattern("https://a.example/x").is_err());
    }
}
