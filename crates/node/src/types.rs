//! Values of the `[node]` section as domain types: an IP prefix, an interface
//! name, a period. Each parses from its config string and refuses bad input
//! with a reason that names what is wrong.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// An IPv4 or IPv6 prefix with no bits set after its length
/// (`fd00:40::/56`, `192.0.2.0/24`). A bare address is a host prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// Why a prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("`{0}` is not an IP address")]
    Address(String),
    #[error("`{0}` is not a prefix length")]
    Length(String),
    #[error("prefix length {len} is longer than {max}")]
    TooLong { len: u8, max: u8 },
    #[error("bits are set after the prefix length: did you mean {0}?")]
    HostBits(Prefix),
}

impl Prefix {
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, PrefixError> {
        let max = max_len(addr);
        if len > max {
            return Err(PrefixError::TooLong { len, max });
        }
        let prefix = Self { addr, len };
        let masked = Self {
            addr: mask(addr, len),
            len,
        };
        if masked != prefix {
            return Err(PrefixError::HostBits(masked));
        }
        Ok(prefix)
    }

    /// The prefix that holds exactly `addr`.
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            len: max_len(addr),
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// Whether the prefix holds `addr`.
    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv6() == self.addr.is_ipv6() && mask(addr, self.len) == self.addr
    }

    /// Whether this prefix and `other` share an address.
    pub fn overlaps(&self, other: &Prefix) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }
}

fn max_len(addr: IpAddr) -> u8 {
    if addr.is_ipv6() {
        128
    } else {
        32
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| PrefixError::Address(addr.to_owned()))?;
        let len = match len {
            Some(len) => len
                .parse::<u8>()
                .map_err(|_| PrefixError::Length(len.to_owned()))?,
            None => max_len(addr),
        };
        Self::new(addr, len)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A Linux network interface name, restricted to what is safe to write into
/// an nftables string and an `ip` argument.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(String);

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// Why an interface name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IfNameError {
    #[error("an interface name cannot be empty")]
    Empty,
    #[error("`{0}` is longer than {IFNAME_MAX} bytes")]
    TooLong(String),
    #[error("`{0}` is not an interface name")]
    Dots(String),
    #[error("`{name}` holds {c:?}: an interface name takes letters, digits and . _ - @ + only")]
    Char { name: String, c: char },
}

impl FromStr for IfName {
    type Err = IfNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(IfNameError::Empty);
        }
        if s.len() > IFNAME_MAX {
            return Err(IfNameError::TooLong(s.to_owned()));
        }
        if s == "." || s == ".." {
            return Err(IfNameError::Dots(s.to_owned()));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+')))
        {
            return Err(IfNameError::Char {
                name: s.to_owned(),
                c,
            });
        }
        Ok(Self(s.to_owned()))
    }
}

impl IfName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for IfName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A period written `500ms`, `10s`, `2m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period(pub Duration);

impl FromStr for Period {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{s}` has no unit: write 500ms, 10s, 2m or 1h"))?;
        let (number, unit) = s.split_at(split);
        let n: u64 = number
            .parse()
            .map_err(|_| format!("`{s}` does not start with a whole number"))?;
        let duration = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(format!("`{unit}` is not a unit: write ms, s, m or h")),
        };
        Ok(Self(duration))
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parses_and_prints() {
        let p: Prefix = "fd00:40::/56".parse().unwrap();
        assert_eq!(p.to_string(), "fd00:40::/56");
        let h: Prefix = "192.0.2.1".parse().unwrap();
        assert_eq!(h.to_string(), "192.0.2.1/32");
        let z: Prefix = "::/0".parse().unwrap();
        assert!(z.contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn prefix_with_host_bits_suggests_the_network() {
        let err = "fd00:40::1/56".parse::<Prefix>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "bits are set after the prefix length: did you mean fd00:40::/56?"
        );
    }

    #[test]
    fn prefix_refuses_long_lengths_and_garbage() {
        assert_eq!(
            "10.0.0.0/33".parse::<Prefix>().unwrap_err(),
            PrefixError::TooLong { len: 33, max: 32 }
        );
        assert!(matches!(
            "fd00::/x".parse::<Prefix>(),
            Err(PrefixError::Length(_))
        ));
        assert!(matches!(
            "fd00:::/8".parse::<Prefix>(),
            Err(PrefixError::Address(_))
        ));
    }

    #[test]
    fn prefix_contains_respects_family() {
        let p: Prefix = "fd00::/8".parse().unwrap();
        assert!(p.contains("fd12::1".parse().unwrap()));
        assert!(!p.contains("fe80::1".parse().unwrap()));
        assert!(!p.contains("10.0.0.1".parse().unwrap()));
        let q: Prefix = "fd12::/16".parse().unwrap();
        assert!(p.overlaps(&q) && q.overlaps(&p));
    }

    #[test]
    fn interface_names_follow_linux_and_stay_quotable() {
        assert!("eth0".parse::<IfName>().is_ok());
        assert!("vlan.10@eth0".parse::<IfName>().is_ok());
        assert_eq!("".parse::<IfName>(), Err(IfNameError::Empty));
        assert!(matches!(
            "a-very-long-interface".parse::<IfName>(),
            Err(IfNameError::TooLong(_))
        ));
        assert!(matches!("..".parse::<IfName>(), Err(IfNameError::Dots(_))));
        assert!(matches!(
            "e\";flush".parse::<IfName>(),
            Err(IfNameError::Char { c: '"', .. })
        ));
        assert!(matches!(
            "eth 0".parse::<IfName>(),
            Err(IfNameError::Char { c: ' ', .. })
        ));
    }

    #[test]
    fn periods_take_a_unit() {
        assert_eq!(
            "500ms".parse::<Period>().unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!("2m".parse::<Period>().unwrap().0, Duration::from_secs(120));
        assert!("10".parse::<Period>().is_err());
        assert!("10d".parse::<Period>().is_err());
        assert!("s".parse::<Period>().is_err());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_masked_prefix_prints_and_parses_back(bits: u128, len in 0u8..=128) {
            let addr = IpAddr::V6(Ipv6Addr::from(bits));
            let masked = mask(addr, len);
            let p = Prefix::new(masked, len).unwrap();
            prop_assert_eq!(p.to_string().parse::<Prefix>().unwrap(), p);
            prop_assert!(p.contains(addr));
            // With host bits set, the error names the masked prefix.
            if masked != addr {
                prop_assert_eq!(Prefix::new(addr, len), Err(PrefixError::HostBits(p)));
            }
        }

        #[test]
        fn an_accepted_interface_name_is_safe_inside_nft_quotes(name in "\\PC{0,20}") {
            if let Ok(n) = name.parse::<IfName>() {
                prop_assert!(n.as_str().len() <= IFNAME_MAX);
                prop_assert!(!n.as_str().contains(['"', '\\', ' ', '\n', ';', '/', ':', '*']));
            }
        }

        #[test]
        fn prefix_parsing_never_panics(s in "\\PC{0,50}") {
            let _ = s.parse::<Prefix>();
        }
    }
}
