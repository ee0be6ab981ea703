//! IP prefixes (`2001:db8::/56`, `192.0.2.0/28`) as plain numbers, so that
//! containment, overlap and "the next free aligned block" are arithmetic.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The address family of a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// Address width in bits.
    #[must_use]
    pub const fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// A network prefix: the address has no bits set past `len`.
///
/// The address of an IPv4 prefix is kept in the low 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    family: Family,
    addr: u128,
    len: u8,
}

/// Why a prefix could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("`{0}` is not a prefix: expected ADDRESS/LENGTH, for example 2001:db8::/48")]
    NoLength(String),
    #[error("`{0}` is not an IPv4 or IPv6 address")]
    BadAddress(String),
    #[error("`{0}` is not a prefix length")]
    BadLength(String),
    #[error("prefix length /{len} is longer than the {bits} bits of the address")]
    TooLong { len: u8, bits: u8 },
    #[error("`{text}` has host bits set past /{len}: did you mean {fixed}?")]
    HostBits {
        text: String,
        len: u8,
        fixed: Prefix,
    },
    #[error("`{text}` is an {got} prefix, {want} is needed here")]
    WrongFamily {
        text: String,
        got: &'static str,
        want: &'static str,
    },
}

impl Prefix {
    /// A prefix from an address and length; host bits must be clear.
    pub fn new(family: Family, addr: u128, len: u8) -> Result<Self, PrefixError> {
        let bits = family.bits();
        if len > bits {
            return Err(PrefixError::TooLong { len, bits });
        }
        let fixed = Self {
            family,
            addr: addr & mask(family, len),
            len,
        };
        if fixed.addr != addr {
            return Err(PrefixError::HostBits {
                text: Self {
                    family,
                    addr,
                    len: bits,
                }
                .addr_string(),
                len,
                fixed,
            });
        }
        Ok(fixed)
    }

    /// The prefix of `len` bits that contains `addr` (host bits cleared).
    #[must_use]
    pub fn containing(family: Family, addr: u128, len: u8) -> Self {
        let len = len.min(family.bits());
        Self {
            family,
            addr: addr & mask(family, len),
            len,
        }
    }

    /// Parses `text` and requires `family`.
    pub fn parse_family(text: &str, family: Family) -> Result<Self, PrefixError> {
        let prefix: Prefix = text.parse()?;
        if prefix.family == family {
            Ok(prefix)
        } else {
            Err(PrefixError::WrongFamily {
                text: text.to_owned(),
                got: family_name(prefix.family),
                want: family_name(family),
            })
        }
    }

    #[must_use]
    pub const fn family(&self) -> Family {
        self.family
    }

    /// The prefix length in bits (not a count of items: there is no
    /// empty prefix, so no `is_empty`).
    #[must_use]
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(&self) -> u8 {
        self.len
    }

    /// The first address, as a number.
    #[must_use]
    pub const fn start(&self) -> u128 {
        self.addr
    }

    /// The last address, as a number.
    #[must_use]
    pub fn last(&self) -> u128 {
        self.addr | !mask(self.family, self.len) & all_ones(self.family)
    }

    /// Number of addresses, saturated at `u128::MAX` for `::/0`.
    #[must_use]
    pub fn size(&self) -> u128 {
        let host = u32::from(self.family.bits() - self.len);
        1u128.checked_shl(host).unwrap_or(u128::MAX)
    }

    /// Whether `other` lies wholly inside `self`.
    #[must_use]
    pub fn contains(&self, other: &Prefix) -> bool {
        self.family == other.family
            && self.len <= other.len
            && other.addr & mask(self.family, self.len) == self.addr
    }

    /// Whether the two prefixes share any address.
    #[must_use]
    pub fn overlaps(&self, other: &Prefix) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// The address at `offset` from the start, if it is inside the prefix.
    #[must_use]
    pub fn nth(&self, offset: u128) -> Option<u128> {
        (offset < self.size() || self.len == 0).then(|| self.addr + offset)
    }

    /// The `index`-th sub-prefix of length `len`, if there is one.
    #[must_use]
    pub fn subnet(&self, len: u8, index: u128) -> Option<Prefix> {
        if len < self.len || len > self.family.bits() {
            return None;
        }
        let count_bits = u32::from(len - self.len);
        if count_bits < 128 && index >> count_bits != 0 {
            return None;
        }
        let shift = u32::from(self.family.bits() - len);
        let offset = index.checked_shl(shift)?;
        Some(Self {
            family: self.family,
            addr: self.addr | offset,
            len,
        })
    }

    /// The address part as text (`2001:db8::` or `192.0.2.0`).
    #[must_use]
    pub fn addr_string(&self) -> String {
        address_string(self.family, self.addr)
    }
}

/// An address of `family` as text.
#[must_use]
pub fn address_string(family: Family, addr: u128) -> String {
    match family {
        // The value of an IPv4 prefix never exceeds 32 bits (see `Prefix`).
        Family::V4 => Ipv4Addr::from(u32::try_from(addr).unwrap_or(u32::MAX)).to_string(),
        Family::V6 => Ipv6Addr::from(addr).to_string(),
    }
}

const fn family_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

const fn all_ones(family: Family) -> u128 {
    match family {
        Family::V4 => 0xffff_ffff,
        Family::V6 => u128::MAX,
    }
}

fn mask(family: Family, len: u8) -> u128 {
    let host = u32::from(family.bits().saturating_sub(len));
    let ones = all_ones(family);
    match ones.checked_shl(host) {
        Some(m) => m & ones,
        None => 0,
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr_string(), self.len)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (addr, len) = text
            .split_once('/')
            .ok_or_else(|| PrefixError::NoLength(text.to_owned()))?;
        let len: u8 = len
            .parse()
            .map_err(|_| PrefixError::BadLength(len.to_owned()))?;
        if let Ok(v6) = addr.parse::<Ipv6Addr>() {
            Self::new(Family::V6, u128::from(v6), len)
        } else if let Ok(v4) = addr.parse::<Ipv4Addr>() {
            Self::new(Family::V4, u128::from(u32::from(v4)), len)
        } else {
            Err(PrefixError::BadAddress(addr.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Prefix {
        text.parse().unwrap()
    }

    #[test]
    fn parses_and_prints_both_families() {
        assert_eq!(p("2001:db8::/48").to_string(), "2001:db8::/48");
        assert_eq!(p("192.0.2.0/28").to_string(), "192.0.2.0/28");
        assert_eq!(p("::/0").size(), u128::MAX);
    }

    #[test]
    fn host_bits_are_refused_with_the_fix() {
        let err = "2001:db8::1/64".parse::<Prefix>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`2001:db8::1` has host bits set past /64: did you mean 2001:db8::/64?"
        );
        assert!("192.0.2.1/24".parse::<Prefix>().is_err());
    }

    #[test]
    fn malformed_text_is_refused() {
        assert!(matches!(
            "2001:db8::".parse::<Prefix>(),
            Err(PrefixError::NoLength(_))
        ));
        assert!(matches!(
            "2001:db8::/129".parse::<Prefix>(),
            Err(PrefixError::TooLong { .. })
        ));
        assert!(matches!(
            "2001:zz8::/48".parse::<Prefix>(),
            Err(PrefixError::BadAddress(_))
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<Prefix>(),
            Err(PrefixError::BadLength(_))
        ));
    }

    #[test]
    fn containment_and_overlap() {
        let a = p("2001:db8::/48");
        assert!(a.contains(&p("2001:db8:0:ff00::/56")));
        assert!(!a.contains(&p("2001:db8:1::/56")));
        assert!(a.overlaps(&p("2001:db8::/32")));
        assert!(!a.overlaps(&p("10.0.0.0/8")));
        assert_eq!(p("10.0.0.0/8").last(), u128::from(0x0aff_ffffu32));
    }

    #[test]
    fn subnets_are_indexed_from_the_start() {
        let a = p("2001:db8::/48");
        assert_eq!(a.subnet(56, 0).unwrap(), p("2001:db8::/56"));
        assert_eq!(a.subnet(56, 255).unwrap(), p("2001:db8:0:ff00::/56"));
        assert!(a.subnet(56, 256).is_none());
        assert!(a.subnet(40, 0).is_none());
        assert_eq!(
            p("198.51.100.0/24").subnet(28, 1).unwrap(),
            p("198.51.100.16/28")
        );
    }
}
