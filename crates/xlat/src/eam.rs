//! RFC 7757: Explicit Address Mappings (EAM) for SIIT, plus the plain IPv4 and
//! IPv6 prefix types the SIIT configuration is made of.
//!
//! RFC 7757 §3.2: "An EAM consists of an IPv4 prefix and an IPv6 prefix. [...]
//! the suffix length of the IPv4 prefix MUST be equal to the suffix length of
//! the IPv6 prefix". An address matched by the IPv4 prefix is translated by
//! keeping its suffix bits and replacing the prefix bits by the IPv6 prefix
//! (and the reverse). §3.3: when several entries match, the longest prefix
//! wins. §3.1: the EAM table is consulted before the RFC 6052 algorithm.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 prefix such as `192.0.2.0/24`, host bits zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    addr: u32,
    len: u8,
}

/// An IPv6 prefix such as `2001:db8::/64`, host bits zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Prefix {
    addr: u128,
    len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("prefix length /{len} is longer than /{max}")]
    TooLong { len: u8, max: u8 },
    #[error("bits after /{0} must be zero")]
    HostBitsSet(u8),
    #[error("expected ADDRESS/LENGTH")]
    Syntax,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EamError {
    #[error(
        "suffix lengths differ: {v4} leaves {v4_suffix} bits, {v6} leaves {v6_suffix} (RFC 7757 §3.2)"
    )]
    SuffixMismatch {
        v4: Ipv4Prefix,
        v6: Ipv6Prefix,
        v4_suffix: u8,
        v6_suffix: u8,
    },
}

fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

// `len` is the prefix length, not the size of a container.
#[allow(clippy::len_without_is_empty)]
impl Ipv4Prefix {
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, PrefixError> {
        if len > 32 {
            return Err(PrefixError::TooLong { len, max: 32 });
        }
        let addr = u32::from(addr);
        if addr & !mask32(len) != 0 {
            return Err(PrefixError::HostBitsSet(len));
        }
        Ok(Self { addr, len })
    }

    /// A /32 prefix holding exactly `addr`.
    pub fn host(addr: Ipv4Addr) -> Self {
        Self {
            addr: u32::from(addr),
            len: 32,
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr)
    }

    pub fn len(&self) -> u8 {
        self.len
    }

    /// Number of addresses in the prefix (`2^(32-len)`).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.len))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask32(self.len) == self.addr
    }

    /// The `n`-th address of the prefix, wrapping modulo its size.
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.addr | (n & !mask32(self.len)))
    }
}

#[allow(clippy::len_without_is_empty)]
impl Ipv6Prefix {
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, PrefixError> {
        if len > 128 {
            return Err(PrefixError::TooLong { len, max: 128 });
        }
        let addr = u128::from(addr);
        if addr & !mask128(len) != 0 {
            return Err(PrefixError::HostBitsSet(len));
        }
        Ok(Self { addr, len })
    }

    /// A /128 prefix holding exactly `addr`.
    pub fn host(addr: Ipv6Addr) -> Self {
        Self {
            addr: u128::from(addr),
            len: 128,
        }
    }

    pub fn addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.addr)
    }

    pub fn len(&self) -> u8 {
        self.len
    }

    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & mask128(self.len) == self.addr
    }

    /// The `n`-th address of the prefix, wrapping modulo its size.
    pub fn nth(&self, n: u32) -> Ipv6Addr {
        Ipv6Addr::from(self.addr | (u128::from(n) & !mask128(self.len)))
    }
}

/// One RFC 7757 mapping: an IPv4 prefix and an IPv6 prefix with the same
/// suffix length.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EamEntry {
    v4: Ipv4Prefix,
    v6: Ipv6Prefix,
}

impl EamEntry {
    /// RFC 7757 §3.2: refuses prefixes whose suffix lengths differ.
    pub fn new(v4: Ipv4Prefix, v6: Ipv6Prefix) -> Result<Self, EamError> {
        let v4_suffix = 32 - v4.len;
        let v6_suffix = 128 - v6.len;
        if v4_suffix != v6_suffix {
            return Err(EamError::SuffixMismatch {
                v4,
                v6,
                v4_suffix,
                v6_suffix,
            });
        }
        Ok(Self { v4, v6 })
    }

    pub fn v4(&self) -> Ipv4Prefix {
        self.v4
    }

    pub fn v6(&self) -> Ipv6Prefix {
        self.v6
    }

    fn suffix_bits(&self) -> u8 {
        32 - self.v4.len
    }

    fn to_v6(self, addr: Ipv4Addr) -> Ipv6Addr {
        let suffix = u32::from(addr) & !mask32(self.v4.len);
        Ipv6Addr::from(self.v6.addr | u128::from(suffix))
    }

    fn to_v4(self, addr: Ipv6Addr) -> Ipv4Addr {
        let suffix = u128::from(addr) & !mask128(self.v6.len);
        // The suffix has at most 32 bits: the lengths are equal by construction.
        let suffix = u32::try_from(suffix).unwrap_or(0);
        Ipv4Addr::from(self.v4.addr | suffix)
    }
}

/// The EAM table: longest-prefix match in both directions (RFC 7757 §3.3).
///
/// Entries are kept sorted by suffix length (shortest suffix, i.e. longest
/// prefix, first), so the first match is the longest. Lookups are linear: EAM
/// tables are small (a handful of entries in SIIT-DC).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EamTable {
    entries: Vec<EamEntry>,
}

impl EamTable {
    pub fn new(mut entries: Vec<EamEntry>) -> Self {
        entries.sort_by_key(EamEntry::suffix_bits);
        Self { entries }
    }

    pub fn entries(&self) -> &[EamEntry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// RFC 7757 §3.3, IPv4 → IPv6.
    pub fn v4_to_v6(&self, addr: Ipv4Addr) -> Option<Ipv6Addr> {
        self.entries
            .iter()
            .find(|e| e.v4.contains(addr))
            .map(|e| e.to_v6(addr))
    }

    /// RFC 7757 §3.3, IPv6 → IPv4.
    pub fn v6_to_v4(&self, addr: Ipv6Addr) -> Option<Ipv4Addr> {
        // Longest IPv6 prefix first: same order, the suffix lengths are equal.
        self.entries
            .iter()
            .find(|e| e.v6.contains(addr))
            .map(|e| e.to_v4(addr))
    }

    /// Whether an IPv4 address is covered by some entry (hairpin test).
    pub fn contains_v4(&self, addr: Ipv4Addr) -> bool {
        self.entries.iter().any(|e| e.v4.contains(addr))
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl fmt::Debug for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl fmt::Debug for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `ADDR/LEN` or a bare `ADDR` (a host prefix).
impl FromStr for Ipv4Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s.split_once('/').unwrap_or((s, "32"));
        let addr: Ipv4Addr = addr.parse().map_err(|_| PrefixError::Syntax)?;
        let len: u8 = len.parse().map_err(|_| PrefixError::Syntax)?;
        Self::new(addr, len)
    }
}

/// `ADDR/LEN` or a bare `ADDR` (a host prefix).
impl FromStr for Ipv6Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s.split_once('/').unwrap_or((s, "128"));
        let addr: Ipv6Addr = addr.parse().map_err(|_| PrefixError::Syntax)?;
        let len: u8 = len.parse().map_err(|_| PrefixError::Syntax)?;
        Self::new(addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(v4: &str, v6: &str) -> EamEntry {
        EamEntry::new(v4.parse().unwrap(), v6.parse().unwrap()).unwrap()
    }

    #[test]
    fn rfc7757_example_maps_suffix_bits_both_ways() {
        // RFC 7757 §3.2 example: 192.0.2.0/24 <-> 2001:db8:aaaa::/120.
        let t = EamTable::new(vec![entry("192.0.2.0/24", "2001:db8:aaaa::/120")]);
        assert_eq!(
            t.v4_to_v6("192.0.2.1".parse().unwrap()),
            Some("2001:db8:aaaa::1".parse().unwrap())
        );
        assert_eq!(
            t.v6_to_v4("2001:db8:aaaa::ff".parse().unwrap()),
            Some("192.0.2.255".parse().unwrap())
        );
        assert_eq!(t.v4_to_v6("192.0.3.1".parse().unwrap()), None);
        assert_eq!(t.v6_to_v4("2001:db8:aaab::1".parse().unwrap()), None);
    }

    #[test]
    fn longest_prefix_wins_regardless_of_order() {
        let t = EamTable::new(vec![
            entry("192.0.2.0/24", "2001:db8:aaaa::/120"),
            entry("192.0.2.7", "2001:db8:bbbb::7"),
        ]);
        assert_eq!(
            t.v4_to_v6("192.0.2.7".parse().unwrap()),
            Some("2001:db8:bbbb::7".parse().unwrap())
        );
        assert_eq!(
            t.v4_to_v6("192.0.2.8".parse().unwrap()),
            Some("2001:db8:aaaa::8".parse().unwrap())
        );
    }

    #[test]
    fn mismatched_suffix_lengths_are_refused() {
        let err = EamEntry::new(
            "192.0.2.0/24".parse().unwrap(),
            "2001:db8::/64".parse().unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("suffix lengths differ"), "{err}");
    }

    #[test]
    fn prefixes_with_host_bits_are_refused() {
        assert_eq!(
            "192.0.2.1/24".parse::<Ipv4Prefix>(),
            Err(PrefixError::HostBitsSet(24))
        );
        assert_eq!(
            "2001:db8::1/64".parse::<Ipv6Prefix>(),
            Err(PrefixError::HostBitsSet(64))
        );
        assert_eq!(
            "192.0.2.0/33".parse::<Ipv4Prefix>(),
            Err(PrefixError::TooLong { len: 33, max: 32 })
        );
    }

    proptest! {
        #[test]
        fn eam_round_trips(v4_net: u32, v6_net: u128, len in 0u8..=32, host: u32) {
            let v4 = Ipv4Prefix::new(Ipv4Addr::from(v4_net & mask32(len)), len).unwrap();
            let v6len = len + 96;
            let v6 = Ipv6Prefix::new(Ipv6Addr::from(v6_net & mask128(v6len)), v6len).unwrap();
            let t = EamTable::new(vec![EamEntry::new(v4, v6).unwrap()]);
            let a = v4.nth(host);
            let b = t.v4_to_v6(a).unwrap();
            prop_assert!(v6.contains(b));
            prop_assert_eq!(t.v6_to_v4(b), Some(a));
        }
    }
}
