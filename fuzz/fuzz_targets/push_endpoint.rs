//! Push endpoint URLs (PROTOCOL.md section 9): `EndpointGuard::parse`, `resolve` for IP
//! literals (no DNS), and the address rule `is_internal_ip` behind it.
//!
//! Properties, for every text, under a strict guard and one with an allow-list:
//! - nothing panics;
//! - an accepted URL keeps its text, is at most 2048 bytes, is https unless its host is
//!   allow-listed, carries no credentials anywhere in its authority, and the endpoint names the
//!   URL's own host (lower-case, non-empty), its own port (or the scheme's default) and a path
//!   that starts with `/` (the request target delivery sends);
//! - an IP-literal host resolves to itself, and is refused when internal unless allow-listed;
//! - the first bytes read as IPv4/IPv6 addresses: loopback, private, link-local, unspecified,
//!   broadcast, multicast and unique-local addresses, and IPv6 addresses embedding an internal
//!   IPv4 one, are all internal.
#![no_main]

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::OnceLock,
};

use libfuzzer_sys::fuzz_target;
use mzchat_platform::federation::is_internal_ip;
use mzchat_push::endpoint::{Endpoint, EndpointError, EndpointGuard, MAX_URL_LEN};

/// The allow-list as configured, and as the guard compares it (trimmed, lower-case).
const DEV_CONFIG: [&str; 2] = ["127.0.0.1", " Distributor.Local "];
const DEV_HOSTS: [&str; 2] = ["127.0.0.1", "distributor.local"];

fuzz_target!(|data: &[u8]| {
    let url = String::from_utf8_lossy(data);
    let dev = EndpointGuard::new(&DEV_CONFIG.map(String::from));
    for (guard, allowed) in [(EndpointGuard::default(), &[][..]), (dev, &DEV_HOSTS[..])] {
        if let Ok(endpoint) = guard.parse(&url) {
            check_endpoint(&url, &endpoint, allowed);
            check_resolve(&guard, &endpoint, allowed);
        }
    }
    check_address_rules(data);
});

fn check_endpoint(url: &str, endpoint: &Endpoint, allowed: &[&str]) {
    assert_eq!(endpoint.url, url);
    assert!(url.len() <= MAX_URL_LEN);
    let lower = url.to_ascii_lowercase();
    let host = endpoint.host.as_str();
    if endpoint.https {
        assert!(lower.starts_with("https://"), "{url:?} accepted as https");
    } else {
        assert!(
            lower.starts_with("http://") && allowed.contains(&host),
            "{url:?} allowed http"
        );
    }
    // The authority as any URL reader sees it: up to the first '/', '?' or '#'.
    let rest = &lower[lower.find("://").expect("scheme") + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    assert!(!authority.contains('@'), "{url:?} carries credentials");
    assert!(
        !host.is_empty() && host == host.to_ascii_lowercase(),
        "{url:?}: host {host:?}"
    );
    assert!(!host.contains(['[', ']', '@']), "{url:?}: host {host:?}");
    let port_text = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, after)| after),
        None => authority.rsplit_once(':').map_or("", |(_, port)| port),
    };
    let port_text = port_text.trim_start_matches(':');
    let expected_host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or(v6, |(h, _)| h),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    assert_eq!(host, expected_host, "{url:?}: host");
    if port_text.is_empty() {
        assert_eq!(
            endpoint.port,
            if endpoint.https { 443 } else { 80 },
            "{url:?}"
        );
    } else {
        assert_eq!(
            port_text.parse::<u16>().ok(),
            Some(endpoint.port),
            "{url:?}: port"
        );
    }
    assert!(
        endpoint.path.starts_with('/'),
        "{url:?}: path {:?}",
        endpoint.path
    );
}

/// IP literals resolve without DNS, so the internal-address rule is checked end to end.
fn check_resolve(guard: &EndpointGuard, endpoint: &Endpoint, allowed: &[&str]) {
    let Ok(ip) = endpoint.host.parse::<IpAddr>() else {
        return;
    };
    let resolved = runtime().block_on(guard.resolve(endpoint));
    if is_internal_ip(ip) && !allowed.contains(&endpoint.host.as_str()) {
        assert_eq!(
            resolved,
            Err(EndpointError::Internal(endpoint.host.clone()))
        );
    } else {
        assert_eq!(resolved, Ok(vec![SocketAddr::new(ip, endpoint.port)]));
    }
}

/// One runtime for the whole run (resolve bounds the lookup with a timer).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    })
}

fn check_address_rules(data: &[u8]) {
    if let Some(bytes) = data.first_chunk::<4>() {
        let v4 = Ipv4Addr::from(*bytes);
        let must = v4.is_loopback()
            || v4.is_private()
            || v4.is_link_local()
            || v4.is_unspecified()
            || v4.is_broadcast()
            || v4.is_multicast();
        assert!(!must || is_internal_ip(v4.into()), "{v4} is internal");
    }
    if let Some(bytes) = data.first_chunk::<16>() {
        let v6 = Ipv6Addr::from(*bytes);
        let must = v6.is_loopback()
            || v6.is_unspecified()
            || v6.is_multicast()
            || v6.is_unique_local()
            || v6.is_unicast_link_local()
            || v6.to_ipv4().is_some_and(|v4| is_internal_ip(v4.into()));
        assert!(!must || is_internal_ip(v6.into()), "{v6} is internal");
        if let Some(v4) = v6.to_ipv4_mapped() {
            assert_eq!(is_internal_ip(v6.into()), is_internal_ip(v4.into()), "{v6}");
        }
    }
}
