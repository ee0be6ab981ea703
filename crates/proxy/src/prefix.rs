//! IP prefixes (`2001:db8::/32`, `10.0.0.0/8`, a bare address for one host)
//! for allow lists, trusted PROXY senders and per-source connection limits:
//! [`sixgate_net::Prefix`], read the proxy's way for client addresses.
#![forbid(unsafe_code)]

use std::net::IpAddr;

pub use sixgate_net::Prefix;

use crate::proxy_protocol::unmap;

/// Whether any of `prefixes` contains `addr`. A client is what it really
/// is: an IPv4-mapped IPv6 address (a dual-stack socket's IPv4 peer) is
/// matched as IPv4 only, so `10.0.0.0/8` holds `::ffff:10.1.2.3` and
/// `::/0` does not.
pub fn any_contains(prefixes: &[Prefix], addr: IpAddr) -> bool {
    let addr = unmap(addr);
    prefixes.iter().any(|p| p.contains(addr))
}

/// The per-source key of a client: the prefix of `len` bits that holds it,
/// IPv4-mapped addresses taken as IPv4 (`len` is cut to the family's width).
pub fn source_of(addr: IpAddr, len: u8) -> Prefix {
    Prefix::of(unmap(addr), len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn clients_match_by_their_real_family() {
        assert!(any_contains(&[p("2001:db8::/32")], ip("2001:db8:ffff::1")));
        assert!(!any_contains(&[p("2001:db8::/32")], ip("10.0.0.1")));
        assert!(any_contains(&[p("10.0.0.0/8")], ip("10.9.9.9")));
        // A dual-stack socket reports IPv4 clients as IPv4-mapped IPv6.
        assert!(any_contains(&[p("10.0.0.0/8")], ip("::ffff:10.1.2.3")));
        assert!(any_contains(&[p("0.0.0.0/0")], ip("::ffff:1.2.3.4")));
        assert!(!any_contains(&[p("0.0.0.0/0")], ip("::1")));
        assert!(!any_contains(&[p("::/0")], ip("::ffff:1.2.3.4")));
        assert!(!any_contains(&[], ip("::1")));
    }

    #[test]
    fn source_keys_unmap_and_mask() {
        assert_eq!(
            source_of(ip("2001:db8:1:2:3:4:5:6"), 64),
            p("2001:db8:1:2::/64")
        );
        assert_eq!(source_of(ip("::ffff:192.0.2.9"), 24), p("192.0.2.0/24"));
        assert_eq!(source_of(ip("192.0.2.9"), 64), p("192.0.2.9/32"));
    }
}
