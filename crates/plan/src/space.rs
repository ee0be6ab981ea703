//! Finding free aligned blocks inside a prefix, and describing what is left.

use crate::prefix::{self, Family, Numbers as _, Prefix};

/// Ranges `[start, last]` of `used` that fall inside `parent`, sorted.
fn used_ranges(parent: &Prefix, used: &[Prefix]) -> Vec<(u128, u128)> {
    let mut ranges: Vec<(u128, u128)> = used
        .iter()
        .filter(|u| u.overlaps(parent))
        .map(|u| (u.start().max(parent.start()), u.last().min(parent.last())))
        .collect();
    ranges.sort_unstable();
    ranges
}

/// The gaps `[start, last]` of `parent` not covered by `used`, lowest first.
fn gaps(parent: &Prefix, used: &[Prefix]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    let mut cursor = Some(parent.start());
    for (start, last) in used_ranges(parent, used) {
        let Some(from) = cursor else { break };
        if start > from {
            out.push((from, start - 1));
        }
        if last >= from {
            cursor = last.checked_add(1);
        }
    }
    if let Some(from) = cursor {
        if from <= parent.last() {
            out.push((from, parent.last()));
        }
    }
    out
}

/// The first address at or after `x` aligned to a block of `size` addresses.
fn align_up(x: u128, size: u128) -> Option<u128> {
    if size == 0 {
        return None;
    }
    let rem = x % size;
    if rem == 0 {
        Some(x)
    } else {
        x.checked_add(size - rem)
    }
}

/// The lowest block of length `len` inside `parent` that overlaps nothing
/// in `used`. Deterministic: the same inputs give the same block.
#[must_use]
pub fn first_free(parent: &Prefix, len: u8, used: &[Prefix]) -> Option<Prefix> {
    let family = parent.family();
    if len < parent.prefix_len() || len > family.bits() {
        return None;
    }
    let size = prefix::containing(family, 0, len).size();
    for (start, last) in gaps(parent, used) {
        let Some(candidate) = align_up(start, size) else {
            continue;
        };
        if candidate
            .checked_add(size - 1)
            .is_some_and(|end| end <= last)
        {
            return Some(prefix::containing(family, candidate, len));
        }
    }
    None
}

/// The largest free aligned block inside `parent`, if any address is free.
#[must_use]
pub fn largest_free(parent: &Prefix, used: &[Prefix]) -> Option<Prefix> {
    let family = parent.family();
    let mut best: Option<Prefix> = None;
    for (start, last) in gaps(parent, used) {
        for len in parent.prefix_len()..=family.bits() {
            if best.is_some_and(|b| b.prefix_len() <= len) {
                break;
            }
            let size = prefix::containing(family, 0, len).size();
            let Some(candidate) = align_up(start, size) else {
                continue;
            };
            if candidate
                .checked_add(size - 1)
                .is_some_and(|end| end <= last)
            {
                best = Some(prefix::containing(family, candidate, len));
                break;
            }
        }
    }
    best
}

/// How many blocks of length `len` fit in `parent`, saturated.
#[must_use]
pub fn capacity(parent: &Prefix, len: u8) -> u128 {
    if len < parent.prefix_len() {
        return 0;
    }
    1u128
        .checked_shl(u32::from(len - parent.prefix_len()))
        .unwrap_or(u128::MAX)
}

/// "no free /56 left in 2001:db8::/48 (256 of 256 taken); the largest free
/// block is /58 (2001:db8:ff40::/58)" and the like.
#[must_use]
pub fn exhausted(what: &str, parent: &Prefix, len: u8, used: &[Prefix]) -> String {
    let inside = used.iter().filter(|u| parent.contains_prefix(u)).count();
    let mut text = format!(
        "no free /{len} left for {what} in {parent} ({inside} block(s) already taken, {} /{len} fit in it)",
        fmt_count(capacity(parent, len)),
    );
    match largest_free(parent, used) {
        Some(free) => text.push_str(&format!(
            "; the largest free block there is a /{} ({free}), so a /{} or longer would fit",
            free.prefix_len(),
            free.prefix_len()
        )),
        None => text.push_str("; nothing is left there"),
    }
    text
}

/// Counts that can be huge (2^64 /64s in a /0) print as powers of two.
#[must_use]
pub fn fmt_count(n: u128) -> String {
    if n >= 1 << 20 && n.is_power_of_two() {
        format!("2^{}", n.trailing_zeros())
    } else {
        n.to_string()
    }
}

/// The prefix of `len` bits that holds the `count`-th address from the
/// start of `parent` (the block an address-in-a-block lookup needs).
#[must_use]
pub fn block_len_for(count: u32, unit_len: u8) -> Option<u8> {
    // ceil(log2(count)) bits above the unit.
    let bits = if count <= 1 {
        0
    } else {
        u32::BITS - (count - 1).leading_zeros()
    };
    u8::try_from(bits)
        .ok()
        .and_then(|b| unit_len.checked_sub(b))
}

/// `family` is unused by callers that only need the width; kept for symmetry.
#[must_use]
pub fn whole(family: Family) -> Prefix {
    prefix::containing(family, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Prefix {
        text.parse().unwrap()
    }

    #[test]
    fn first_free_skips_used_blocks_and_aligns() {
        let parent = p("2001:db8::/48");
        let used = [p("2001:db8::/56"), p("2001:db8:0:180::/58")];
        assert_eq!(
            first_free(&parent, 56, &used).unwrap(),
            p("2001:db8:0:200::/56")
        );
        assert_eq!(
            first_free(&parent, 58, &used).unwrap(),
            p("2001:db8:0:100::/58")
        );
    }

    #[test]
    fn first_free_is_none_when_full() {
        let parent = p("198.51.100.0/24");
        let used = [p("198.51.100.0/25"), p("198.51.100.128/25")];
        assert!(first_free(&parent, 28, &used).is_none());
        assert!(largest_free(&parent, &used).is_none());
    }

    #[test]
    fn largest_free_reports_the_biggest_gap() {
        let parent = p("2001:db8::/48");
        let used = [p("2001:db8::/49"), p("2001:db8:0:8000::/50")];
        assert_eq!(
            largest_free(&parent, &used).unwrap(),
            p("2001:db8:0:c000::/50")
        );
    }

    #[test]
    fn block_len_rounds_node_counts_up_to_powers_of_two() {
        assert_eq!(block_len_for(1, 64), Some(64));
        assert_eq!(block_len_for(2, 64), Some(63));
        assert_eq!(block_len_for(100, 64), Some(57));
        assert_eq!(block_len_for(128, 64), Some(57));
        assert_eq!(block_len_for(129, 64), Some(56));
    }

    #[test]
    fn whole_space_works_at_the_edges() {
        let all = whole(Family::V6);
        assert_eq!(first_free(&all, 1, &[p("::/1")]).unwrap(), p("8000::/1"));
        assert!(first_free(&all, 1, &[p("::/1"), p("8000::/1")]).is_none());
    }
}
