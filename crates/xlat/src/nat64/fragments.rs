//! Fragments of a datagram after the first carry no ports, so they cannot
//! be mapped through the BIB. The first fragment is mapped as any packet;
//! its mapping is remembered here, keyed by the fragment identification, for
//! RFC 6146 §4's FRAGMENT_MIN (2 s), and the later fragments take it.
//!
//! Bounded: at most [`MAX_ENTRIES`] datagrams in flight; the oldest goes
//! first. A later fragment that arrives before its first fragment is dropped
//! (no reassembly, no buffering).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

/// RFC 6146 §4: FRAGMENT_MIN, 2 seconds.
pub const FRAGMENT_MIN_MS: u64 = 2000;
/// Datagrams remembered at once.
pub const MAX_ENTRIES: usize = 4096;

/// A datagram's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// 6→4: IPv6 source, destination, Fragment header identification.
    V6([u8; 16], [u8; 16], u32),
    /// 4→6: IPv4 source, destination, protocol, identification.
    V4([u8; 4], [u8; 4], u8, u16),
}

/// What the later fragments need: the new source (6→4: prefix + T, as an
/// IPv4 address T) or destination (4→6: X').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mapped {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// A hasher keyed by the state's secret seed (no OS randomness in the core,
/// no hash flooding from chosen identifications).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seeded(pub u64);

pub(crate) struct SeededHasher(u64);

impl BuildHasher for Seeded {
    type Hasher = SeededHasher;
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher(self.0 ^ 0x243f_6a88_85a3_08d3)
    }
}

impl Hasher for SeededHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Fragments {
    map: HashMap<Key, (Mapped, u64), Seeded>,
    order: VecDeque<(u64, Key)>,
}

impl Fragments {
    pub fn new(seed: u64) -> Self {
        Self {
            map: HashMap::with_hasher(Seeded(seed)),
            order: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: u64) {
        while let Some(&(at, key)) = self.order.front() {
            if at + FRAGMENT_MIN_MS > now && self.order.len() <= MAX_ENTRIES {
                break;
            }
            self.order.pop_front();
            // Only if the map still holds this insertion (a key seen again
            // got a newer time).
            if self.map.get(&key).is_some_and(|(_, t)| *t == at) {
                self.map.remove(&key);
            }
        }
    }

    pub fn remember(&mut self, now: u64, key: Key, mapped: Mapped) {
        self.map.insert(key, (mapped, now));
        self.order.push_back((now, key));
        self.expire(now);
    }

    pub fn get(&mut self, now: u64, key: &Key) -> Option<Mapped> {
        self.expire(now);
        self.map.get(key).map(|(m, _)| *m)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: u16) -> Key {
        Key::V4([1, 2, 3, 4], [5, 6, 7, 8], 17, i)
    }

    #[test]
    fn a_mapping_lives_for_fragment_min() {
        let mut f = Fragments::default();
        f.remember(1000, k(1), Mapped::V4([9, 9, 9, 9]));
        assert_eq!(f.get(2999, &k(1)), Some(Mapped::V4([9, 9, 9, 9])));
        assert_eq!(f.get(3000, &k(1)), None);
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn the_table_never_holds_more_than_max_entries() {
        let mut f = Fragments::default();
        for i in 0..u16::try_from(MAX_ENTRIES + 100).unwrap() {
            f.remember(0, k(i), Mapped::V4([0; 4]));
        }
        assert_eq!(f.len(), MAX_ENTRIES);
        assert_eq!(f.get(0, &k(0)), None, "the oldest went first");
        assert!(f
            .get(0, &k(u16::try_from(MAX_ENTRIES + 99).unwrap()))
            .is_some());
    }

    #[test]
    fn a_key_seen_again_keeps_its_newer_time() {
        let mut f = Fragments::default();
        f.remember(0, k(1), Mapped::V4([1; 4]));
        f.remember(1500, k(1), Mapped::V4([2; 4]));
        assert_eq!(f.get(2500, &k(1)), Some(Mapped::V4([2; 4])));
    }
}
