//! Server origins (PROTOCOL.md section 1): `Origin::parse(text, allow_http)`.
//!
//! Properties, for every text and both flags:
//! - nothing panics;
//! - a parsed origin's string form parses again to the same origin (one server, one spelling);
//! - it is `scheme://host[:port]`: lower-case, https (http only when allowed), no path, query,
//!   fragment or credentials, a non-empty host, and a port only when it is not the default;
//! - allowing http never changes how an https origin parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mzchat_platform::Origin;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let strict = Origin::parse(&text, false);
    let lax = Origin::parse(&text, true);
    if let Ok(origin) = &strict {
        assert_eq!(
            lax.as_ref(),
            Ok(origin),
            "allow_http changed an https origin"
        );
    }
    for (result, allow_http) in [(strict, false), (lax, true)] {
        if let Ok(origin) = result {
            check(&origin, allow_http);
        }
    }
});

fn check(origin: &Origin, allow_http: bool) {
    let text = origin.as_str();
    assert_eq!(origin.to_string(), text);
    assert_eq!(
        Origin::parse(text, allow_http).as_ref(),
        Ok(origin),
        "{text:?} does not parse back to itself"
    );
    assert!(
        !text.bytes().any(|b| b.is_ascii_uppercase()),
        "{text:?} is not lower-case"
    );
    let (scheme, rest) = text.split_once("://").expect("scheme");
    assert!(
        scheme == "https" || (allow_http && scheme == "http"),
        "{text:?}"
    );
    assert_eq!(origin.is_https(), scheme == "https");
    assert!(
        !rest.contains(['/', '?', '#', '@']),
        "{text:?} has more than scheme://host[:port]"
    );
    let host = origin.host();
    assert!(!host.is_empty(), "{text:?} has an empty host");
    let after_host = rest
        .strip_prefix(host)
        .expect("the host starts the authority");
    if !after_host.is_empty() {
        let port: u16 = after_host
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{text:?}: {after_host:?} after the host is not a port"));
        let default = if scheme == "https" { 443 } else { 80 };
        assert!(port != 0 && port != default, "{text:?} keeps port {port}");
    }
}
