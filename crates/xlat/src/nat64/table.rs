//! The BIB and session table of one protocol.
//!
//! Layout, chosen for a small footprint per session (see `ENTRY_BYTES` and the
//! `nat64_memory` benchmark):
//! - BIB entries and sessions live in two slabs (`Vec`s with free lists) and
//!   are named by `u32` indices.
//! - Two `hashbrown::HashTable<u32>` index them: BIB entries by their IPv6
//!   transport address, sessions by (BIB entry, remote IPv4 transport
//!   address). The keys are read from the slabs, so an index costs 5 bytes a
//!   bucket. Hashes are keyed with a secret seed (no hash flooding).
//! - The IPv4 side needs no hash: each pool4 block keeps an array of the BIB
//!   indices of its ports, which is also the port allocator's map.
//! - Expiry: sessions of the same timer (UDP, ICMP, TCP_EST, TCP_TRANS,
//!   TCP_INCOMING_SYN) sit in one intrusive list ordered by last refresh, so
//!   the oldest is always at the head: refreshing is O(1) (move to the tail)
//!   and expiring touches only the sessions that expire. Jool does the same.

use std::net::{Ipv4Addr, Ipv6Addr};

use hashbrown::HashTable;

use super::pool4::{PortRange, ProtoPool};
use super::random::{below, Random};
use super::Proto;

pub(crate) const NONE: u32 = u32::MAX;
/// `Bib::refs` bit marking a static entry (never freed).
const STATIC: u32 = 1 << 31;
/// `Bib::refs` bit marking an entry a reconfiguration deleted: it is out of
/// both indices already (no packet finds it, its port is free), and is
/// freed with its last session (see `Table::next_doomed`).
const DOOMED: u32 = 1 << 30;

/// Timer classes; each has its own expiry list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Timer {
    Udp = 0,
    Icmp = 1,
    TcpEst = 2,
    TcpTrans = 3,
    TcpIncomingSyn = 4,
}

pub(crate) const TIMERS: usize = 5;
const FREE: u8 = 0xff;

impl Timer {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Udp,
            1 => Self::Icmp,
            2 => Self::TcpEst,
            3 => Self::TcpTrans,
            4 => Self::TcpIncomingSyn,
            _ => return None,
        })
    }
}

/// A BIB entry: (X', x) ↔ (T, t). 28 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bib {
    pub addr6: [u8; 16],
    pub port6: u16,
    pub port4: u16,
    pub addr4: [u8; 4],
    /// Number of sessions, plus `STATIC` for static entries.
    refs: u32,
}

impl Bib {
    pub fn is_static(&self) -> bool {
        self.refs & STATIC != 0
    }

    pub fn sessions(&self) -> u32 {
        self.refs & !(STATIC | DOOMED)
    }

    pub fn is_doomed(&self) -> bool {
        self.refs & DOOMED != 0
    }

    pub fn v6(&self) -> (Ipv6Addr, u16) {
        (Ipv6Addr::from(self.addr6), self.port6)
    }

    pub fn v4(&self) -> (Ipv4Addr, u16) {
        (Ipv4Addr::from(self.addr4), self.port4)
    }
}

/// A session: a BIB entry plus the remote IPv4 transport address (Z, z). Its
/// IPv6 remote (Y', y) is Z embedded in the prefix, so it is not stored.
/// 24 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    pub bib: u32,
    pub remote4: [u8; 4],
    pub remote_port: u16,
    /// `TcpState as u8` for TCP, 0 otherwise.
    pub state: u8,
    /// `Timer as u8`, or `FREE`.
    timer: u8,
    /// Last refresh, whole seconds of the caller's clock, rounded up so that
    /// a session never expires before its timeout.
    pub stamp: u32,
    prev: u32,
    next: u32,
}

impl Session {
    pub fn timer(&self) -> Option<Timer> {
        Timer::from_u8(self.timer)
    }
}

/// Bytes one session costs in the slabs when it has its own BIB entry (the
/// common case), hash buckets excluded.
pub const ENTRY_BYTES: usize = std::mem::size_of::<Session>() + std::mem::size_of::<Bib>();

#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY_LIST: List = List {
    head: NONE,
    tail: NONE,
};

/// A pool4 block of this protocol: one address and a port range, with the
/// BIB index of each port (`NONE` when free).
#[derive(Debug)]
struct Block {
    addr: [u8; 4],
    range: PortRange,
    /// Allocated on first use; empty means every port is free.
    slots: Vec<u32>,
    used: u32,
    /// Ports of the range this shard owns.
    owned: u32,
}

impl Block {
    fn slot(&self, port: u16) -> u32 {
        if self.slots.is_empty() {
            return NONE;
        }
        self.slots[usize::from(port - self.range.first)]
    }

    fn set(&mut self, port: u16, bib: u32) {
        if self.slots.is_empty() {
            self.slots = vec![NONE; usize::try_from(self.range.len()).unwrap_or(0)];
        }
        let slot = &mut self.slots[usize::from(port - self.range.first)];
        match (*slot == NONE, bib == NONE) {
            (true, false) => self.used += 1,
            (false, true) => self.used -= 1,
            _ => {}
        }
        *slot = bib;
    }

    fn full(&self) -> bool {
        self.used >= self.owned
    }
}

/// Seeded folded-multiply hash (the construction of foldhash and aHash's
/// fallback): good spread, and unpredictable without the seed.
#[allow(clippy::cast_possible_truncation)] // folding a u128 product into u64 is the point
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let full = u128::from(a ^ seed) * u128::from(b ^ 0x2d35_8dcc_aa6c_78a5 ^ seed.rotate_left(23));
    let folded = (full as u64) ^ ((full >> 64) as u64);
    folded ^ folded >> 29
}

pub(crate) fn hash6(seed: u64, addr6: &[u8; 16], port6: u16) -> u64 {
    let v = u128::from_be_bytes(*addr6);
    #[allow(clippy::cast_possible_truncation)] // taking the two halves
    let (hi, lo) = ((v >> 64) as u64, v as u64);
    mix(seed, mix(seed, hi, lo), u64::from(port6))
}

fn hash_session(seed: u64, bib: u32, remote4: [u8; 4], port: u16) -> u64 {
    let a = (u64::from(bib) << 32) | u64::from(u32::from_be_bytes(remote4));
    mix(seed, a, u64::from(port) | 0x5555_0000)
}

fn hash_adf(seed: u64, bib: u32, remote4: [u8; 4]) -> u64 {
    mix(
        seed,
        u64::from(bib),
        u64::from(u32::from_be_bytes(remote4)) << 16,
    )
}

/// The shard that owns pool4 port (or ICMP identifier) `port` when pool4 is
/// split over `shards` shards: pairs of ports go round the shards, so every
/// shard keeps both parities and both range classes.
pub fn shard_of_port(port: u16, shards: usize) -> usize {
    if shards <= 1 {
        0
    } else {
        usize::from(port >> 1) % shards
    }
}

/// How many ports of `range` shard `shard` of `shards` owns, without
/// walking the range (a /16 of pool4 has 65 536 of them).
fn owned_ports(range: PortRange, shard: usize, shards: usize) -> u32 {
    if shards <= 1 {
        return range.len();
    }
    let (n, k) = (
        u64::try_from(shards).unwrap_or(1),
        u64::try_from(shard).unwrap_or(0),
    );
    // Owned ports below `x`: 2 per full cycle of 2n, plus the part of the
    // last cycle's pair [2k, 2k + 2) below x.
    let below = |x: u64| -> u64 {
        let cycle = 2 * n;
        (x / cycle) * 2 + (x % cycle).saturating_sub(2 * k).min(2)
    };
    let owned = below(u64::from(range.last) + 1) - below(u64::from(range.first));
    u32::try_from(owned).unwrap_or(0)
}

/// RFC 6146 §3.5.1.1: ports 0-1023 and 1024-65535 are the two range classes.
fn class_ranges(port: u16) -> [PortRange; 2] {
    let low = PortRange {
        first: 0,
        last: 1023,
    };
    let high = PortRange {
        first: 1024,
        last: 65535,
    };
    if port < 1024 {
        [low, high]
    } else {
        [high, low]
    }
}

fn intersect(a: PortRange, b: PortRange) -> Option<PortRange> {
    let first = a.first.max(b.first);
    let last = a.last.min(b.last);
    (first <= last).then_some(PortRange { first, last })
}

/// The BIB and sessions of one protocol.
#[derive(Debug)]
pub(crate) struct Table {
    proto: Proto,
    seed: u64,
    bibs: Vec<Bib>,
    free_bibs: Vec<u32>,
    bib_count: u32,
    sessions: Vec<Session>,
    free_sessions: Vec<u32>,
    session_count: u32,
    by6: HashTable<u32>,
    by_remote: HashTable<u32>,
    /// (BIB, remote address, number of sessions): kept only under
    /// address-dependent filtering.
    adf: Option<HashTable<(u32, [u8; 4], u32)>>,
    blocks: Vec<Block>,
    /// Distinct addresses: (address, first block, end block).
    addrs: Vec<([u8; 4], usize, usize)>,
    /// Static BIB entries whose IPv4 port lies outside every block.
    static4: Vec<(([u8; 4], u16), u32)>,
    lists: [List; TIMERS],
    pool_ports: u64,
    shard: usize,
    shards: usize,
    /// Sessions whose BIB entry is doomed, not yet deleted.
    doomed_sessions: u32,
    /// Where the purge of doomed sessions goes on in the session slab;
    /// `None` when there is nothing to purge.
    purge_cursor: Option<u32>,
    /// Where the sweep of stale BIB entries (after a pool4 change) goes on
    /// in the BIB slab; `None` when none runs.
    sweep_cursor: Option<u32>,
}

impl Table {
    /// The table of shard `shard` of `shards` (0 of 1 when not sharded).
    pub fn new(
        proto: Proto,
        pool: &ProtoPool,
        seed: u64,
        adf: bool,
        (shard, shards): (usize, usize),
    ) -> Self {
        let blocks = blocks_of_pool(pool, shard, shards);
        let pool_ports = blocks.iter().map(|b| u64::from(b.owned)).sum();
        let addrs = addrs_of(&blocks);
        Self {
            proto,
            seed,
            bibs: Vec::new(),
            free_bibs: Vec::new(),
            bib_count: 0,
            sessions: Vec::new(),
            free_sessions: Vec::new(),
            session_count: 0,
            by6: HashTable::new(),
            by_remote: HashTable::new(),
            adf: adf.then(HashTable::new),
            blocks,
            addrs,
            static4: Vec::new(),
            lists: [EMPTY_LIST; TIMERS],
            pool_ports,
            shard,
            shards,
            doomed_sessions: 0,
            purge_cursor: None,
            sweep_cursor: None,
        }
    }

    /// (shard, shards) of this table.
    pub fn shard(&self) -> (usize, usize) {
        (self.shard, self.shards)
    }

    /// Whether this shard hands out `port`.
    pub fn owns(&self, port: u16) -> bool {
        shard_of_port(port, self.shards) == self.shard
    }

    /// Pre-sizes the slabs and indices for `n` sessions with one BIB entry
    /// each.
    pub fn reserve(&mut self, n: usize) {
        let seed = self.seed;
        self.sessions.reserve(n);
        self.bibs.reserve(n);
        let bibs = &self.bibs;
        self.by6.reserve(n, |&i| {
            let b = &bibs[i as usize];
            hash6(seed, &b.addr6, b.port6)
        });
        let sessions = &self.sessions;
        self.by_remote.reserve(n, |&i| {
            let s = &sessions[i as usize];
            hash_session(seed, s.bib, s.remote4, s.remote_port)
        });
    }

    pub fn session_count(&self) -> u32 {
        self.session_count
    }

    pub fn bib_count(&self) -> u32 {
        self.bib_count
    }

    pub fn pool_ports(&self) -> u64 {
        self.pool_ports
    }

    /// Pool4 ports in use by BIB entries (static entries outside the dynamic
    /// ranges are not counted).
    pub fn ports_used(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.used)).sum()
    }

    /// Bytes held by this table (slabs and index buckets, by capacity).
    pub fn heap_bytes(&self) -> usize {
        let idx = |buckets: usize| buckets * (std::mem::size_of::<u32>() + 1);
        self.bibs.capacity() * std::mem::size_of::<Bib>()
            + self.sessions.capacity() * std::mem::size_of::<Session>()
            + (self.free_bibs.capacity() + self.free_sessions.capacity()) * 4
            + idx(buckets_for(self.by6.capacity()))
            + idx(buckets_for(self.by_remote.capacity()))
            + self
                .adf
                .as_ref()
                .map_or(0, |t| buckets_for(t.capacity()) * 13)
            + self
                .blocks
                .iter()
                .map(|b| b.slots.capacity() * 4)
                .sum::<usize>()
    }

    pub fn bib(&self, idx: u32) -> &Bib {
        &self.bibs[idx as usize]
    }

    pub fn session(&self, idx: u32) -> &Session {
        &self.sessions[idx as usize]
    }

    /// The BIB entry of (X', x); a stale one (see [`Table::set_pool`]) is
    /// not found.
    pub fn find_bib6(&self, addr6: &[u8; 16], port6: u16) -> Option<u32> {
        self.find_bib6_any(addr6, port6)
            .filter(|&i| !self.is_stale(i))
    }

    /// Like [`Table::find_bib6`], and a stale entry found is doomed on the
    /// spot (so that a new one may take its IPv6 transport address).
    pub fn take_bib6(&mut self, addr6: &[u8; 16], port6: u16) -> Option<u32> {
        let idx = self.find_bib6_any(addr6, port6)?;
        if self.is_stale(idx) {
            self.doom(idx);
            return None;
        }
        Some(idx)
    }

    fn find_bib6_any(&self, addr6: &[u8; 16], port6: u16) -> Option<u32> {
        let h = hash6(self.seed, addr6, port6);
        let bibs = &self.bibs;
        self.by6
            .find(h, |&i| {
                let b = &bibs[i as usize];
                b.port6 == port6 && b.addr6 == *addr6
            })
            .copied()
    }

    /// The blocks of `addr` (sorted by first port).
    fn blocks_of(&self, addr: [u8; 4]) -> std::ops::Range<usize> {
        match self.addrs.binary_search_by_key(&addr, |a| a.0) {
            Ok(i) => self.addrs[i].1..self.addrs[i].2,
            Err(_) => 0..0,
        }
    }

    fn block_of(&self, addr: [u8; 4], port: u16) -> Option<usize> {
        self.blocks_of(addr)
            .find(|&b| self.blocks[b].range.contains(port))
    }

    pub fn has_address(&self, addr: [u8; 4]) -> bool {
        !self.blocks_of(addr).is_empty()
    }

    pub fn find_bib4(&self, addr4: [u8; 4], port4: u16) -> Option<u32> {
        if let Some(b) = self.block_of(addr4, port4) {
            let slot = self.blocks[b].slot(port4);
            if slot != NONE {
                return Some(slot);
            }
        }
        self.static4
            .iter()
            .find(|(k, _)| *k == (addr4, port4))
            .map(|(_, i)| *i)
    }

    pub fn find_session(&self, bib: u32, remote4: [u8; 4], port: u16) -> Option<u32> {
        let h = hash_session(self.seed, bib, remote4, port);
        let sessions = &self.sessions;
        self.by_remote
            .find(h, |&i| {
                let s = &sessions[i as usize];
                s.bib == bib && s.remote4 == remote4 && s.remote_port == port
            })
            .copied()
    }

    /// Under address-dependent filtering: whether the BIB entry has a session
    /// with `remote4` (any port).
    pub fn adf_allows(&self, bib: u32, remote4: [u8; 4]) -> bool {
        let Some(adf) = &self.adf else { return true };
        adf.find(hash_adf(self.seed, bib, remote4), |e| {
            e.0 == bib && e.1 == remote4
        })
        .is_some()
    }

    /// RFC 6146 §3.5.1.1 / RFC 6056: a free IPv4 transport address for
    /// (X', x). The address is chosen by a hash of X' first, so one IPv6 host
    /// keeps one IPv4 address while it has ports ("paired" pooling, RFC 4787
    /// REQ-2); the port is random, in x's range class (0-1023 or 1024-65535)
    /// and of x's parity when one is free (RFC 4787 §4.2.2), else from the
    /// other class or parity.
    pub fn allocate(
        &mut self,
        addr6: &[u8; 16],
        port6: u16,
        rng: &mut dyn Random,
    ) -> Option<([u8; 4], u16)> {
        if self.addrs.is_empty() {
            return None;
        }
        let n = u32::try_from(self.addrs.len()).unwrap_or(u32::MAX);
        let h = hash6(self.seed ^ 0xa5a5, addr6, 0);
        let start = u32::try_from(h % u64::from(n)).unwrap_or(0);
        let port_aware = self.proto != Proto::Icmp;
        for k in 0..n {
            let a = ((start + k) % n) as usize;
            let (_, b0, b1) = self.addrs[a];
            // (class, parity) passes: exact, then any parity, then the other
            // class. ICMP identifiers have neither class nor parity.
            let passes: &[(usize, bool)] = if port_aware {
                &[(0, true), (0, false), (1, false)]
            } else {
                &[(2, false)]
            };
            for &(class, parity) in passes {
                for b in b0..b1 {
                    if self.blocks[b].full() {
                        continue;
                    }
                    let sub = if class == 2 {
                        Some(self.blocks[b].range)
                    } else {
                        intersect(self.blocks[b].range, class_ranges(port6)[class])
                    };
                    let Some(sub) = sub else { continue };
                    if let Some(port) = self.free_port_in(b, sub, parity.then_some(port6 & 1), rng)
                    {
                        return Some((self.blocks[b].addr, port));
                    }
                }
            }
        }
        None
    }

    /// RFC 6056 Algorithm 1: a random start, then the next free port.
    fn free_port_in(
        &self,
        b: usize,
        sub: PortRange,
        parity: Option<u16>,
        rng: &mut dyn Random,
    ) -> Option<u16> {
        let block = &self.blocks[b];
        let n = sub.len();
        let offset = below(rng, n);
        for i in 0..n {
            let port = u32::from(sub.first) + (offset + i) % n;
            let Ok(port) = u16::try_from(port) else {
                continue;
            };
            if port == 0 && self.proto != Proto::Icmp {
                continue;
            }
            if parity.is_some_and(|p| port & 1 != p) || !self.owns(port) {
                continue;
            }
            if block.slot(port) == NONE {
                return Some(port);
            }
        }
        None
    }

    pub fn insert_bib(
        &mut self,
        addr6: [u8; 16],
        port6: u16,
        addr4: [u8; 4],
        port4: u16,
        is_static: bool,
    ) -> u32 {
        let entry = Bib {
            addr6,
            port6,
            port4,
            addr4,
            refs: if is_static { STATIC } else { 0 },
        };
        let idx = match self.free_bibs.pop() {
            Some(i) => {
                self.bibs[i as usize] = entry;
                i
            }
            None => {
                self.bibs.push(entry);
                u32::try_from(self.bibs.len() - 1).unwrap_or(NONE)
            }
        };
        let seed = self.seed;
        let bibs = &self.bibs;
        self.by6
            .insert_unique(hash6(seed, &addr6, port6), idx, |&i| {
                let b = &bibs[i as usize];
                hash6(seed, &b.addr6, b.port6)
            });
        match self.block_of(addr4, port4) {
            Some(b) => self.blocks[b].set(port4, idx),
            None => self.static4.push(((addr4, port4), idx)),
        }
        self.bib_count += 1;
        idx
    }

    fn remove_bib(&mut self, idx: u32) {
        self.unhook6(idx);
        self.unhook4(idx);
        self.bibs[idx as usize].refs = 0;
        self.free_bibs.push(idx);
        self.bib_count -= 1;
    }

    /// Takes a BIB entry out of the IPv6-side index.
    fn unhook6(&mut self, idx: u32) {
        let b = self.bibs[idx as usize];
        let h = hash6(self.seed, &b.addr6, b.port6);
        if let Ok(entry) = self.by6.find_entry(h, |&i| i == idx) {
            entry.remove();
        }
    }

    /// Takes a BIB entry off its pool4 port (which then is free), or out of
    /// the static entries outside the ranges. A port that another entry
    /// holds by now is left alone.
    fn unhook4(&mut self, idx: u32) {
        let b = self.bibs[idx as usize];
        if let Some(blk) = self.block_of(b.addr4, b.port4) {
            if self.blocks[blk].slot(b.port4) == idx {
                self.blocks[blk].set(b.port4, NONE);
                return;
            }
        }
        self.static4.retain(|(_, i)| *i != idx);
    }

    /// Deletes a BIB entry for a reconfiguration: at once when it has no
    /// sessions, else it leaves both indices now (no packet finds it, its
    /// port is free) and its sessions are deleted by the purge rounds
    /// ([`Table::next_doomed`]) or expire, the last one freeing it. Returns
    /// how many sessions wait.
    pub fn doom(&mut self, idx: u32) -> u32 {
        let b = self.bibs[idx as usize];
        if b.refs == 0 || b.is_doomed() {
            return 0;
        }
        let n = b.sessions();
        if n == 0 {
            self.remove_bib(idx);
            return 0;
        }
        self.unhook6(idx);
        self.unhook4(idx);
        self.bibs[idx as usize].refs = n | DOOMED;
        self.doomed_sessions += n;
        // Start over: sessions behind the cursor may belong to this entry.
        self.purge_cursor = Some(0);
        n
    }

    /// Makes an existing entry static (a static entry was configured with
    /// the mapping a dynamic one already had).
    pub fn make_static(&mut self, idx: u32) {
        self.bibs[idx as usize].refs |= STATIC;
    }

    /// The next session of a doomed BIB entry, looking at no more than
    /// `budget` slab slots (counted down). `None`: nothing left, or the
    /// budget ran out ([`Table::purging`] tells which).
    pub fn next_doomed(&mut self, budget: &mut usize) -> Option<u32> {
        while let Some(cursor) = self.purge_cursor {
            if self.doomed_sessions == 0 || cursor as usize >= self.sessions.len() {
                self.purge_cursor = None;
                return None;
            }
            if *budget == 0 {
                return None;
            }
            *budget -= 1;
            self.purge_cursor = Some(cursor + 1);
            let s = &self.sessions[cursor as usize];
            if s.timer != FREE && self.bibs[s.bib as usize].is_doomed() {
                return Some(cursor);
            }
        }
        None
    }

    /// Whether doomed sessions remain to be purged.
    pub fn purging(&self) -> bool {
        self.purge_cursor.is_some()
    }

    /// Replaces this protocol's pool4, in time independent of the number of
    /// BIB entries. Blocks that stay as they were keep their ports; a block
    /// whose range changed hands the ports both ranges share to the new
    /// block (a walk of the shared ports). The entries left without a port
    /// are stale: no packet finds them from now on ([`Table::find_bib4`]
    /// does not, [`Table::find_bib6`] skips them and [`Table::take_bib6`]
    /// dooms them), and the sweep ([`Table::next_stale`], in bounded rounds)
    /// dooms the rest. Static entries stay while their address is a pool4
    /// address. Returns whether a sweep is needed.
    pub fn set_pool(&mut self, pool: &ProtoPool) -> bool {
        let mut fresh = blocks_of_pool(pool, self.shard, self.shards);
        let fresh_addrs = addrs_of(&fresh);
        let mut kept = vec![false; fresh.len()];
        let mut stale = false;
        for old in std::mem::take(&mut self.blocks) {
            let at = fresh
                .binary_search_by_key(&(old.addr, old.range.first), |b| (b.addr, b.range.first));
            if let Ok(i) = at {
                if fresh[i].range == old.range {
                    fresh[i].slots = old.slots;
                    fresh[i].used = old.used;
                    kept[i] = true;
                    continue;
                }
            }
            if old.used == 0 {
                continue;
            }
            let mut carried = 0;
            if let Ok(a) = fresh_addrs.binary_search_by_key(&old.addr, |a| a.0) {
                let (_, b0, b1) = fresh_addrs[a];
                for block in &mut fresh[b0..b1] {
                    let Some(shared) = intersect(block.range, old.range) else {
                        continue;
                    };
                    for port in shared.first..=shared.last {
                        let idx = old.slot(port);
                        if idx != NONE {
                            block.set(port, idx);
                            carried += 1;
                        }
                    }
                }
            }
            stale |= carried < old.used;
        }
        self.pool_ports = fresh.iter().map(|b| u64::from(b.owned)).sum();
        self.addrs = fresh_addrs;
        self.blocks = fresh;
        // Static entries outside the ranges: into a range that now covers
        // them, kept while their address is in the pool, else stale.
        for (key, idx) in std::mem::take(&mut self.static4) {
            match self.block_of(key.0, key.1) {
                Some(b) if self.blocks[b].slot(key.1) == NONE => self.blocks[b].set(key.1, idx),
                None if self.has_address(key.0) => self.static4.push((key, idx)),
                _ => stale = true,
            }
        }
        if stale {
            // From the start: entries behind the cursor may be stale now.
            self.sweep_cursor = Some(0);
        }
        stale
    }

    /// Whether BIB entry `idx` holds its pool4 port (or its place among the
    /// static entries outside the ranges).
    fn placed(&self, idx: u32) -> bool {
        let b = &self.bibs[idx as usize];
        match self.block_of(b.addr4, b.port4) {
            Some(blk) => self.blocks[blk].slot(b.port4) == idx,
            None => {
                (b.is_static() && self.has_address(b.addr4))
                    || self.static4.iter().any(|(_, i)| *i == idx)
            }
        }
    }

    /// Whether a live entry lost its port to a pool4 change and waits for
    /// the sweep (only ever true while one runs).
    pub fn is_stale(&self, idx: u32) -> bool {
        self.sweep_cursor.is_some() && !self.placed(idx)
    }

    /// The next stale BIB entry, looking at no more than `budget` slab
    /// slots (counted down); the caller dooms it. `None`: the sweep is over,
    /// or the budget ran out ([`Table::sweeping`] tells which).
    pub fn next_stale(&mut self, budget: &mut usize) -> Option<u32> {
        while let Some(cursor) = self.sweep_cursor {
            if cursor as usize >= self.bibs.len() {
                self.sweep_cursor = None;
                return None;
            }
            if *budget == 0 {
                return None;
            }
            *budget -= 1;
            self.sweep_cursor = Some(cursor + 1);
            let b = self.bibs[cursor as usize];
            if b.refs == 0 || b.is_doomed() || self.placed(cursor) {
                if b.refs != 0
                    && b.is_static()
                    && self.block_of(b.addr4, b.port4).is_none()
                    && !self.static4.iter().any(|(_, i)| *i == cursor)
                {
                    // A static entry whose range left while its address
                    // stayed: outside the ranges now.
                    self.static4.push(((b.addr4, b.port4), cursor));
                }
                continue;
            }
            return Some(cursor);
        }
        None
    }

    /// Whether the sweep of stale entries runs.
    pub fn sweeping(&self) -> bool {
        self.sweep_cursor.is_some()
    }

    /// Switches address-dependent filtering on (building its index from the
    /// live sessions, one pass) or off (dropping the index).
    pub fn set_adf(&mut self, on: bool) {
        if !on {
            self.adf = None;
            return;
        }
        if self.adf.is_some() {
            return;
        }
        let seed = self.seed;
        let mut adf: HashTable<(u32, [u8; 4], u32)> = HashTable::new();
        for s in self.sessions.iter().filter(|s| s.timer != FREE) {
            let h = hash_adf(seed, s.bib, s.remote4);
            match adf.find_mut(h, |e| e.0 == s.bib && e.1 == s.remote4) {
                Some(e) => e.2 += 1,
                None => {
                    adf.insert_unique(h, (s.bib, s.remote4, 1), |e| hash_adf(seed, e.0, e.1));
                }
            }
        }
        self.adf = Some(adf);
    }

    pub fn insert_session(
        &mut self,
        bib: u32,
        remote4: [u8; 4],
        remote_port: u16,
        state: u8,
        timer: Timer,
        stamp: u32,
    ) -> u32 {
        let entry = Session {
            bib,
            remote4,
            remote_port,
            state,
            timer: FREE,
            stamp,
            prev: NONE,
            next: NONE,
        };
        let idx = match self.free_sessions.pop() {
            Some(i) => {
                self.sessions[i as usize] = entry;
                i
            }
            None => {
                self.sessions.push(entry);
                u32::try_from(self.sessions.len() - 1).unwrap_or(NONE)
            }
        };
        let seed = self.seed;
        let sessions = &self.sessions;
        self.by_remote
            .insert_unique(hash_session(seed, bib, remote4, remote_port), idx, |&i| {
                let s = &sessions[i as usize];
                hash_session(seed, s.bib, s.remote4, s.remote_port)
            });
        if let Some(adf) = &mut self.adf {
            let h = hash_adf(seed, bib, remote4);
            match adf.find_mut(h, |e| e.0 == bib && e.1 == remote4) {
                Some(e) => e.2 += 1,
                None => {
                    adf.insert_unique(h, (bib, remote4, 1), |e| hash_adf(seed, e.0, e.1));
                }
            }
        }
        self.bibs[bib as usize].refs += 1;
        self.session_count += 1;
        self.push_tail(idx, timer, stamp);
        idx
    }

    /// Removes a session (and its BIB entry when that was its last session
    /// and the entry is dynamic). Returns the IPv6 source address it counted
    /// against.
    pub fn remove_session(&mut self, idx: u32) -> [u8; 16] {
        self.unlink(idx);
        let s = self.sessions[idx as usize];
        let seed = self.seed;
        let h = hash_session(seed, s.bib, s.remote4, s.remote_port);
        if let Ok(entry) = self.by_remote.find_entry(h, |&i| i == idx) {
            entry.remove();
        }
        if let Some(adf) = &mut self.adf {
            let h = hash_adf(seed, s.bib, s.remote4);
            if let Ok(mut e) = adf.find_entry(h, |e| e.0 == s.bib && e.1 == s.remote4) {
                if e.get().2 <= 1 {
                    e.remove();
                } else {
                    e.get_mut().2 -= 1;
                }
            }
        }
        self.sessions[idx as usize].timer = FREE;
        self.free_sessions.push(idx);
        self.session_count -= 1;
        let bib = &mut self.bibs[s.bib as usize];
        bib.refs -= 1;
        let addr6 = bib.addr6;
        let doomed = bib.is_doomed();
        if bib.refs & !DOOMED == 0 {
            self.remove_bib(s.bib);
        }
        if doomed {
            self.doomed_sessions = self.doomed_sessions.saturating_sub(1);
        }
        addr6
    }

    fn unlink(&mut self, idx: u32) {
        let s = self.sessions[idx as usize];
        let Some(timer) = s.timer() else { return };
        let list = &mut self.lists[timer as usize];
        if s.prev == NONE {
            list.head = s.next;
        } else {
            self.sessions[s.prev as usize].next = s.next;
        }
        if s.next == NONE {
            list.tail = s.prev;
        } else {
            self.sessions[s.next as usize].prev = s.prev;
        }
        let s = &mut self.sessions[idx as usize];
        s.prev = NONE;
        s.next = NONE;
        s.timer = FREE;
    }

    fn push_tail(&mut self, idx: u32, timer: Timer, stamp: u32) {
        let list = &mut self.lists[timer as usize];
        let old_tail = list.tail;
        if old_tail == NONE {
            list.head = idx;
        } else {
            self.sessions[old_tail as usize].next = idx;
        }
        list.tail = idx;
        let s = &mut self.sessions[idx as usize];
        s.prev = old_tail;
        s.next = NONE;
        s.timer = timer as u8;
        s.stamp = stamp;
    }

    /// Refreshes a session: it gets `timer`, last refreshed at `stamp`.
    pub fn touch(&mut self, idx: u32, timer: Timer, stamp: u32) {
        let s = &self.sessions[idx as usize];
        if s.timer == timer as u8 && s.next == NONE {
            // Already the newest of its list: only the stamp changes.
            self.sessions[idx as usize].stamp = stamp;
            return;
        }
        self.unlink(idx);
        self.push_tail(idx, timer, stamp);
    }

    pub fn set_state(&mut self, idx: u32, state: u8) {
        self.sessions[idx as usize].state = state;
    }

    /// The oldest session of a timer list.
    pub fn head(&self, timer: Timer) -> Option<u32> {
        let h = self.lists[timer as usize].head;
        (h != NONE).then_some(h)
    }

    /// Live sessions, in slab order.
    pub fn live_sessions(&self) -> impl Iterator<Item = (u32, &Session)> {
        self.sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| s.timer != FREE)
            .map(|(i, s)| (u32::try_from(i).unwrap_or(NONE), s))
    }

    /// Live BIB entries, in slab order (not the doomed or stale ones).
    pub fn live_bibs(&self) -> impl Iterator<Item = &Bib> {
        // A freed slot has no sessions and is not static; a live dynamic
        // entry always has at least one session.
        self.bibs.iter().enumerate().filter_map(|(i, b)| {
            let i = u32::try_from(i).ok()?;
            (b.refs != 0 && !b.is_doomed() && !self.is_stale(i)).then_some(b)
        })
    }
}

/// The blocks of a protocol's pool4, for shard `shard` of `shards`.
fn blocks_of_pool(pool: &ProtoPool, shard: usize, shards: usize) -> Vec<Block> {
    pool.blocks()
        .iter()
        .map(|(a, r)| Block {
            addr: a.octets(),
            range: *r,
            slots: Vec::new(),
            used: 0,
            owned: owned_ports(*r, shard, shards),
        })
        .collect()
}

/// Distinct addresses of sorted blocks: (address, first block, end block).
fn addrs_of(blocks: &[Block]) -> Vec<([u8; 4], usize, usize)> {
    let mut addrs: Vec<([u8; 4], usize, usize)> = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        match addrs.last_mut() {
            Some(last) if last.0 == b.addr => last.2 = i + 1,
            _ => addrs.push((b.addr, i, i + 1)),
        }
    }
    addrs
}

/// Buckets hashbrown uses for a table whose `capacity()` is `cap`.
fn buckets_for(cap: usize) -> usize {
    if cap == 0 {
        0
    } else if cap < 8 {
        (cap + 1).next_power_of_two()
    } else {
        (cap * 8 / 7).next_power_of_two()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_small() {
        assert_eq!(std::mem::size_of::<Session>(), 24);
        assert_eq!(std::mem::size_of::<Bib>(), 28);
        assert_eq!(ENTRY_BYTES, 52);
    }

    #[test]
    fn owned_port_counts_match_a_walk_of_the_range() {
        for (first, last) in [
            (0u16, 65535u16),
            (61001, 65535),
            (2000, 2009),
            (5, 5),
            (1, 2),
        ] {
            let range = PortRange { first, last };
            for shards in 1..=5 {
                let mut total = 0;
                for shard in 0..shards {
                    let walked = (first..=last)
                        .filter(|&p| shard_of_port(p, shards) == shard)
                        .count();
                    let counted = owned_ports(range, shard, shards);
                    assert_eq!(counted as usize, walked, "{range:?} {shard}/{shards}");
                    total += counted;
                }
                assert_eq!(total, range.len());
            }
        }
    }

    #[test]
    fn class_ranges_put_the_own_class_first() {
        assert_eq!(class_ranges(80)[0].last, 1023);
        assert_eq!(class_ranges(40000)[0].first, 1024);
    }
}
