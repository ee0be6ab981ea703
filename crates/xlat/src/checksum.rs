//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` as big-endian 16-bit words to `acc` (an odd last byte is
/// padded with zero). Fold with [`fold`].
pub fn add(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        // 8 bytes as two 32-bit halves: the one's complement sum is
        // associative, so summing wider words then folding is the same.
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        acc += u64::from(u32::from_be_bytes([c[4], c[5], c[6], c[7]]));
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    acc
}

/// Folds a wide sum into 16 bits with end-around carry.
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves at most 0xffff.
    u16::try_from(acc).unwrap_or(0xffff)
}

/// The checksum of `data`: the complement of its folded sum.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(add(0, data))
}

/// The sum of an IPv4 address pair (the part of the pseudo-header that
/// changes in translation).
pub fn sum_v4_pair(a: Ipv4Addr, b: Ipv4Addr) -> u64 {
    add(add(0, &a.octets()), &b.octets())
}

/// The sum of an IPv6 address pair.
pub fn sum_v6_pair(a: Ipv6Addr, b: Ipv6Addr) -> u64 {
    add(add(0, &a.octets()), &b.octets())
}

/// The IPv4 pseudo-header sum (RFC 793 §3.1, RFC 768).
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u64 {
    sum_v4_pair(src, dst) + u64::from(protocol) + u64::from(len)
}

/// The IPv6 pseudo-header sum (RFC 8200 §8.1).
pub fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u64 {
    sum_v6_pair(src, dst) + u64::from(next_header) + u64::from(len >> 16) + u64::from(len & 0xffff)
}

/// RFC 1624 §3, equation 3: `HC' = ~(~HC + ~m + m')`, where `m` is the
/// (folded) sum of the old fields and `m'` the sum of the new ones.
pub fn update(hc: u16, old: u64, new: u64) -> u16 {
    let old = fold(old);
    let new = fold(new);
    !fold(u64::from(!hc) + u64::from(!old) + u64::from(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example_sums_to_ddf2() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        assert_eq!(
            fold(add(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])),
            0xddf2
        );
    }

    #[test]
    fn odd_length_is_padded_with_zero() {
        assert_eq!(fold(add(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    proptest! {
        #[test]
        fn incremental_update_equals_full_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 4..200),
            at in any::<prop::sample::Index>(),
            new_word: u16,
        ) {
            // Put a valid checksum in the first two bytes, then change one
            // 16-bit word and compare RFC 1624 with recomputing.
            data[0] = 0;
            data[1] = 0;
            let c = checksum(&data);
            data[..2].copy_from_slice(&c.to_be_bytes());
            let words = data.len() / 2;
            let i = 1 + at.index(words - 1);
            let old_word = u16::from_be_bytes([data[2 * i], data[2 * i + 1]]);
            data[2 * i..2 * i + 2].copy_from_slice(&new_word.to_be_bytes());
            let inc = update(c, u64::from(old_word), u64::from(new_word));
            data[0] = 0;
            data[1] = 0;
            let full = checksum(&data);
            prop_assert_eq!(inc, full);
        }
    }
}
