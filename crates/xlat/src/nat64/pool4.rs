//! pool4: the IPv4 transport addresses a stateful NAT64 hands out.
//!
//! RFC 6146 §3.5.1.1 ("the NAT64 has a pool of IPv4 transport addresses");
//! separate pools for TCP, UDP and ICMP identifiers, as Jool keeps them. An
//! entry is written like Jool's `pool4 add`: `ADDR[/LEN] [tcp|udp|icmp]
//! [FIRST-LAST]`. An address given without a range takes 61001-65535 (Jool's
//! default), and an entry without a protocol applies to all three.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::Proto;

/// The range an address given alone takes (Jool's default).
pub const DEFAULT_RANGE: PortRange = PortRange {
    first: 61001,
    last: 65535,
};

/// The widest prefix a pool4 entry may name (/16 is 65 536 addresses).
pub const MIN_PREFIX_LEN: u8 = 16;

/// An inclusive range of ports (or ICMP identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn new(first: u16, last: u16) -> Result<Self, Pool4Error> {
        if first > last {
            return Err(Pool4Error::EmptyRange(first, last));
        }
        Ok(Self { first, last })
    }

    /// Number of ports in the range.
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// Always false: a range holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pool4Error {
    #[error("port range {0}-{1} is empty (first > last)")]
    EmptyRange(u16, u16),
    #[error("{0:?} is not a pool4 entry; expected ADDR[/LEN] [tcp|udp|icmp] [FIRST-LAST], for example \"192.0.2.1 tcp 1024-65535\"")]
    Syntax(String),
    #[error("pool4 prefix /{0} is too wide; the shortest allowed is /{MIN_PREFIX_LEN}")]
    TooWide(u8),
    #[error("pool4 prefix {0}/{1} has host bits set")]
    HostBits(Ipv4Addr, u8),
    #[error("{addr} {proto} {a} overlaps {b}")]
    Overlap {
        addr: Ipv4Addr,
        proto: Proto,
        a: PortRange,
        b: PortRange,
    },
    #[error("pool4 is empty for {0}")]
    Empty(Proto),
}

/// One configured pool4 line: a prefix, the protocols and the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool4Entry {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// `None` means TCP, UDP and ICMP.
    pub proto: Option<Proto>,
    pub range: PortRange,
}

impl Pool4Entry {
    /// The addresses the entry covers, in order.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        let base = u32::from(self.addr);
        let count = 1u32 << (32 - u32::from(self.prefix_len));
        (0..count).map(move |i| Ipv4Addr::from(base + i))
    }

    /// The protocols the entry applies to.
    pub fn protocols(&self) -> impl Iterator<Item = Proto> {
        let only = self.proto;
        Proto::ALL
            .into_iter()
            .filter(move |p| only.is_none_or(|o| o == *p))
    }
}

impl FromStr for Pool4Entry {
    type Err = Pool4Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || Pool4Error::Syntax(s.to_owned());
        let mut words = s.split_whitespace();
        let prefix = words.next().ok_or_else(syntax)?;
        let (addr, prefix_len) = match prefix.split_once('/') {
            Some((a, l)) => (
                a.parse::<Ipv4Addr>().map_err(|_| syntax())?,
                l.parse::<u8>().map_err(|_| syntax())?,
            ),
            None => (prefix.parse::<Ipv4Addr>().map_err(|_| syntax())?, 32),
        };
        if prefix_len > 32 {
            return Err(syntax());
        }
        if prefix_len < MIN_PREFIX_LEN {
            return Err(Pool4Error::TooWide(prefix_len));
        }
        let mask = u32::MAX
            .checked_shl(32 - u32::from(prefix_len))
            .unwrap_or(0);
        if u32::from(addr) & !mask != 0 {
            return Err(Pool4Error::HostBits(addr, prefix_len));
        }
        let mut proto = None;
        let mut range = None;
        for word in words {
            if let Ok(p) = word.parse::<Proto>() {
                if proto.replace(p).is_some() {
                    return Err(syntax());
                }
            } else if let Some((a, b)) = word.split_once('-') {
                let a = a.parse::<u16>().map_err(|_| syntax())?;
                let b = b.parse::<u16>().map_err(|_| syntax())?;
                if range.replace(PortRange::new(a, b)?).is_some() {
                    return Err(syntax());
                }
            } else {
                return Err(syntax());
            }
        }
        Ok(Self {
            addr,
            prefix_len,
            proto,
            range: range.unwrap_or(DEFAULT_RANGE),
        })
    }
}

impl fmt::Display for Pool4Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if self.prefix_len != 32 {
            write!(f, "/{}", self.prefix_len)?;
        }
        if let Some(p) = self.proto {
            write!(f, " {p}")?;
        }
        write!(f, " {}", self.range)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Pool4Entry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Pool4Entry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The pool4 of one protocol: (address, range) blocks, sorted, not
/// overlapping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProtoPool {
    blocks: Vec<(Ipv4Addr, PortRange)>,
}

impl ProtoPool {
    pub fn blocks(&self) -> &[(Ipv4Addr, PortRange)] {
        &self.blocks
    }

    /// Number of ports (identifiers) in the pool.
    pub fn ports(&self) -> u64 {
        self.blocks.iter().map(|(_, r)| u64::from(r.len())).sum()
    }

    pub fn contains(&self, addr: Ipv4Addr, port: u16) -> bool {
        self.blocks
            .iter()
            .any(|(a, r)| *a == addr && r.contains(port))
    }
}

/// The whole pool4: one [`ProtoPool`] per protocol.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pool4 {
    pools: [ProtoPool; 3],
}

impl Pool4 {
    /// Builds the pool from its entries, refusing overlaps and an empty pool
    /// for any protocol.
    pub fn new(entries: &[Pool4Entry]) -> Result<Self, Pool4Error> {
        let mut pool = Self::default();
        for entry in entries {
            for proto in entry.protocols() {
                for addr in entry.addresses() {
                    pool.pools[proto.index()].blocks.push((addr, entry.range));
                }
            }
        }
        for proto in Proto::ALL {
            let blocks = &mut pool.pools[proto.index()].blocks;
            if blocks.is_empty() {
                return Err(Pool4Error::Empty(proto));
            }
            blocks.sort_by_key(|(a, r)| (*a, r.first));
            for pair in blocks.windows(2) {
                let ((a1, r1), (a2, r2)) = (pair[0], pair[1]);
                if a1 == a2 && r2.first <= r1.last {
                    return Err(Pool4Error::Overlap {
                        addr: a1,
                        proto,
                        a: r1,
                        b: r2,
                    });
                }
            }
        }
        Ok(pool)
    }

    pub fn proto(&self, proto: Proto) -> &ProtoPool {
        &self.pools[proto.index()]
    }

    /// Whether `addr` is a pool4 address of any protocol (hairpinning and
    /// routing ask this).
    pub fn has_address(&self, addr: Ipv4Addr) -> bool {
        self.pools
            .iter()
            .any(|p| p.blocks.iter().any(|(a, _)| *a == addr))
    }

    /// Every distinct pool4 address, sorted.
    pub fn addresses(&self) -> Vec<Ipv4Addr> {
        let mut all: Vec<Ipv4Addr> = self
            .pools
            .iter()
            .flat_map(|p| p.blocks.iter().map(|(a, _)| *a))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> Pool4Entry {
        s.parse().unwrap()
    }

    #[test]
    fn address_alone_takes_61001_to_65535_for_every_protocol() {
        let entry = e("192.0.2.1");
        assert_eq!(entry.range, PortRange::new(61001, 65535).unwrap());
        let pool = Pool4::new(&[entry]).unwrap();
        for proto in Proto::ALL {
            assert_eq!(pool.proto(proto).ports(), 4535);
        }
    }

    #[test]
    fn prefix_protocol_and_range_parse() {
        let entry = e("198.51.100.0/30 tcp 1024-2047");
        assert_eq!(entry.proto, Some(Proto::Tcp));
        assert_eq!(entry.addresses().count(), 4);
        let pool = Pool4::new(&[entry, e("198.51.100.9")]).unwrap();
        assert_eq!(pool.proto(Proto::Tcp).ports(), 4 * 1024 + 4535);
        assert_eq!(pool.proto(Proto::Udp).ports(), 4535);
        assert!(pool.has_address("198.51.100.3".parse().unwrap()));
        assert!(!pool.has_address("198.51.100.4".parse().unwrap()));
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(matches!(
            "nonsense".parse::<Pool4Entry>(),
            Err(Pool4Error::Syntax(_))
        ));
        assert!(matches!(
            "192.0.2.1 5-4".parse::<Pool4Entry>(),
            Err(Pool4Error::EmptyRange(5, 4))
        ));
        assert!(matches!(
            "192.0.2.1/24".parse::<Pool4Entry>(),
            Err(Pool4Error::HostBits(..))
        ));
        assert!(matches!(
            "10.0.0.0/8".parse::<Pool4Entry>(),
            Err(Pool4Error::TooWide(8))
        ));
        assert!(matches!(
            "192.0.2.1 tcp udp".parse::<Pool4Entry>(),
            Err(Pool4Error::Syntax(_))
        ));
    }

    #[test]
    fn overlapping_ranges_are_refused() {
        let err = Pool4::new(&[e("192.0.2.1 tcp 1000-2000"), e("192.0.2.1 2000-3000")]);
        assert!(matches!(err, Err(Pool4Error::Overlap { .. })));
    }

    #[test]
    fn a_protocol_without_ports_is_refused() {
        assert_eq!(
            Pool4::new(&[e("192.0.2.1 tcp")]),
            Err(Pool4Error::Empty(Proto::Udp))
        );
    }

    #[test]
    fn display_round_trips() {
        for s in ["192.0.2.0/31 udp 1-2", "192.0.2.1 61001-65535"] {
            assert_eq!(e(s).to_string(), s);
            assert_eq!(e(&e(s).to_string()), e(s));
        }
    }
}
