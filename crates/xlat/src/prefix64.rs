//! RFC 6052: IPv4-embedded IPv6 addresses.
//!
//! RFC 6052 §2.2: the IPv4 address is written right after the prefix, skipping
//! bits 64 to 71 (the "u" octet), which "MUST be set to zero". The suffix after
//! the IPv4 address is zero too.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The prefix lengths RFC 6052 §2.2 allows.
pub const ALLOWED_LENGTHS: [u8; 6] = [32, 40, 48, 56, 64, 96];

/// The Well-Known Prefix `64:ff9b::/96` (RFC 6052 §2.1).
pub const WELL_KNOWN: Prefix64 = Prefix64 {
    bytes: [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    len: 96,
};

/// Index of the u-octet (bits 64..71), which never carries IPv4 bits.
const U_OCTET: usize = 8;

/// An RFC 6052 translation prefix: `2001:db8::/32`, `64:ff9b::/96`, ...
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix64 {
    bytes: [u8; 16],
    len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Prefix64Error {
    #[error("prefix length /{0} is not one of /32, /40, /48, /56, /64, /96 (RFC 6052 §2.2)")]
    BadLength(u8),
    #[error("bits after /{0} must be zero")]
    HostBitsSet(u8),
    #[error("bits 64-71 (the u-octet) must be zero (RFC 6052 §2.2)")]
    UOctetSet,
    #[error("expected ADDRESS/LENGTH, for example 64:ff9b::/96")]
    Syntax,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmbedError {
    #[error(
        "{0} is not a global IPv4 address; the well-known prefix 64:ff9b::/96 must not carry it (RFC 6052 §3.1)"
    )]
    NonGlobalUnderWellKnown(Ipv4Addr),
}

impl Prefix64 {
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, Prefix64Error> {
        if !ALLOWED_LENGTHS.contains(&len) {
            return Err(Prefix64Error::BadLength(len));
        }
        let bytes = addr.octets();
        let prefix_bytes = usize::from(len / 8);
        if bytes[prefix_bytes..].iter().any(|&b| b != 0) {
            return Err(Prefix64Error::HostBitsSet(len));
        }
        if prefix_bytes > U_OCTET && bytes[U_OCTET] != 0 {
            return Err(Prefix64Error::UOctetSet);
        }
        Ok(Self { bytes, len })
    }

    pub fn addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.bytes)
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether this is the Well-Known Prefix `64:ff9b::/96`.
    pub fn is_well_known(&self) -> bool {
        *self == WELL_KNOWN
    }

    /// Byte offsets of the four IPv4 octets inside the IPv6 address.
    fn v4_positions(&self) -> [usize; 4] {
        let mut pos = usize::from(self.len / 8);
        let mut out = [0; 4];
        for slot in &mut out {
            if pos == U_OCTET {
                pos += 1;
            }
            *slot = pos;
            pos += 1;
        }
        out
    }

    /// RFC 6052 §2.2 embedding, refusing what §3.1 forbids.
    pub fn embed(&self, v4: Ipv4Addr) -> Result<Ipv6Addr, EmbedError> {
        if self.is_well_known() && !is_global_v4(v4) {
            return Err(EmbedError::NonGlobalUnderWellKnown(v4));
        }
        Ok(self.embed_unchecked(v4))
    }

    /// RFC 6052 §2.2 embedding without the §3.1 check (for the RFC 6791 and
    /// EAM paths, where the operator chose the addresses explicitly).
    pub fn embed_unchecked(&self, v4: Ipv4Addr) -> Ipv6Addr {
        let mut bytes = self.bytes;
        for (pos, octet) in self.v4_positions().into_iter().zip(v4.octets()) {
            bytes[pos] = octet;
        }
        Ipv6Addr::from(bytes)
    }

    /// Whether `addr` lies inside this prefix.
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        let n = usize::from(self.len / 8);
        addr.octets()[..n] == self.bytes[..n]
    }

    /// RFC 6052 §2.3 extraction; `None` when `addr` is outside the prefix.
    /// The u-octet and suffix are ignored, as §2.3 allows.
    pub fn extract(&self, addr: Ipv6Addr) -> Option<Ipv4Addr> {
        if !self.contains(addr) {
            return None;
        }
        let bytes = addr.octets();
        let p = self.v4_positions();
        Some(Ipv4Addr::new(
            bytes[p[0]],
            bytes[p[1]],
            bytes[p[2]],
            bytes[p[3]],
        ))
    }
}

/// Whether an IPv4 address is global unicast, after the IANA IPv4
/// Special-Purpose Address Registry (RFC 6890) plus multicast and broadcast.
/// These are the addresses RFC 6052 §3.1 keeps out of `64:ff9b::/96`.
pub fn is_global_v4(addr: Ipv4Addr) -> bool {
    const NON_GLOBAL: [(u32, u8); 15] = [
        (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
        (0x0a00_0000, 8),  // 10.0.0.0/8 private
        (0x6440_0000, 10), // 100.64.0.0/10 shared address space
        (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
        (0xa9fe_0000, 16), // 169.254.0.0/16 link local
        (0xac10_0000, 12), // 172.16.0.0/12 private
        (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
        (0xc000_0200, 24), // 192.0.2.0/24 TEST-NET-1
        (0xc058_6300, 24), // 192.88.99.0/24 6to4 relay anycast (deprecated)
        (0xc0a8_0000, 16), // 192.168.0.0/16 private
        (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
        (0xc633_6400, 24), // 198.51.100.0/24 TEST-NET-2
        (0xcb00_7100, 24), // 203.0.113.0/24 TEST-NET-3
        (0xe000_0000, 4),  // 224.0.0.0/4 multicast
        (0xf000_0000, 4),  // 240.0.0.0/4 reserved, and broadcast
    ];
    let a = u32::from(addr);
    !NON_GLOBAL
        .iter()
        .any(|&(net, len)| a >> (32 - u32::from(len)) == net >> (32 - u32::from(len)))
}

impl fmt::Display for Prefix64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl fmt::Debug for Prefix64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Prefix64 {
    type Err = Prefix64Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s.split_once('/').ok_or(Prefix64Error::Syntax)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| Prefix64Error::Syntax)?;
        let len: u8 = len.parse().map_err(|_| Prefix64Error::Syntax)?;
        Self::new(addr, len)
    }
}

impl TryFrom<String> for Prefix64 {
    type Error = Prefix64Error;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Prefix64> for String {
    fn from(p: Prefix64) -> String {
        p.to_string()
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Prefix64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Prefix64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Prefix64 {
        s.parse().unwrap()
    }

    /// RFC 6052 §2.4, the table of examples.
    const RFC6052_TABLE: [(&str, &str); 6] = [
        ("2001:db8::/32", "2001:db8:c000:221::"),
        ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
        ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
        ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
        ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
        ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
    ];

    #[test]
    fn rfc6052_table_embeds_and_extracts() {
        let v4: Ipv4Addr = "192.0.2.33".parse().unwrap();
        for (prefix, expected) in RFC6052_TABLE {
            let expected: Ipv6Addr = expected.parse().unwrap();
            assert_eq!(p(prefix).embed(v4), Ok(expected), "{prefix}");
            assert_eq!(p(prefix).extract(expected), Some(v4), "{prefix}");
        }
    }

    #[test]
    fn well_known_prefix_refuses_non_global_ipv4() {
        for addr in [
            "192.0.2.33",
            "10.1.2.3",
            "127.0.0.1",
            "198.18.0.1",
            "192.168.1.1",
        ] {
            let v4: Ipv4Addr = addr.parse().unwrap();
            assert_eq!(
                WELL_KNOWN.embed(v4),
                Err(EmbedError::NonGlobalUnderWellKnown(v4))
            );
        }
        assert_eq!(
            WELL_KNOWN.embed("93.184.216.34".parse().unwrap()),
            Ok("64:ff9b::5db8:d822".parse().unwrap())
        );
    }

    #[test]
    fn local_use_prefix_carries_non_global_ipv4() {
        let local = p("64:ff9b:1::/96");
        assert_eq!(
            local.embed("192.0.2.1".parse().unwrap()),
            Ok("64:ff9b:1::c000:201".parse().unwrap())
        );
        assert!(p("64:ff9b:1::/48")
            .embed("10.0.0.1".parse().unwrap())
            .is_ok());
    }

    #[test]
    fn bad_prefixes_are_refused() {
        assert_eq!(
            "2001:db8::/33".parse::<Prefix64>(),
            Err(Prefix64Error::BadLength(33))
        );
        assert_eq!(
            "2001:db8::1/96".parse::<Prefix64>(),
            Err(Prefix64Error::HostBitsSet(96))
        );
        assert_eq!(
            "2001:db8:0:0:100::/96".parse::<Prefix64>(),
            Err(Prefix64Error::UOctetSet)
        );
        assert_eq!("nonsense".parse::<Prefix64>(), Err(Prefix64Error::Syntax));
    }

    #[test]
    fn extract_outside_prefix_is_none() {
        assert_eq!(WELL_KNOWN.extract("2001:db8::1".parse().unwrap()), None);
    }

    proptest! {
        #[test]
        fn extract_inverts_embed(len_idx in 0usize..6, raw_prefix: u128, v4: u32) {
            let len = ALLOWED_LENGTHS[len_idx];
            let mask = u128::MAX << (128 - u32::from(len));
            let mut bytes = (raw_prefix & mask).to_be_bytes();
            if len > 64 { bytes[8] = 0; }
            let prefix = Prefix64::new(Ipv6Addr::from(bytes), len).unwrap();
            let v4 = Ipv4Addr::from(v4);
            let v6 = prefix.embed_unchecked(v4);
            prop_assert_eq!(v6.octets()[8], 0, "u-octet stays zero");
            prop_assert_eq!(prefix.extract(v6), Some(v4));
        }
    }
}
