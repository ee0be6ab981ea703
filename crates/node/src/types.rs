//! Values of the `[node]` section as domain types: an IP prefix (the shared
//! [`sixgate_net::Prefix`]), an interface name, a period. Each parses from its
//! config string and refuses bad input with a reason that names what is wrong.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use sixgate_net::{Prefix, PrefixError};

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
            "`fd00:40::1` has host bits set past /56: did you mean fd00:40::/56?"
        );
    }

    #[test]
    fn prefix_refuses_long_lengths_and_garbage() {
        assert_eq!(
            "10.0.0.0/33".parse::<Prefix>().unwrap_err(),
            PrefixError::TooLong { len: 33, bits: 32 }
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
        fn an_accepted_interface_name_is_safe_inside_nft_quotes(name in "\\PC{0,20}") {
            if let Ok(n) = name.parse::<IfName>() {
                prop_assert!(n.as_str().len() <= IFNAME_MAX);
                prop_assert!(!n.as_str().contains(['"', '\\', ' ', '\n', ';', '/', ':', '*']));
            }
        }
    }
}
