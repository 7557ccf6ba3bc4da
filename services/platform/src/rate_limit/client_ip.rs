//! The address a call comes from, for the limits on calls without a session.

use std::net::IpAddr;

use tonic::Request;

/// The client's address as a limit key: the peer address, or, behind `hops` proxies that each
/// append the address they were called from to `X-Forwarded-For`, the address the farthest
/// trusted proxy saw (entries further left are the client's to forge). IPv6 clients are keyed
/// by their /64, which one subscriber usually holds whole.
pub fn client_address<T>(request: &Request<T>, hops: usize) -> String {
    let forwarded = (hops > 0).then(|| forwarded_for(request, hops)).flatten();
    match forwarded.or_else(|| request.remote_addr().map(|a| a.ip())) {
        Some(ip) => network(ip),
        None => "unknown".to_owned(),
    }
}

fn forwarded_for<T>(request: &Request<T>, hops: usize) -> Option<IpAddr> {
    let entries: Vec<&str> = request
        .metadata()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let index = entries.len().checked_sub(hops)?;
    entries[index].parse().ok()
}

fn network(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, forwarded: &[&str]) -> Request<()> {
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(tonic::transport::server::TcpConnectInfo {
                local_addr: None,
                remote_addr: Some(peer.parse().expect("valid")),
            });
        for value in forwarded {
            request
                .metadata_mut()
                .append("x-forwarded-for", value.parse().expect("valid"));
        }
        request
    }

    #[test]
    fn the_peer_address_unless_proxies_are_trusted() {
        let r = request("10.0.0.9:4000", &["6.6.6.6, 203.0.113.7"]);
        assert_eq!(client_address(&r, 0), "10.0.0.9");
        assert_eq!(client_address(&r, 1), "203.0.113.7");
        assert_eq!(client_address(&r, 2), "6.6.6.6");
        // More hops than entries: the header is not what the proxies would write.
        assert_eq!(client_address(&r, 3), "10.0.0.9");
        let split = request("10.0.0.9:4000", &["6.6.6.6", "203.0.113.8"]);
        assert_eq!(client_address(&split, 1), "203.0.113.8");
        assert_eq!(
            client_address(&request("10.0.0.9:1", &["junk"]), 1),
            "10.0.0.9"
        );
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let a = request("[2001:db8:1:2:aaaa::1]:443", &[]);
        let b = request("[2001:db8:1:2:bbbb::2]:443", &[]);
        assert_eq!(client_address(&a, 0), "2001:db8:1:2::/64");
        assert_eq!(client_address(&a, 0), client_address(&b, 0));
        let mapped = request("[::ffff:192.0.2.1]:443", &[]);
        assert_eq!(client_address(&mapped, 0), "192.0.2.1");
        assert_eq!(client_address(&Request::new(()), 0), "unknown");
    }
}
