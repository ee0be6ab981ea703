//! IP networks as config values: `10.0.0.0/8`, `::ffff:0:0/96`, `fc00::/7`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 network (address and prefix length, host bits zero).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpNet {
    V4(Ipv4Addr, u8),
    V6(Ipv6Addr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    #[error("expected ADDRESS/LENGTH, for example 10.0.0.0/8 or fc00::/7")]
    Syntax,
    #[error("prefix length /{0} is too long for the address family")]
    BadLength(u8),
    #[error("bits after /{0} must be zero")]
    HostBitsSet(u8),
}

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl IpNet {
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, IpNetError> {
        match addr {
            IpAddr::V4(a) => {
                if len > 32 {
                    return Err(IpNetError::BadLength(len));
                }
                if u32::from(a) & !mask4(len) != 0 {
                    return Err(IpNetError::HostBitsSet(len));
                }
                Ok(Self::V4(a, len))
            }
            IpAddr::V6(a) => {
                if len > 128 {
                    return Err(IpNetError::BadLength(len));
                }
                if u128::from(a) & !mask6(len) != 0 {
                    return Err(IpNetError::HostBitsSet(len));
                }
                Ok(Self::V6(a, len))
            }
        }
    }

    /// Whether `addr` is inside. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
    /// what a dual-stack socket reports for IPv4 peers) is matched as IPv4
    /// against IPv4 networks.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (*self, addr) {
            (Self::V4(net, len), IpAddr::V4(a)) => Self::contains_v4(net, len, a),
            (Self::V4(net, len), IpAddr::V6(a)) => a
                .to_ipv4_mapped()
                .is_some_and(|a| Self::contains_v4(net, len, a)),
            (Self::V6(net, len), IpAddr::V6(a)) => Self::contains_v6(net, len, a),
            (Self::V6(..), IpAddr::V4(_)) => false,
        }
    }

    fn contains_v4(net: Ipv4Addr, len: u8, a: Ipv4Addr) -> bool {
        u32::from(a) & mask4(len) == u32::from(net)
    }

    fn contains_v6(net: Ipv6Addr, len: u8, a: Ipv6Addr) -> bool {
        u128::from(a) & mask6(len) == u128::from(net)
    }

    pub fn contains_v4_addr(&self, a: Ipv4Addr) -> bool {
        self.contains(IpAddr::V4(a))
    }

    pub fn contains_v6_addr(&self, a: Ipv6Addr) -> bool {
        match *self {
            Self::V6(net, len) => Self::contains_v6(net, len, a),
            Self::V4(..) => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| IpNetError::Syntax)?;
        let len = match len {
            Some(l) => l.trim().parse().map_err(|_| IpNetError::Syntax)?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Self::new(addr, len)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(a, l) => write!(f, "{a}/{l}"),
            Self::V6(a, l) => write!(f, "{a}/{l}"),
        }
    }
}

impl fmt::Debug for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'de> serde::Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_both_families() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let u: IpNet = "fc00::/7".parse().unwrap();
        assert!(u.contains("fd12::1".parse().unwrap()));
        assert!(!u.contains("2001:db8::1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        let host: IpNet = "::1".parse().unwrap();
        assert_eq!(host, IpNet::V6(Ipv6Addr::LOCALHOST, 128));
    }

    #[test]
    fn refuses_bad_networks() {
        assert_eq!(
            "10.0.0.1/8".parse::<IpNet>(),
            Err(IpNetError::HostBitsSet(8))
        );
        assert_eq!(
            "10.0.0.0/33".parse::<IpNet>(),
            Err(IpNetError::BadLength(33))
        );
        assert_eq!("ten/8".parse::<IpNet>(), Err(IpNetError::Syntax));
    }
}
