//! IP prefixes (`2001:db8::/32`, `10.0.0.0/8`) for allow lists, trusted
//! PROXY senders and per-source connection limits.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Deserialize;

use crate::proxy_protocol::unmap;

/// An IPv4 or IPv6 prefix; host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// The prefix of length `len` that holds `addr` (IPv4-mapped IPv6
    /// addresses count as IPv4); `len` is clamped to the family's width.
    pub fn of(addr: IpAddr, len: u8) -> Self {
        match unmap(addr) {
            IpAddr::V4(v4) => {
                let len = len.min(32);
                Self {
                    addr: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(len))),
                    len,
                }
            }
            IpAddr::V6(v6) => {
                let len = len.min(128);
                Self {
                    addr: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(len))),
                    len,
                }
            }
        }
    }

    /// Whether `addr` is in this prefix (IPv4-mapped IPv6 addresses are
    /// matched as IPv4).
    pub fn contains(&self, addr: IpAddr) -> bool {
        Self::of(addr, self.len) == *self
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// A prefix that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PrefixError(&'static str);

impl FromStr for Prefix {
    type Err = PrefixError;

    /// `ADDR/LEN`, or a bare address (a host prefix). Host bits must be zero.
    fn from_str(s: &str) -> Result<Self, PrefixError> {
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            PrefixError("expected an IP prefix such as 2001:db8::/32 or 10.0.0.0/8")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(len) => len
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= max)
                .ok_or(PrefixError("prefix length out of range"))?,
        };
        // Keep the family as written: `::ffff:0:0/96` stays IPv6.
        let prefix = match addr {
            IpAddr::V4(v4) => Self {
                addr: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(len))),
                len,
            },
            IpAddr::V6(v6) => Self {
                addr: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(len))),
                len,
            },
        };
        if prefix.addr != addr {
            return Err(PrefixError("host bits are set after the prefix length"));
        }
        Ok(prefix)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether any of `prefixes` contains `addr`.
pub fn any_contains(prefixes: &[Prefix], addr: IpAddr) -> bool {
    prefixes.iter().any(|p| p.contains(addr))
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
    fn parses_and_displays() {
        assert_eq!(p("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(p("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(p("::1").to_string(), "::1/128");
        assert_eq!(p("0.0.0.0/0").to_string(), "0.0.0.0/0");
    }

    #[test]
    fn bad_prefixes_are_refused() {
        assert!("2001:db8::1/32".parse::<Prefix>().is_err());
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        assert!("fd00::/129".parse::<Prefix>().is_err());
        assert!("nowhere/8".parse::<Prefix>().is_err());
        assert!("10.0.0.0/".parse::<Prefix>().is_err());
    }

    #[test]
    fn contains_matches_family_and_bits() {
        assert!(p("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!p("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(!p("2001:db8::/32").contains(ip("10.0.0.1")));
        assert!(p("::/0").contains(ip("::1")));
        assert!(p("10.0.0.0/8").contains(ip("10.9.9.9")));
        // A dual-stack socket reports IPv4 clients as IPv4-mapped IPv6.
        assert!(p("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(p("0.0.0.0/0").contains(ip("::ffff:1.2.3.4")));
        assert!(!p("0.0.0.0/0").contains(ip("::1")));
    }

    #[test]
    fn of_builds_the_source_key() {
        assert_eq!(
            Prefix::of(ip("2001:db8:1:2:3:4:5:6"), 64),
            p("2001:db8:1:2::/64")
        );
        assert_eq!(Prefix::of(ip("::ffff:192.0.2.9"), 24), p("192.0.2.0/24"));
        assert_eq!(Prefix::of(ip("192.0.2.9"), 64), p("192.0.2.9/32"));
    }
}
