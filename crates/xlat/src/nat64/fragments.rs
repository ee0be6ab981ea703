//! Fragments of a datagram after the first carry no ports, so they cannot
//! be mapped through the BIB. The first fragment is mapped as any packet;
//! its mapping is remembered here, keyed by the fragment identification, for
//! RFC 6146 §4's FRAGMENT_MIN (2 s), and the later fragments take it.
//!
//! A later fragment that arrives before the first fragment of its datagram
//! (networks reorder; Linux sends some datagrams last fragment first) is
//! held here, as bytes, until the first fragment comes (RFC 6146 §3.4 lets a
//! NAT64 queue fragments; RFC 7915 translates each fragment on its own, so
//! nothing is reassembled). The translator then takes the held fragments and
//! translates them right after the first one. A held fragment whose first
//! fragment does not come within FRAGMENT_MIN is dropped and counted.
//!
//! Bounded: at most [`MAX_ENTRIES`] mappings (the oldest goes first), and at
//! most [`MAX_HELD`] held fragments of at most [`MAX_HELD_BYTES`] bytes in
//! all, [`MAX_HELD_PER_DATAGRAM`] of one datagram; a fragment over a limit
//! is refused (the ones already held stay). Time goes in as the caller's
//! milliseconds; nothing here reads a clock.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

/// RFC 6146 §4: FRAGMENT_MIN, 2 seconds. Also how long a later fragment is
/// held waiting for its first fragment.
pub const FRAGMENT_MIN_MS: u64 = 2000;
/// Datagrams remembered at once.
pub const MAX_ENTRIES: usize = 4096;
/// Later fragments held at once, all datagrams together (one [`State`]
/// shard).
///
/// [`State`]: super::State
pub const MAX_HELD: usize = 1024;
/// Bytes of held fragments at once, all datagrams together (one shard).
pub const MAX_HELD_BYTES: usize = 1 << 20;
/// Later fragments held for one datagram (a 64 KiB datagram cut for a
/// 1280-byte MTU has 52).
pub const MAX_HELD_PER_DATAGRAM: usize = 64;

/// A datagram's identity: what its fragments share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragmentKey {
    /// 6→4: IPv6 source, destination, Fragment header identification.
    V6([u8; 16], [u8; 16], u32),
    /// 4→6: IPv4 source, destination, protocol, identification.
    V4([u8; 4], [u8; 4], u8, u16),
}

pub(crate) use FragmentKey as Key;

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

/// A later fragment waiting for its first fragment.
#[derive(Debug)]
struct Held {
    key: Key,
    /// When it came, in the caller's milliseconds.
    at: u64,
    packet: Vec<u8>,
}

/// Why a later fragment could not be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueFull;

#[derive(Debug, Default)]
pub(crate) struct Fragments {
    map: HashMap<Key, (Mapped, u64), Seeded>,
    order: VecDeque<(u64, Key)>,
    /// Held later fragments, oldest first (the clock only goes forward, so
    /// this is also expiry order).
    held: VecDeque<Held>,
    /// Fragments held per datagram.
    held_per_key: HashMap<Key, usize, Seeded>,
    held_bytes: usize,
    /// Held fragments dropped because their first fragment did not come in
    /// time.
    pub timed_out: u64,
    /// Held fragments that did not translate once their first fragment came.
    pub release_failed: u64,
}

impl Fragments {
    pub fn new(seed: u64) -> Self {
        Self {
            map: HashMap::with_hasher(Seeded(seed)),
            order: VecDeque::new(),
            held: VecDeque::new(),
            held_per_key: HashMap::with_hasher(Seeded(seed.rotate_left(17))),
            held_bytes: 0,
            timed_out: 0,
            release_failed: 0,
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
        self.expire_held(now);
    }

    /// Drops the held fragments that waited FRAGMENT_MIN; returns how many.
    pub fn expire_held(&mut self, now: u64) -> u64 {
        let mut n = 0;
        while let Some(h) = self.held.front() {
            if h.at + FRAGMENT_MIN_MS > now {
                break;
            }
            let key = h.key;
            if let Some(h) = self.held.pop_front() {
                self.held_bytes -= h.packet.len();
            }
            self.unheld(key, 1);
            n += 1;
        }
        self.timed_out += n;
        n
    }

    fn unheld(&mut self, key: Key, n: usize) {
        if let Some(c) = self.held_per_key.get_mut(&key) {
            *c = c.saturating_sub(n);
            if *c == 0 {
                self.held_per_key.remove(&key);
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

    /// Holds `packet`, a later fragment of the datagram `key` whose first
    /// fragment has not come yet, unless a limit is reached.
    pub fn hold(&mut self, now: u64, key: Key, packet: &[u8]) -> Result<(), QueueFull> {
        self.expire(now);
        let of_key = self.held_per_key.get(&key).copied().unwrap_or(0);
        if of_key >= MAX_HELD_PER_DATAGRAM
            || self.held.len() >= MAX_HELD
            || self.held_bytes + packet.len() > MAX_HELD_BYTES
        {
            return Err(QueueFull);
        }
        self.held.push_back(Held {
            key,
            at: now,
            packet: packet.to_vec(),
        });
        self.held_bytes += packet.len();
        *self.held_per_key.entry(key).or_insert(0) += 1;
        Ok(())
    }

    /// Whether fragments of `key` are held.
    pub fn holds(&self, key: &Key) -> bool {
        self.held_per_key.contains_key(key)
    }

    /// Takes the held fragments of the datagram `key`, in the order they
    /// came. Costs O(held) when there are any, nothing otherwise.
    pub fn take_held(&mut self, now: u64, key: &Key) -> Vec<Vec<u8>> {
        self.expire_held(now);
        let Some(n) = self.held_per_key.remove(key) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(n);
        let mut bytes = 0;
        self.held.retain_mut(|h| {
            if h.key == *key {
                bytes += h.packet.len();
                out.push(std::mem::take(&mut h.packet));
                false
            } else {
                true
            }
        });
        self.held_bytes -= bytes;
        out
    }

    /// When the oldest held fragment times out.
    pub fn next_deadline(&self) -> Option<u64> {
        self.held.front().map(|h| h.at + FRAGMENT_MIN_MS)
    }

    /// (held fragments, their bytes).
    pub fn held(&self) -> (usize, usize) {
        (self.held.len(), self.held_bytes)
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

    #[test]
    fn held_fragments_come_back_in_arrival_order_and_free_their_bytes() {
        let mut f = Fragments::default();
        f.hold(0, k(1), &[1; 10]).unwrap();
        f.hold(1, k(2), &[2; 20]).unwrap();
        f.hold(2, k(1), &[3; 30]).unwrap();
        assert_eq!(f.held(), (3, 60));
        assert_eq!(f.take_held(3, &k(1)), vec![vec![1; 10], vec![3; 30]]);
        assert_eq!(f.held(), (1, 20));
        assert!(f.take_held(3, &k(1)).is_empty());
        assert_eq!(f.next_deadline(), Some(1 + FRAGMENT_MIN_MS));
        assert_eq!(f.expire_held(1 + FRAGMENT_MIN_MS), 1);
        assert_eq!((f.held(), f.timed_out), ((0, 0), 1));
        assert!(!f.holds(&k(2)));
    }

    #[test]
    fn a_full_queue_refuses_and_keeps_what_it_holds() {
        let mut f = Fragments::default();
        let big = vec![0u8; MAX_HELD_BYTES / 2];
        f.hold(0, k(1), &big).unwrap();
        f.hold(0, k(2), &big).unwrap();
        assert_eq!(f.hold(0, k(3), &[0]), Err(QueueFull), "bytes");
        assert_eq!(f.held().0, 2);
        let mut f = Fragments::default();
        for i in 0..u16::try_from(MAX_HELD).unwrap() {
            f.hold(0, k(i), &[0]).unwrap();
        }
        assert_eq!(f.hold(0, k(9999), &[0]), Err(QueueFull), "count");
    }
}
