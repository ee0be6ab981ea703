//! What `sixgate addr explain|derive` prints (the CLI wiring lives in
//! `cmd/addr.rs`, outside this crate): where the IPv4 bits sit in an
//! RFC 6052 address, and IPv6 host addresses derived from IPv4 ones, either
//! by RFC 6052 embedding or by a stable hash into a /64 (the trick seed 001
//! mentions: track one address family, derive the other).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use sixgate_xlat::prefix64::{is_global_v4, Prefix64, ALLOWED_LENGTHS};

use crate::prefix::{Family, Numbers as _, Prefix};
use crate::Invalid;

/// What one field of an RFC 6052 address holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The translation prefix.
    Prefix,
    /// IPv4 bits `from..=to` (bit 0 is the most significant).
    Ipv4 { from: u8, to: u8 },
    /// Bits 64-71, which RFC 6052 §2.2 keeps zero for the RFC 4291
    /// interface identifier format.
    UOctet,
    /// What follows the IPv4 bits: zero (RFC 6052 §2.2 reserves it).
    Suffix,
}

/// Bits `first..=last` of the IPv6 address hold `part`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub first: u8,
    pub last: u8,
    pub part: Part,
}

/// RFC 6052 §2.2: the fields of an IPv4-embedded address under a prefix of
/// `len` bits, in address order; `None` for a length §2.2 does not allow.
///
/// The IPv4 address follows the prefix, skipping bits 64-71 (the u-octet);
/// whatever remains after it is the suffix. A /96 has neither u-octet nor
/// suffix: the IPv4 address fills bits 96-127.
#[must_use]
pub fn layout(len: u8) -> Option<Vec<Field>> {
    if !ALLOWED_LENGTHS.contains(&len) {
        return None;
    }
    let mut fields = vec![Field {
        first: 0,
        last: len - 1,
        part: Part::Prefix,
    }];
    if len == 96 {
        fields.push(Field {
            first: 96,
            last: 127,
            part: Part::Ipv4 { from: 0, to: 31 },
        });
        return Some(fields);
    }
    // IPv4 bits between the prefix and the u-octet: 32 for a /32 ... 0 for a /64.
    let before_u = 64 - len;
    if before_u > 0 {
        fields.push(Field {
            first: len,
            last: 63,
            part: Part::Ipv4 {
                from: 0,
                to: before_u - 1,
            },
        });
    }
    fields.push(Field {
        first: 64,
        last: 71,
        part: Part::UOctet,
    });
    let after_u = 32 - before_u;
    if after_u > 0 {
        fields.push(Field {
            first: 72,
            last: 71 + after_u,
            part: Part::Ipv4 {
                from: before_u,
                to: 31,
            },
        });
    }
    fields.push(Field {
        first: 72 + after_u,
        last: 127,
        part: Part::Suffix,
    });
    Some(fields)
}

/// The local-use prefix of RFC 8215, `64:ff9b:1::/48`.
fn is_local_use(prefix: &Prefix64) -> bool {
    let o = prefix.addr().octets();
    prefix.prefix_len() >= 48 && o[..6] == [0, 0x64, 0xff, 0x9b, 0, 1]
}

/// How the octets of an IPv4 address are named in [`explain`].
fn octets(from: u8, to: u8) -> String {
    let (first, last) = (from / 8 + 1, to / 8 + 1);
    if first == last {
        format!("octet {first}")
    } else {
        format!("octets {first}-{last}")
    }
}

/// RFC 6052 for an operator: which bits of an address under `prefix` hold
/// the prefix, the IPv4 address, the u-octet and the suffix (§2.2), which
/// IPv4 addresses the prefix may carry (§3.1), and `example` embedded
/// (§2.2) and extracted again (§2.3), with the bytes of each field.
#[must_use]
pub fn explain(prefix: &Prefix64, example: Ipv4Addr) -> String {
    let len = prefix.prefix_len();
    let mut out = String::new();
    let kind = if prefix.is_well_known() {
        "the well-known prefix (RFC 6052 §2.1)"
    } else if is_local_use(prefix) {
        "a network-specific prefix from the local-use 64:ff9b:1::/48 (RFC 8215)"
    } else {
        "a network-specific prefix (RFC 6052 §2.2)"
    };
    let _ = writeln!(out, "prefix {prefix}: {kind}");
    // `Prefix64` only holds lengths that `layout` accepts.
    let fields = layout(len).unwrap_or_default();
    for field in &fields {
        let what = match field.part {
            Part::Prefix => "the prefix".to_owned(),
            Part::Ipv4 { from, to } => {
                let mut s = format!(
                    "IPv4 bits {from}-{to} ({} of the IPv4 address)",
                    octets(from, to)
                );
                if len == 96 {
                    s.push_str("; a /96 has no u-octet and no suffix");
                }
                s
            }
            Part::UOctet => "the u-octet, always zero (RFC 6052 §2.2, for the RFC 4291 interface identifier format)".to_owned(),
            Part::Suffix => "the suffix, zero".to_owned(),
        };
        let _ = writeln!(out, "bits {}-{}: {what}", field.first, field.last);
    }
    if prefix.is_well_known() {
        out.push_str(
            "carries: global IPv4 addresses only (RFC 6052 §3.1): no private, shared, loopback, link-local, documentation, benchmarking, multicast or reserved ones; sixgate refuses them under this prefix\n",
        );
    } else {
        out.push_str(
            "carries: any IPv4 address (the RFC 6052 §3.1 restriction is for the well-known prefix only)\n",
        );
    }
    let embedded = prefix.embed_unchecked(example);
    let _ = write!(out, "example: {example} -> {embedded}");
    if prefix.is_well_known() && !is_global_v4(example) {
        let _ = write!(
            out,
            " (for illustration only: {example} is not a global IPv4 address, so sixgate refuses it under this prefix, RFC 6052 §3.1)"
        );
    }
    out.push('\n');
    // The bytes of each field, with its name below (every field of every
    // allowed length starts and ends on a byte boundary).
    let bytes = embedded.octets();
    let mut top = Vec::new();
    let mut bottom = Vec::new();
    for field in &fields {
        let hex: Vec<String> = bytes[usize::from(field.first / 8)..=usize::from(field.last / 8)]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let hex = hex.join(" ");
        let name = match field.part {
            Part::Prefix => "prefix",
            Part::Ipv4 { .. } => "ipv4",
            Part::UOctet => "u",
            Part::Suffix => "suffix",
        };
        let width = hex.len().max(name.len());
        top.push(format!("{hex:<width$}"));
        bottom.push(format!("{name:<width$}"));
    }
    let _ = writeln!(out, "  {}", top.join(" | ").trim_end());
    let _ = writeln!(out, "  {}", bottom.join(" | ").trim_end());
    match prefix.extract(embedded) {
        Some(back) => {
            let _ = writeln!(out, "extract: {embedded} -> {back}");
        }
        None => {
            let _ = writeln!(out, "extract: {embedded} is not inside {prefix}");
        }
    }
    out
}

/// SplitMix64's finaliser: a bijection on 64-bit values, so distinct IPv4
/// addresses never share an interface identifier.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The interface identifiers of the IANA registry that RFC 5453 created:
/// the subnet-router anycast identifier (all zero, RFC 4291), the reserved
/// subnet anycast identifiers `fdff:ffff:ffff:ff80`-`fdff:ffff:ffff:ffff`
/// (RFC 2526), and those of the IANA Ethernet block,
/// `0200:5eff:fe00:0000`-`0200:5eff:feff:ffff` (RFC 4291, RFC 6543).
const fn reserved_iid(iid: u64) -> bool {
    iid == 0
        || (iid >= 0xfdff_ffff_ffff_ff80 && iid <= 0xfdff_ffff_ffff_ffff)
        || (iid >= 0x0200_5eff_fe00_0000 && iid <= 0x0200_5eff_feff_ffff)
}

/// The tag in the high half of the hashed value, `"sixg"` in ASCII: it
/// keeps this use of the mix apart from any other.
const HASH_TAG: u64 = 0x7369_7867_0000_0000;

/// A stable IPv6 host address in the /64 `net` for `v4` (seed 001: track
/// the IPv4 address, derive the IPv6 one). The interface identifier is
/// `mix(0x73697867_00000000 | v4)`, `mix` being SplitMix64's finaliser,
/// mixed again while it is an RFC 5453 reserved identifier. The mix is a
/// bijection, so distinct IPv4 addresses never share an address; the result
/// is the same on every run and every machine.
///
/// The planner itself does not number hosts this way: it gives named nodes
/// and gateways the uplink addresses from `::10` up. This is for hosts
/// whose IPv4 address is what you track.
pub fn hashed_host(net: &Prefix, v4: Ipv4Addr) -> Result<Ipv6Addr, Invalid> {
    if net.family() != Family::V6 || net.prefix_len() != 64 {
        return Err(Invalid::new(
            "prefix",
            format!("{net} is not an IPv6 /64: a derived host address needs the 64 bits of an interface identifier"),
        ));
    }
    let mut iid = mix(HASH_TAG | u64::from(u32::from(v4)));
    // Cycle walking: the tagged inputs are never reserved themselves, so
    // this keeps the mapping one-to-one.
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

    /// RFC 6052 §2.4, the table of examples (192.0.2.33 under each length).
    const RFC6052_TABLE: [(&str, &str); 6] = [
        ("2001:db8::/32", "2001:db8:c000:221::"),
        ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
        ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
        ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
        ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
        ("2001:db8:122:344::/96", "2001:db8:122:344::c000:221"),
    ];

    #[test]
    fn layout_covers_all_128_bits_with_32_ipv4_bits_for_every_length() {
        for len in ALLOWED_LENGTHS {
            let fields = layout(len).unwrap();
            let mut next = 0u16;
            let mut v4_bits = 0u16;
            for f in &fields {
                assert_eq!(u16::from(f.first), next, "/{len}: {fields:?}");
                assert!(f.last >= f.first);
                next = u16::from(f.last) + 1;
                if let Part::Ipv4 { from, to } = f.part {
                    assert_eq!(to - from, f.last - f.first, "/{len}");
                    v4_bits += u16::from(to - from) + 1;
                }
                if f.part == Part::UOctet {
                    assert_eq!((f.first, f.last), (64, 71));
                }
            }
            assert_eq!(next, 128, "/{len}");
            assert_eq!(v4_bits, 32, "/{len}");
            assert_eq!(fields.iter().any(|f| f.part == Part::UOctet), len != 96);
        }
        assert_eq!(layout(33), None);
        assert_eq!(layout(128), None);
    }

    #[test]
    fn a_32_has_all_ipv4_bits_before_the_u_octet() {
        let fields = layout(32).unwrap();
        assert_eq!(
            fields,
            vec![
                Field {
                    first: 0,
                    last: 31,
                    part: Part::Prefix
                },
                Field {
                    first: 32,
                    last: 63,
                    part: Part::Ipv4 { from: 0, to: 31 }
                },
                Field {
                    first: 64,
                    last: 71,
                    part: Part::UOctet
                },
                Field {
                    first: 72,
                    last: 127,
                    part: Part::Suffix
                },
            ]
        );
    }

    #[test]
    fn explain_places_the_ipv4_bits_around_the_u_octet() {
        let p48 = Prefix64::new("2001:db8:122::".parse().unwrap(), 48).unwrap();
        let text = explain(&p48, Ipv4Addr::new(192, 0, 2, 33));
        for line in [
            "prefix 2001:db8:122::/48: a network-specific prefix (RFC 6052 §2.2)\n",
            "bits 0-47: the prefix\n",
            "bits 48-63: IPv4 bits 0-15 (octets 1-2 of the IPv4 address)\n",
            "bits 64-71: the u-octet, always zero",
            "bits 72-87: IPv4 bits 16-31 (octets 3-4 of the IPv4 address)\n",
            "bits 88-127: the suffix, zero\n",
            "carries: any IPv4 address",
            "example: 192.0.2.33 -> 2001:db8:122:c000:2:2100::\n",
            "  20 01 0d b8 01 22 | c0 00 | 00 | 02 21 | 00 00 00 00 00\n",
            "  prefix            | ipv4  | u  | ipv4  | suffix\n",
            "extract: 2001:db8:122:c000:2:2100:: -> 192.0.2.33\n",
        ] {
            assert!(text.contains(line), "{line:?} missing in\n{text}");
        }
    }

    #[test]
    fn explain_gives_the_rfc6052_table_for_every_length() {
        let v4 = Ipv4Addr::new(192, 0, 2, 33);
        for (prefix, expected) in RFC6052_TABLE {
            let text = explain(&prefix.parse().unwrap(), v4);
            let example = format!("example: 192.0.2.33 -> {expected}\n");
            assert!(text.contains(&example), "{prefix}: {text}");
            let back = format!("extract: {expected} -> 192.0.2.33\n");
            assert!(text.contains(&back), "{prefix}: {text}");
        }
    }

    #[test]
    fn explain_states_the_well_known_restriction() {
        let text = explain(&WELL_KNOWN, Ipv4Addr::new(192, 0, 2, 33));
        assert!(
            text.starts_with("prefix 64:ff9b::/96: the well-known prefix (RFC 6052 §2.1)\n"),
            "{text}"
        );
        assert!(text.contains("bits 96-127: IPv4 bits 0-31 (octets 1-4 of the IPv4 address); a /96 has no u-octet and no suffix\n"), "{text}");
        assert!(
            text.contains("carries: global IPv4 addresses only (RFC 6052 §3.1)"),
            "{text}"
        );
        assert!(text.contains("example: 192.0.2.33 -> 64:ff9b::c000:221 (for illustration only: 192.0.2.33 is not a global IPv4 address"), "{text}");
        let text = explain(&WELL_KNOWN, Ipv4Addr::new(93, 184, 216, 34));
        assert!(
            text.contains("example: 93.184.216.34 -> 64:ff9b::5db8:d822\n"),
            "{text}"
        );
        let local: Prefix64 = "64:ff9b:1::/96".parse().unwrap();
        let text = explain(&local, Ipv4Addr::new(192, 0, 2, 33));
        assert!(
            text.contains("local-use 64:ff9b:1::/48 (RFC 8215)"),
            "{text}"
        );
        assert!(!text.contains("for illustration only"), "{text}");
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
    fn reserved_identifiers_are_those_of_rfc5453() {
        for iid in [
            0,
            0xfdff_ffff_ffff_ff80,
            0xfdff_ffff_ffff_ffff,
            0x0200_5eff_fe00_0000,
            0x0200_5eff_fe00_5213,
            0x0200_5eff_feff_ffff,
        ] {
            assert!(reserved_iid(iid), "{iid:#x}");
        }
        for iid in [
            1,
            0xfdff_ffff_ffff_ff7f,
            0xfe00_0000_0000_0000,
            u64::MAX,
            0x0200_5eff_fdff_ffff,
            0x0200_5eff_ff00_0000,
        ] {
            assert!(!reserved_iid(iid), "{iid:#x}");
        }
        // The tagged inputs are never reserved: cycle walking stays one-to-one.
        assert!(!reserved_iid(HASH_TAG) && !reserved_iid(HASH_TAG | u64::from(u32::MAX)));
    }

    /// Every IPv4 address, once (about 8 s in a release build, far longer
    /// in a debug one): `cargo test -p sixgate-plan --release --lib --
    /// --ignored every_ipv4`. docs/plan.md quotes what it checks.
    #[test]
    #[ignore = "walks all 2^32 IPv4 addresses; run with --release"]
    fn every_ipv4_hashes_past_the_planners_host_numbers_and_no_reserved_identifier() {
        let mut smallest = u64::MAX;
        for v4 in 0..=u32::MAX {
            let iid = mix(HASH_TAG | u64::from(v4));
            assert!(
                !reserved_iid(iid),
                "{} needs a second mix",
                Ipv4Addr::from(v4)
            );
            smallest = smallest.min(iid);
        }
        assert_eq!(smallest, 0xbf9b_a0d4);
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
            assert!(seen.insert(mix(HASH_TAG | u64::from(i))));
        }
    }
}
