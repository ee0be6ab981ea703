//! The answer cache: finished answers by (name, type, class, flags, prefix),
//! bounded by memory, sharded behind short locks. Time is passed in.
//!
//! RFC 2308 negative answers are cached like positive ones, for their SOA's
//! negative TTL. With serve-stale (RFC 8767) an expired answer is kept for
//! `stale_window` more and handed out when every forwarder fails.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::wire::Stored;

const SHARDS: usize = 16;
/// Bookkeeping per entry beyond the key and the answer (map slot, queue slot).
const OVERHEAD: usize = 96;

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    Fresh(Arc<Stored>),
    /// Expired, but within the serve-stale window.
    Stale(Arc<Stored>),
    Miss,
}

struct Slot {
    stored: Arc<Stored>,
    seq: u64,
    cost: usize,
    stale_until: Instant,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Box<[u8]>, Slot>,
    /// Insertion order, for eviction: (key, seq); a stale seq is skipped.
    order: VecDeque<(Box<[u8]>, u64)>,
    bytes: usize,
    seq: u64,
}

/// Counts the cache reports to metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
}

pub struct Cache {
    shards: Vec<Mutex<Shard>>,
    shard_budget: usize,
    stale_window: Duration,
}

impl Cache {
    /// A cache holding at most `max_bytes` (keys, answers and bookkeeping).
    /// `stale_window` is zero when serve-stale is off.
    pub fn new(max_bytes: usize, stale_window: Duration) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_budget: max_bytes / SHARDS,
            stale_window,
        }
    }

    fn shard(&self, key: &[u8]) -> std::sync::MutexGuard<'_, Shard> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let index = usize::try_from(h.finish() % SHARDS as u64).unwrap_or(0);
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, key: &[u8], now: Instant) -> Lookup {
        let mut shard = self.shard(key);
        let Some(slot) = shard.map.get(key) else {
            return Lookup::Miss;
        };
        let fresh = slot.stored.expires().is_some_and(|e| now < e);
        if fresh {
            return Lookup::Fresh(Arc::clone(&slot.stored));
        }
        if now < slot.stale_until {
            return Lookup::Stale(Arc::clone(&slot.stored));
        }
        if let Some(slot) = shard.map.remove(key) {
            shard.bytes -= slot.cost;
        }
        Lookup::Miss
    }

    /// Stores an answer that has a TTL above zero; evicts the oldest entries
    /// of its shard while over budget.
    pub fn insert(&self, key: Box<[u8]>, stored: Arc<Stored>) {
        let Some(expires) = stored.expires().filter(|_| stored.ttl.unwrap_or(0) > 0) else {
            return;
        };
        let cost = key.len() * 2 + stored.cost() + OVERHEAD;
        if cost > self.shard_budget {
            return;
        }
        let mut shard = self.shard(&key);
        shard.seq += 1;
        let seq = shard.seq;
        let slot = Slot {
            stored,
            seq,
            cost,
            stale_until: expires + self.stale_window,
        };
        shard.order.push_back((key.clone(), seq));
        if let Some(old) = shard.map.insert(key, slot) {
            shard.bytes -= old.cost;
        }
        shard.bytes += cost;
        while shard.bytes > self.shard_budget {
            let Some((old_key, old_seq)) = shard.order.pop_front() else {
                break;
            };
            if shard.map.get(&old_key).is_some_and(|s| s.seq == old_seq) {
                if let Some(old) = shard.map.remove(&old_key) {
                    shard.bytes -= old.cost;
                }
            }
        }
        // Queue entries of replaced or expired keys are dropped as they reach
        // the front; keep the queue from outgrowing the map.
        while shard.order.len() > 2 * shard.map.len() + 16 {
            let Some((old_key, old_seq)) = shard.order.pop_front() else {
                break;
            };
            if shard.map.get(&old_key).is_some_and(|s| s.seq == old_seq) {
                shard.order.push_back((old_key, old_seq));
            }
        }
    }

    /// Forgets every answer.
    pub fn clear(&self) {
        for shard in &self.shards {
            *shard.lock().unwrap_or_else(PoisonError::into_inner) = Shard::default();
        }
    }

    pub fn stats(&self) -> CacheStats {
        let mut stats = CacheStats::default();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            stats.entries += shard.map.len();
            stats.bytes += shard.bytes;
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Answer;
    use hickory_proto::op::{Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};

    fn stored(ttl: u32, now: Instant) -> Arc<Stored> {
        let q = Query::query(Name::from_ascii("a.test.").unwrap(), RecordType::A);
        Arc::new(Stored::encode(&q, &Answer::error(ResponseCode::NoError), Some(ttl), now).unwrap())
    }

    fn key(i: u32) -> Box<[u8]> {
        i.to_be_bytes().to_vec().into_boxed_slice()
    }

    #[test]
    fn entries_expire_with_their_ttl() {
        let cache = Cache::new(1 << 20, Duration::ZERO);
        let t0 = Instant::now();
        cache.insert(key(1), stored(10, t0));
        assert!(matches!(
            cache.get(&key(1), t0 + Duration::from_secs(9)),
            Lookup::Fresh(_)
        ));
        assert!(matches!(
            cache.get(&key(1), t0 + Duration::from_secs(10)),
            Lookup::Miss
        ));
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn zero_ttl_is_not_cached() {
        let cache = Cache::new(1 << 20, Duration::ZERO);
        let t0 = Instant::now();
        cache.insert(key(1), stored(0, t0));
        assert!(matches!(cache.get(&key(1), t0), Lookup::Miss));
    }

    #[test]
    fn stale_answers_are_kept_for_the_window() {
        let cache = Cache::new(1 << 20, Duration::from_secs(60));
        let t0 = Instant::now();
        cache.insert(key(1), stored(10, t0));
        assert!(matches!(
            cache.get(&key(1), t0 + Duration::from_secs(30)),
            Lookup::Stale(_)
        ));
        assert!(matches!(
            cache.get(&key(1), t0 + Duration::from_secs(71)),
            Lookup::Miss
        ));
    }

    #[test]
    fn memory_stays_within_budget_under_many_inserts() {
        let budget = 64 * 1024;
        let cache = Cache::new(budget, Duration::ZERO);
        let t0 = Instant::now();
        for i in 0..100_000 {
            cache.insert(key(i), stored(100, t0));
            // Re-inserting the same keys must not grow the queues.
            cache.insert(key(i % 7), stored(100, t0));
        }
        let stats = cache.stats();
        assert!(stats.bytes <= budget, "{stats:?}");
        assert!(stats.entries > 100, "{stats:?}");
        for shard in &cache.shards {
            let shard = shard.lock().unwrap();
            assert!(shard.order.len() <= 2 * shard.map.len() + 17);
        }
        // The newest entries are there.
        assert!(matches!(cache.get(&key(99_999), t0), Lookup::Fresh(_)));
    }
}
