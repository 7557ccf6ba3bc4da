//! Push endpoint URLs are untrusted (PROTOCOL.md section 9): https only, no credentials in the
//! URL, bounded length, and every address the host resolves to must be public. Hosts on the
//! allow-list (development: a local distributor) may use http and private addresses. Delivery
//! connects to an address vetted here, never resolving the name again, so a DNS answer that
//! changes between check and use cannot smuggle a private address in.

use std::net::SocketAddr;

use mzchat_platform::federation::is_internal_ip;

pub const MAX_URL_LEN: usize = 2048;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error("endpoint_url is not an absolute http(s) URL of at most 2048 characters")]
    Malformed,
    #[error("endpoint_url must use https")]
    NotHttps,
    #[error("endpoint_url must not carry credentials")]
    Credentials,
    #[error("endpoint host {0} does not resolve")]
    Unresolvable(String),
    #[error("endpoint host {0} resolves to a private, loopback or link-local address")]
    Internal(String),
}

/// A parsed endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, at least "/".
    pub path: String,
}

#[derive(Debug, Clone, Default)]
pub struct EndpointGuard {
    /// Hosts allowed http and private addresses (development only).
    allowed_hosts: Vec<String>,
}

/// The host (an IPv6 literal without its brackets) and port of an authority. The `http` crate
/// leaves both loose: `a[b`, `a:b` and `a:99999` get through it.
fn host_and_port(authority: &str) -> Result<(&str, Option<u16>), EndpointError> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(literal) => {
            let (ip, rest) = literal.split_once(']').ok_or(EndpointError::Malformed)?;
            ip.parse::<std::net::Ipv6Addr>()
                .map_err(|_| EndpointError::Malformed)?;
            let port = match rest {
                "" => None,
                rest => Some(rest.strip_prefix(':').ok_or(EndpointError::Malformed)?),
            };
            (ip, port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let bad_host =
        host.is_empty() || (!authority.starts_with('[') && host.contains([':', '[', ']']));
    if bad_host {
        return Err(EndpointError::Malformed);
    }
    let port = match port {
        None => None,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Some(
            digits
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or(EndpointError::Malformed)?,
        ),
        Some(_) => return Err(EndpointError::Malformed),
    };
    Ok((host, port))
}

impl EndpointGuard {
    pub fn new(allowed_hosts: &[String]) -> Self {
        Self {
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    fn allowed(&self, host: &str) -> bool {
        self.allowed_hosts.iter().any(|h| h == host)
    }

    pub fn parse(&self, url: &str) -> Result<Endpoint, EndpointError> {
        if url.len() > MAX_URL_LEN {
            return Err(EndpointError::Malformed);
        }
        let uri: http::Uri = url.parse().map_err(|_| EndpointError::Malformed)?;
        let authority = uri.authority().ok_or(EndpointError::Malformed)?;
        if authority.as_str().contains('@') {
            return Err(EndpointError::Credentials);
        }
        let (host, port) = host_and_port(authority.as_str())?;
        let host = host.to_ascii_lowercase();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if self.allowed(&host) => false,
            Some("http") => return Err(EndpointError::NotHttps),
            _ => return Err(EndpointError::Malformed),
        };
        Ok(Endpoint {
            url: url.to_owned(),
            https,
            port: port.unwrap_or(if https { 443 } else { 80 }),
            // The request target: the path (at least `/`) and the query.
            path: match (uri.path(), uri.query()) {
                ("", None) => "/".to_owned(),
                ("", Some(query)) => format!("/?{query}"),
                (path, None) => path.to_owned(),
                (path, Some(query)) => format!("{path}?{query}"),
            },
            host,
        })
    }

    /// The addresses to connect to; all must be public unless the host is allow-listed.
    pub async fn resolve(&self, endpoint: &Endpoint) -> Result<Vec<SocketAddr>, EndpointError> {
        // A resolver that never answers must not hold a registration or a delivery.
        let lookup = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port));
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(std::time::Duration::from_secs(5), lookup)
                .await
                .map_err(|_| EndpointError::Unresolvable(endpoint.host.clone()))?
                .map_err(|_| EndpointError::Unresolvable(endpoint.host.clone()))?
                .collect();
        if addrs.is_empty() {
            return Err(EndpointError::Unresolvable(endpoint.host.clone()));
        }
        if !self.allowed(&endpoint.host) && addrs.iter().any(|a| is_internal_ip(a.ip())) {
            return Err(EndpointError::Internal(endpoint.host.clone()));
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_without_credentials_pass() {
        let guard = EndpointGuard::default();
        let ok = guard
            .parse("https://push.example.org/up/abc?x=1")
            .expect("valid");
        assert_eq!(
            (ok.host.as_str(), ok.port, ok.path.as_str()),
            ("push.example.org", 443, "/up/abc?x=1")
        );
        assert_eq!(
            guard.parse("http://push.example.org/x"),
            Err(EndpointError::NotHttps)
        );
        assert_eq!(
            guard.parse("https://user:pw@push.example.org/x"),
            Err(EndpointError::Credentials)
        );
        assert_eq!(
            guard.parse("ftp://push.example.org/x"),
            Err(EndpointError::Malformed)
        );
        assert_eq!(guard.parse("/relative"), Err(EndpointError::Malformed));
        let long = format!("https://push.example.org/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(guard.parse(&long), Err(EndpointError::Malformed));
    }

    /// Found by fuzzing (fuzz/regressions/push_endpoint): the `http` crate passes these.
    #[test]
    fn hosts_ports_and_paths_are_what_they_say() {
        let guard = EndpointGuard::default();
        for url in [
            "https://a:b/",
            "https://a:99999/",
            "https://a:0/",
            "https://a[b:]/",
            "https://[not-ip]/",
            "https://[::1]x/",
            "https://push.exam:le.org/up",
        ] {
            assert_eq!(guard.parse(url), Err(EndpointError::Malformed), "{url}");
        }
        let query = guard.parse("https://a?x").expect("query without a path");
        assert_eq!((query.host.as_str(), query.path.as_str()), ("a", "/?x"));
        let bare = guard.parse("https://a").expect("no path");
        assert_eq!(bare.path, "/");
        let v6 = guard.parse("https://[2001:db8::1]:8443/p").expect("ipv6");
        assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", 8443));
    }

    #[tokio::test]
    async fn private_addresses_are_refused_unless_allow_listed() {
        let guard = EndpointGuard::default();
        for url in [
            "https://127.0.0.1:8443/up",
            "https://10.1.2.3/up",
            "https://[::1]/up",
            "https://169.254.169.254/latest",
            // A name that resolves to loopback.
            "https://localhost/up",
        ] {
            let endpoint = guard.parse(url).expect(url);
            assert!(
                matches!(
                    guard.resolve(&endpoint).await,
                    Err(EndpointError::Internal(_))
                ),
                "{url}"
            );
        }
        let dev = EndpointGuard::new(&["127.0.0.1".to_owned()]);
        let endpoint = dev
            .parse("http://127.0.0.1:9999/up")
            .expect("allow-listed http");
        assert_eq!(dev.resolve(&endpoint).await.expect("allowed").len(), 1);
    }
}
