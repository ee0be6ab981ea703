//! IP prefixes (`2001:db8::/32`, `10.0.0.0/8`) as sixgate's parts read them
//! from config files and use them: one parser with one set of errors, the
//! text form, containment of addresses and prefixes, overlap.
//!
//! What only one part needs stays in that part: the planner's allocation
//! arithmetic, the proxy's and DNS64's reading of IPv4-mapped peers, the node
//! agent's IPv6-only rules.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The address family of a prefix. IPv4 sorts before IPv6, as in [`IpAddr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The family of `addr`.
    #[must_use]
    pub const fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Address width in bits: the longest prefix length of the family.
    #[must_use]
    pub const fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// `IPv4` or `IPv6`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An IPv4 or IPv6 prefix: an address and a length, with no address bits
/// set after the length. The family is kept as written: `::ffff:0:0/96` is
/// an IPv6 prefix.
///
/// Prefixes sort by family (IPv4 first), then address, then length.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// Why a prefix was refused. Each message names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("`{0}` is not an IPv4 or IPv6 address")]
    Address(String),
    #[error("`{0}` is not a prefix length")]
    Length(String),
    #[error("prefix length /{len} is longer than the {bits} bits of the address")]
    TooLong { len: u8, bits: u8 },
    #[error("`{addr}` has host bits set past /{len}: did you mean {fixed}?")]
    HostBits {
        addr: IpAddr,
        len: u8,
        fixed: Prefix,
    },
}

impl Prefix {
    /// The prefix `addr/len`; `len` must fit the family and the bits of
    /// `addr` after `len` must be zero.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, PrefixError> {
        let bits = Family::of(addr).bits();
        if len > bits {
            return Err(PrefixError::TooLong { len, bits });
        }
        let fixed = Self::of(addr, len);
        if fixed.addr != addr {
            return Err(PrefixError::HostBits { addr, len, fixed });
        }
        Ok(fixed)
    }

    /// The prefix of length `len` that holds `addr`: the bits after `len`
    /// are cleared, and `len` is cut to the family's width.
    #[must_use]
    pub fn of(addr: IpAddr, len: u8) -> Self {
        let len = len.min(Family::of(addr).bits());
        Self {
            addr: mask(addr, len),
            len,
        }
    }

    /// The prefix that holds only `addr` (a /32 or a /128).
    #[must_use]
    pub const fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            len: Family::of(addr).bits(),
        }
    }

    /// The first address.
    #[must_use]
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The length in bits.
    #[must_use]
    pub const fn prefix_len(&self) -> u8 {
        self.len
    }

    #[must_use]
    pub const fn family(&self) -> Family {
        Family::of(self.addr)
    }

    #[must_use]
    pub const fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    #[must_use]
    pub const fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// Whether `addr` is inside. The families must match: an IPv4-mapped
    /// IPv6 address is an IPv6 address here (see [`IpAddr::to_canonical`]
    /// for callers that want it read as IPv4).
    #[must_use]
    pub fn contains(&self, addr: IpAddr) -> bool {
        Family::of(addr) == self.family() && mask(addr, self.len) == self.addr
    }

    /// Whether all of `other` lies inside `self`.
    #[must_use]
    pub fn contains_prefix(&self, other: &Prefix) -> bool {
        self.len <= other.len && self.contains(other.addr)
    }

    /// Whether the two prefixes share an address (one holds the other).
    #[must_use]
    pub fn overlaps(&self, other: &Prefix) -> bool {
        self.contains_prefix(other) || other.contains_prefix(self)
    }
}

/// `addr` with the bits after `len` cleared (`len` at most the width).
fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    /// `ADDRESS/LENGTH`, or a bare address for the host prefix (/32 or
    /// /128). Blanks around either part are ignored.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr.trim(), Some(len.trim())),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| PrefixError::Address(addr.to_owned()))?;
        let len = match len {
            Some(len) => len
                .parse::<u8>()
                .map_err(|_| PrefixError::Length(len.to_owned()))?,
            None => Family::of(addr).bits(),
        };
        Self::new(addr, len)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The text form: test failures and logged configs stay readable.
impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'de> serde::Deserialize<'de> for Prefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::value::{Error as DeError, StrDeserializer, U32Deserializer};
    use serde::de::IntoDeserializer;
    use serde::Deserialize;

    fn p(text: &str) -> Prefix {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_and_displays_both_families() {
        assert_eq!(p("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(p("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(p("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(p("::/0").to_string(), "::/0");
        assert_eq!(p(" fd00::/ 8 ").to_string(), "fd00::/8");
        assert_eq!(format!("{:?}", p("fd00::/8")), "fd00::/8");
    }

    #[test]
    fn a_bare_address_is_a_host_prefix() {
        assert_eq!(p("::1"), Prefix::host(ip("::1")));
        assert_eq!(p("::1").to_string(), "::1/128");
        assert_eq!(p("192.0.2.1").to_string(), "192.0.2.1/32");
    }

    #[test]
    fn the_mapped_range_stays_ipv6() {
        let m = p("::ffff:0:0/96");
        assert!(m.is_ipv6() && !m.is_ipv4());
        assert_eq!(m.family(), Family::V6);
        assert!(m.contains(ip("::ffff:10.0.0.1")));
        assert!(!m.contains(ip("10.0.0.1")));
        assert!(!p("10.0.0.0/8").contains(ip("::ffff:10.0.0.1")));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let err = |text: &str| text.parse::<Prefix>().unwrap_err().to_string();
        assert_eq!(err("ten/8"), "`ten` is not an IPv4 or IPv6 address");
        assert_eq!(err(""), "`` is not an IPv4 or IPv6 address");
        assert_eq!(err("10.0.0.0/"), "`` is not a prefix length");
        assert_eq!(err("fd00::/x"), "`x` is not a prefix length");
        assert_eq!(err("fd00::/-1"), "`-1` is not a prefix length");
        assert_eq!(
            err("10.0.0.0/33"),
            "prefix length /33 is longer than the 32 bits of the address"
        );
        assert_eq!(
            err("fd00::/129"),
            "prefix length /129 is longer than the 128 bits of the address"
        );
        assert_eq!(
            err("fd00:40::1/56"),
            "`fd00:40::1` has host bits set past /56: did you mean fd00:40::/56?"
        );
        assert_eq!(
            "10.0.0.1/8".parse::<Prefix>(),
            Err(PrefixError::HostBits {
                addr: ip("10.0.0.1"),
                len: 8,
                fixed: p("10.0.0.0/8"),
            })
        );
    }

    #[test]
    fn of_masks_and_clamps() {
        assert_eq!(
            Prefix::of(ip("2001:db8:1:2:3:4:5:6"), 64),
            p("2001:db8:1:2::/64")
        );
        assert_eq!(Prefix::of(ip("192.0.2.9"), 24), p("192.0.2.0/24"));
        assert_eq!(Prefix::of(ip("192.0.2.9"), 64), p("192.0.2.9/32"));
        assert_eq!(Prefix::of(ip("2001:db8::9"), 0), p("::/0"));
    }

    #[test]
    fn containment_of_addresses_and_prefixes() {
        assert!(p("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!p("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(!p("2001:db8::/32").contains(ip("10.0.0.1")));
        assert!(!p("0.0.0.0/0").contains(ip("::1")));
        assert!(p("0.0.0.0/0").contains(ip("203.0.113.9")));
        let a = p("2001:db8::/48");
        assert!(a.contains_prefix(&p("2001:db8:0:ff00::/56")));
        assert!(!a.contains_prefix(&p("2001:db8:1::/56")));
        assert!(!a.contains_prefix(&p("2001:db8::/32")));
        assert!(a.overlaps(&p("2001:db8::/32")));
        assert!(!a.overlaps(&p("2001:db8:1::/48")));
        assert!(!p("::/0").overlaps(&p("0.0.0.0/0")));
    }

    #[test]
    fn families_sort_and_name() {
        assert!(p("255.255.255.255/32") < p("::/0"));
        assert!(p("10.0.0.0/8") < p("10.0.0.0/9"));
        assert_eq!(Family::V4.to_string(), "IPv4");
        assert_eq!(Family::V6.bits(), 128);
    }

    #[test]
    fn deserializes_from_a_string_only() {
        let de: StrDeserializer<'_, DeError> = "fc00::/7".into_deserializer();
        assert_eq!(Prefix::deserialize(de).unwrap(), p("fc00::/7"));
        let de: StrDeserializer<'_, DeError> = "10.0.0.1/8".into_deserializer();
        let e = Prefix::deserialize(de).unwrap_err().to_string();
        assert!(e.contains("did you mean 10.0.0.0/8"), "{e}");
        let de: U32Deserializer<DeError> = 8u32.into_deserializer();
        assert!(Prefix::deserialize(de).is_err());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn any_addr() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            any::<u128>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        ]
    }

    fn any_prefix() -> impl Strategy<Value = Prefix> {
        (any_addr(), 0u8..=128).prop_map(|(a, l)| Prefix::of(a, l))
    }

    /// Whether `addr` is in `p`, by comparing the leading bits one by one.
    fn bitwise_inside(p: &Prefix, addr: IpAddr) -> bool {
        fn bits(a: IpAddr) -> Vec<bool> {
            match a {
                IpAddr::V4(a) => (0..32).map(|i| u32::from(a) >> (31 - i) & 1 == 1).collect(),
                IpAddr::V6(a) => (0..128)
                    .map(|i| u128::from(a) >> (127 - i) & 1 == 1)
                    .collect(),
            }
        }
        let (net, a) = (bits(p.addr()), bits(addr));
        net.len() == a.len()
            && net[..usize::from(p.prefix_len())] == a[..usize::from(p.prefix_len())]
    }

    proptest! {
        #[test]
        fn display_parses_back(prefix in any_prefix()) {
            prop_assert_eq!(prefix.to_string().parse::<Prefix>(), Ok(prefix));
            prop_assert_eq!(Prefix::new(prefix.addr(), prefix.prefix_len()), Ok(prefix));
        }

        #[test]
        fn host_bits_are_refused_with_the_masked_prefix(addr in any_addr(), len in 0u8..=128) {
            let len = len.min(Family::of(addr).bits());
            let masked = Prefix::of(addr, len);
            let text = format!("{addr}/{len}");
            if masked.addr() == addr {
                prop_assert_eq!(text.parse::<Prefix>(), Ok(masked));
            } else {
                prop_assert_eq!(
                    text.parse::<Prefix>(),
                    Err(PrefixError::HostBits { addr, len, fixed: masked })
                );
            }
        }

        #[test]
        fn contains_agrees_with_masking(prefix in any_prefix(), addr in any_addr()) {
            let by_mask = Family::of(addr) == prefix.family()
                && Prefix::of(addr, prefix.prefix_len()) == prefix;
            prop_assert_eq!(prefix.contains(addr), by_mask);
            prop_assert_eq!(prefix.contains(addr), bitwise_inside(&prefix, addr));
            prop_assert!(Prefix::of(addr, prefix.prefix_len()).contains(addr));
            prop_assert!(Prefix::host(addr).contains(addr));
        }

        #[test]
        fn overlaps_is_symmetric_and_means_a_shared_address(a in any_prefix(), b in any_prefix()) {
            prop_assert_eq!(a.overlaps(&b), b.overlaps(&a));
            // Two prefixes share an address exactly when the longer one's
            // first address is in the shorter one.
            let (short, long) = if a.prefix_len() <= b.prefix_len() { (a, b) } else { (b, a) };
            prop_assert_eq!(a.overlaps(&b), short.contains(long.addr()));
            prop_assert!(a.overlaps(&a));
        }

        #[test]
        fn parsing_any_text_never_panics(text in "\\PC{0,50}") {
            let _ = text.parse::<Prefix>();
        }

        #[test]
        fn lengths_past_the_family_are_refused(addr in any_addr(), extra in 1u8..=100) {
            let bits = Family::of(addr).bits();
            let len = bits.saturating_add(extra);
            prop_assume!(len > bits);
            prop_assert_eq!(
                format!("{addr}/{len}").parse::<Prefix>(),
                Err(PrefixError::TooLong { len, bits })
            );
        }
    }
}
