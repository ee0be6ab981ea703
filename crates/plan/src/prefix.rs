//! IP prefixes (`2001:db8::/56`, `192.0.2.0/28`): the shared
//! [`sixgate_net::Prefix`], plus what only the planner needs: its addresses as
//! plain numbers, so that "the next free aligned block" and sub-prefix
//! splitting are arithmetic, and its stricter reading of config text (a length
//! is required, and the family is checked).
//!
//! The number of an IPv4 address is kept in the low 32 bits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use sixgate_net::{Family, Prefix};

/// Why a prefix from the plan or the lock was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("`{0}` is not a prefix: expected ADDRESS/LENGTH, for example 2001:db8::/48")]
    NoLength(String),
    #[error(transparent)]
    Syntax(#[from] sixgate_net::PrefixError),
    #[error("`{text}` is an {got} prefix, {want} is needed here")]
    WrongFamily {
        text: String,
        got: Family,
        want: Family,
    },
}

/// Parses `ADDRESS/LENGTH`: unlike the other parts' config values, the plan
/// never reads a bare address as a host prefix.
pub fn parse(text: &str) -> Result<Prefix, PrefixError> {
    let text = text.trim();
    if !text.contains('/') {
        return Err(PrefixError::NoLength(text.to_owned()));
    }
    Ok(text.parse()?)
}

/// Parses `text` (see [`parse`]) and requires `family`.
pub fn parse_family(text: &str, family: Family) -> Result<Prefix, PrefixError> {
    let prefix = parse(text)?;
    if prefix.family() == family {
        Ok(prefix)
    } else {
        Err(PrefixError::WrongFamily {
            text: text.to_owned(),
            got: prefix.family(),
            want: family,
        })
    }
}

/// The address of `family` whose number is `addr`.
#[must_use]
pub fn address(family: Family, addr: u128) -> IpAddr {
    match family {
        // Only the low 32 bits are an IPv4 address (see the module doc).
        Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(addr).unwrap_or(u32::MAX))),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(addr)),
    }
}

/// An address of `family` as text.
#[must_use]
pub fn address_string(family: Family, addr: u128) -> String {
    address(family, addr).to_string()
}

/// The number of an address.
#[must_use]
pub fn number(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The prefix of `len` bits (cut to the family's width) that contains the
/// address numbered `addr`; host bits are cleared.
#[must_use]
pub fn containing(family: Family, addr: u128, len: u8) -> Prefix {
    Prefix::of(address(family, addr), len)
}

/// The planner's arithmetic on a prefix: its addresses as numbers.
pub trait Numbers {
    /// The first address, as a number.
    fn start(&self) -> u128;
    /// The last address, as a number.
    fn last(&self) -> u128;
    /// Number of addresses, saturated at `u128::MAX` for `::/0`.
    fn size(&self) -> u128;
    /// The address at `offset` from the start, if it is inside the prefix.
    fn nth(&self, offset: u128) -> Option<u128>;
    /// The `index`-th sub-prefix of length `len`, if there is one.
    fn subnet(&self, len: u8, index: u128) -> Option<Prefix>;
}

impl Numbers for Prefix {
    fn start(&self) -> u128 {
        number(self.addr())
    }

    fn last(&self) -> u128 {
        let host = u32::from(self.family().bits() - self.prefix_len());
        let host_mask = 1u128.checked_shl(host).map_or(u128::MAX, |n| n - 1);
        self.start() | host_mask
    }

    fn size(&self) -> u128 {
        let host = u32::from(self.family().bits() - self.prefix_len());
        1u128.checked_shl(host).unwrap_or(u128::MAX)
    }

    fn nth(&self, offset: u128) -> Option<u128> {
        (offset < self.size() || self.prefix_len() == 0).then(|| self.start() + offset)
    }

    fn subnet(&self, len: u8, index: u128) -> Option<Prefix> {
        let bits = self.family().bits();
        if len < self.prefix_len() || len > bits {
            return None;
        }
        let count_bits = u32::from(len - self.prefix_len());
        if count_bits < 128 && index >> count_bits != 0 {
            return None;
        }
        let offset = index.checked_shl(u32::from(bits - len))?;
        Some(containing(self.family(), self.start() | offset, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Prefix {
        parse(text).unwrap()
    }

    #[test]
    fn parses_and_prints_both_families() {
        assert_eq!(p("2001:db8::/48").to_string(), "2001:db8::/48");
        assert_eq!(p("192.0.2.0/28").to_string(), "192.0.2.0/28");
        assert_eq!(p(" 192.0.2.0/28 ").to_string(), "192.0.2.0/28");
        assert_eq!(p("::/0").size(), u128::MAX);
        assert_eq!(p("10.0.0.0/8").size(), 1 << 24);
    }

    #[test]
    fn host_bits_are_refused_with_the_fix() {
        let err = parse("2001:db8::1/64").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`2001:db8::1` has host bits set past /64: did you mean 2001:db8::/64?"
        );
        assert!(parse("192.0.2.1/24").is_err());
    }

    #[test]
    fn malformed_text_is_refused() {
        assert_eq!(
            parse("2001:db8::").unwrap_err().to_string(),
            "`2001:db8::` is not a prefix: expected ADDRESS/LENGTH, for example 2001:db8::/48"
        );
        assert!(matches!(
            parse("2001:db8::/129"),
            Err(PrefixError::Syntax(
                sixgate_net::PrefixError::TooLong { .. }
            ))
        ));
        assert!(matches!(
            parse("2001:zz8::/48"),
            Err(PrefixError::Syntax(sixgate_net::PrefixError::Address(_)))
        ));
        assert!(matches!(
            parse("10.0.0.0/x"),
            Err(PrefixError::Syntax(sixgate_net::PrefixError::Length(_)))
        ));
    }

    #[test]
    fn the_family_is_checked_where_asked() {
        assert_eq!(
            parse_family("2001:db8::/64", Family::V4)
                .unwrap_err()
                .to_string(),
            "`2001:db8::/64` is an IPv6 prefix, IPv4 is needed here"
        );
        assert_eq!(
            parse_family("10.0.0.0/8", Family::V4).unwrap(),
            p("10.0.0.0/8")
        );
    }

    #[test]
    fn numbers_of_a_prefix() {
        let a = p("10.0.0.0/8");
        assert_eq!(a.start(), u128::from(0x0a00_0000u32));
        assert_eq!(a.last(), u128::from(0x0aff_ffffu32));
        assert_eq!(p("0.0.0.0/0").last(), u128::from(u32::MAX));
        assert_eq!(p("::/0").last(), u128::MAX);
        assert_eq!(p("::1/128").last(), 1);
        assert_eq!(a.nth(5), Some(a.start() + 5));
        assert_eq!(a.nth(1 << 24), None);
        assert_eq!(p("::/0").nth(u128::MAX), Some(u128::MAX));
        assert_eq!(containing(Family::V4, 0x0a01_0203, 16), p("10.1.0.0/16"));
        assert_eq!(containing(Family::V6, 7, 200), p("::7/128"));
        assert_eq!(address_string(Family::V4, 0xc000_0201), "192.0.2.1");
    }

    #[test]
    fn subnets_are_indexed_from_the_start() {
        let a = p("2001:db8::/48");
        assert_eq!(a.subnet(56, 0).unwrap(), p("2001:db8::/56"));
        assert_eq!(a.subnet(56, 255).unwrap(), p("2001:db8:0:ff00::/56"));
        assert!(a.subnet(56, 256).is_none());
        assert!(a.subnet(40, 0).is_none());
        assert!(a.subnet(129, 0).is_none());
        assert_eq!(
            p("198.51.100.0/24").subnet(28, 1).unwrap(),
            p("198.51.100.16/28")
        );
        assert_eq!(
            p("::/0").subnet(128, u128::MAX).unwrap(),
            p("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128")
        );
    }
}
