//! What `sixgate addr explain|derive` needs (the CLI wiring lives in
//! `cmd/addr.rs`, outside this crate): where the IPv4 bits sit in an
//! RFC 6052 address, and IPv6 host addresses derived from IPv4 ones, either
//! by RFC 6052 embedding or by a stable hash into a /64 (the trick seed 001
//! mentions: track one address family, derive the other).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use sixgate_xlat::prefix64::Prefix64;

use crate::prefix::{Family, Numbers as _, Prefix};
use crate::Invalid;

/// RFC 6052 §2.2: which bits of the IPv6 address hold what, for the
/// prefix length of `prefix`, with an example.
#[must_use]
pub fn explain(prefix: &Prefix64, example: Ipv4Addr) -> String {
    let len = prefix.prefix_len();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "prefix {}/{len}{}",
        prefix.addr(),
        if prefix.is_well_known() {
            " (the well-known prefix, RFC 6052 §2.1)"
        } else {
            " (a network-specific prefix)"
        }
    );
    // (first IPv4 bit, IPv4 bits before the u-octet) per RFC 6052 §2.2.
    let before_u = match len {
        32 => 32,
        40 => 24,
        48 => 16,
        56 => 8,
        _ => 0,
    };
    let _ = writeln!(out, "bits 0-{}: the prefix", len - 1);
    if len == 96 {
        out.push_str("bits 96-127: the IPv4 address (no u-octet and no suffix with a /96)\n");
    } else {
        if before_u > 0 {
            let _ = writeln!(
                out,
                "bits {len}-63: the first {} bits of the IPv4 address",
                before_u
            );
        }
        out.push_str("bits 64-71: the u-octet, always zero (RFC 4291 u bit)\n");
        let after = 32 - before_u;
        let _ = writeln!(
            out,
            "bits 72-{}: the {} IPv4 bits",
            71 + after,
            if before_u > 0 { "remaining" } else { "32" }
        );
        let _ = writeln!(out, "bits {}-127: the suffix, zero", 72 + after);
    }
    let _ = writeln!(
        out,
        "example: {example} -> {}",
        prefix.embed_unchecked(example)
    );
    out
}

/// SplitMix64's finaliser: a bijection on 64-bit values, so distinct IPv4
/// addresses never share an interface identifier.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// RFC 5453 reserved interface identifiers: the subnet-router anycast (all
/// zero) and the reserved subnet anycast range.
const fn reserved_iid(iid: u64) -> bool {
    iid == 0 || iid >= 0xfdff_ffff_ffff_ff80
}

/// A stable IPv6 host address in the /64 `net` for `v4`: the interface
/// identifier is a fixed bijective mix of the IPv4 address, the same on
/// every run and every machine, never a reserved identifier.
pub fn hashed_host(net: &Prefix, v4: Ipv4Addr) -> Result<Ipv6Addr, Invalid> {
    if net.family() != Family::V6 || net.prefix_len() != 64 {
        return Err(Invalid::new(
            "prefix",
            format!("{net} is not an IPv6 /64: a derived host address needs the 64 bits of an interface identifier"),
        ));
    }
    // A fixed tag in the high half keeps the input apart from other uses.
    let mut iid = mix(0x7369_7867_0000_0000 | u64::from(u32::from(v4)));
    while reserved_iid(iid) {
        iid = mix(iid);
    }
    Ok(Ipv6Addr::from(net.start() | u128::from(iid)))
}

/// An IPv6 address for `v4` by RFC 6052 embedding under `prefix`.
pub fn embedded_host(prefix: &Prefix64, v4: Ipv4Addr) -> Result<Ipv6Addr, Invalid> {
    prefix.embed(v4).map_err(|e| Invalid::new("ipv4", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sixgate_xlat::prefix64::WELL_KNOWN;

    #[test]
    fn explain_places_the_ipv4_bits_around_the_u_octet() {
        let p48 = Prefix64::new("2001:db8:122::".parse().unwrap(), 48).unwrap();
        let text = explain(&p48, Ipv4Addr::new(192, 0, 2, 33));
        assert!(
            text.contains("bits 48-63: the first 16 bits of the IPv4 address"),
            "{text}"
        );
        assert!(
            text.contains("bits 72-87: the remaining IPv4 bits"),
            "{text}"
        );
        assert!(text.contains("bits 88-127: the suffix, zero"), "{text}");
        // RFC 6052 §2.4 table.
        assert!(
            text.contains("example: 192.0.2.33 -> 2001:db8:122:c000:2:2100::"),
            "{text}"
        );
        let text = explain(&WELL_KNOWN, Ipv4Addr::new(192, 0, 2, 33));
        assert!(text.contains("bits 96-127: the IPv4 address"), "{text}");
        assert!(text.contains("64:ff9b::c000:221"), "{text}");
    }

    #[test]
    fn hashed_hosts_are_stable_and_inside_the_64() {
        let net: Prefix = "2001:db8:0:1::/64".parse().unwrap();
        let a = hashed_host(&net, Ipv4Addr::new(10, 1, 2, 3)).unwrap();
        // Fixed forever: other tools and stored records rely on it.
        assert_eq!(a, hashed_host(&net, Ipv4Addr::new(10, 1, 2, 3)).unwrap());
        // The SplitMix64 finaliser of 0x73697867_0a010203, computed apart
        // (Python, arbitrary precision) from this code.
        assert_eq!(a.to_string(), "2001:db8:0:1:8d17:2f47:dff3:c044");
        assert!(net.contains_prefix(&crate::prefix::containing(Family::V6, u128::from(a), 128)));
        assert_ne!(a, hashed_host(&net, Ipv4Addr::new(10, 1, 2, 4)).unwrap());
    }

    #[test]
    fn hashed_hosts_need_a_64() {
        let net: Prefix = "2001:db8::/56".parse().unwrap();
        let e = hashed_host(&net, Ipv4Addr::LOCALHOST).unwrap_err();
        assert_eq!(e.key, "prefix");
    }

    #[test]
    fn the_mix_is_a_bijection_on_ipv4_inputs() {
        // Distinct inputs, distinct outputs, for a sample across the space.
        let mut seen = std::collections::HashSet::new();
        for i in (0..u32::MAX).step_by(65_521) {
            assert!(seen.insert(mix(0x7369_7867_0000_0000 | u64::from(i))));
        }
    }
}
