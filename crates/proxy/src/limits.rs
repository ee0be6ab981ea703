//! Connection counts per source prefix, bounded by the connections open.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use crate::prefix::Prefix;

/// Open connections per source prefix. An entry exists only while its count
/// is above zero, so the map never holds more entries than open connections.
#[derive(Debug, Default)]
pub struct SourceCounts {
    counts: HashMap<Prefix, u32>,
}

impl SourceCounts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one more connection from `source` unless that would pass `max`
    /// (0: no limit). Returns whether it was counted.
    pub fn acquire(&mut self, source: Prefix, max: u32) -> bool {
        let count = self.counts.entry(source).or_insert(0);
        if max != 0 && *count >= max {
            if *count == 0 {
                self.counts.remove(&source);
            }
            return false;
        }
        *count += 1;
        true
    }

    /// Counts one connection from `source` as closed.
    pub fn release(&mut self, source: Prefix) {
        if let Some(count) = self.counts.get_mut(&source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.counts.remove(&source);
            }
        }
    }

    /// Sources with at least one connection open.
    pub fn sources(&self) -> usize {
        self.counts.len()
    }

    pub fn count(&self, source: Prefix) -> u32 {
        self.counts.get(&source).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_applies_per_prefix_and_entries_go_away() {
        let a: Prefix = "2001:db8:1::/64".parse().unwrap();
        let b: Prefix = "2001:db8:2::/64".parse().unwrap();
        let mut s = SourceCounts::new();
        assert!(s.acquire(a, 2));
        assert!(s.acquire(a, 2));
        assert!(!s.acquire(a, 2));
        assert!(s.acquire(b, 2));
        assert_eq!(s.count(a), 2);
        s.release(a);
        assert!(s.acquire(a, 2));
        s.release(a);
        s.release(a);
        s.release(b);
        assert_eq!(s.sources(), 0);
        s.release(b); // an extra release is harmless
        assert_eq!(s.sources(), 0);
    }

    #[test]
    fn zero_means_no_limit() {
        let a: Prefix = "192.0.2.0/24".parse().unwrap();
        let mut s = SourceCounts::new();
        for _ in 0..1000 {
            assert!(s.acquire(a, 0));
        }
        assert_eq!(s.count(a), 1000);
    }
}
