//! The randomness the NAT64 state draws from, passed in by the caller.
//!
//! RFC 6056 port randomisation needs unpredictable numbers, and the table
//! hashes need a secret seed; a sans-IO core cannot read the OS for either, so
//! the driver seeds a generator from the OS and tests seed it with a constant.

/// A source of random numbers.
pub trait Random {
    fn next_u64(&mut self) -> u64;

    fn next_u32(&mut self) -> u32 {
        // Keep the high half: it is the better-mixed one in SplitMix64.
        u32::try_from(self.next_u64() >> 32).unwrap_or(0)
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): fast, passes BigCrush, and is
/// unpredictable enough for port choice when its seed comes from the OS.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl Random for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A uniform number in `0..n` (Lemire's multiply-shift; the bias is below
/// 2^-16 for the ranges a port pool has).
pub(crate) fn below(rng: &mut dyn Random, n: u32) -> u32 {
    let wide = u64::from(rng.next_u32()) * u64::from(n);
    u32::try_from(wide >> 32).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_sequence() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SplitMix64::new(1);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = below(&mut rng, 10);
            assert!(v < 10);
            seen[usize::try_from(v).unwrap()] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
