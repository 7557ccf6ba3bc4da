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
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(EndpointError::Malformed);
        }
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if self.allowed(&host) => false,
            Some("http") => return Err(EndpointError::NotHttps),
            _ => return Err(EndpointError::Malformed),
        };
        Ok(Endpoint {
            url: url.to_owned(),
            https,
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            path: uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
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
