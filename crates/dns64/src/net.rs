//! Which configured networks a DNS client is in. The networks themselves are
//! [`sixgate_net::Prefix`] values (`10.0.0.0/8`, `fc00::/7`, a bare address
//! for one host).

use std::net::IpAddr;

pub use sixgate_net::Prefix;

/// Whether `client` is in one of `nets`. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4 peers) is
/// matched both as itself and as IPv4, so `10.0.0.0/8` holds
/// `::ffff:10.1.2.3` and so does `::ffff:0:0/96`.
pub fn client_in(nets: &[Prefix], client: IpAddr) -> bool {
    nets.iter()
        .any(|n| n.contains(client) || n.contains(client.to_canonical()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(texts: &[&str]) -> Vec<Prefix> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn mapped_clients_match_ipv4_and_ipv6_networks() {
        let v4 = nets(&["10.0.0.0/8"]);
        assert!(client_in(&v4, "10.1.2.3".parse().unwrap()));
        assert!(client_in(&v4, "::ffff:10.1.2.3".parse().unwrap()));
        assert!(!client_in(&v4, "11.0.0.1".parse().unwrap()));
        assert!(!client_in(&v4, "::ffff:11.0.0.1".parse().unwrap()));
        let mapped = nets(&["::ffff:0:0/96"]);
        assert!(client_in(&mapped, "::ffff:11.0.0.1".parse().unwrap()));
        assert!(!client_in(&mapped, "11.0.0.1".parse().unwrap()));
        let v6 = nets(&["fc00::/7", "::1"]);
        assert!(client_in(&v6, "fd12::1".parse().unwrap()));
        assert!(client_in(&v6, "::1".parse().unwrap()));
        assert!(!client_in(&v6, "2001:db8::1".parse().unwrap()));
        assert!(!client_in(&[], "::1".parse().unwrap()));
    }
}
