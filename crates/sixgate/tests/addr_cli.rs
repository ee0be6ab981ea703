//! `sixgate addr explain` and `sixgate addr derive`, run as the real binary.
//!
//! The expected values are worked out here from the rules themselves (the
//! RFC 6052 §2.2 layout, the §2.4 table, the hash rule docs/plan.md states),
//! not by calling `sixgate_plan::derive`.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

use common::sixgate_bin;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn sixgate(args: &[&str]) -> Run {
    let out = Command::new(sixgate_bin())
        .args(args)
        .output()
        .expect("run sixgate");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The value of the line of `text` that starts with `label`.
fn line<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no line starting {label:?} in\n{text}"))
}

/// RFC 6052 §2.4: 192.0.2.33 under each prefix length.
const RFC6052_TABLE: [(&str, &str); 6] = [
    ("2001:db8::/32", "2001:db8:c000:221::"),
    ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
    ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
    ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
    ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
    ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
];

/// The bit lines RFC 6052 §2.2's figure gives for each length (bits
/// numbered from 0, the most significant): prefix, IPv4 bits before the
/// u-octet, the u-octet, the IPv4 bits after it, the suffix.
fn rfc6052_layout(len: u8) -> Vec<String> {
    let u = "the u-octet, always zero";
    let rows: Vec<(u8, u8, String)> = match len {
        32 => vec![
            (32, 63, "IPv4 bits 0-31 (octets 1-4".into()),
            (64, 71, u.into()),
            (72, 127, "the suffix, zero".into()),
        ],
        40 => vec![
            (40, 63, "IPv4 bits 0-23 (octets 1-3".into()),
            (64, 71, u.into()),
            (72, 79, "IPv4 bits 24-31 (octet 4".into()),
            (80, 127, "the suffix, zero".into()),
        ],
        48 => vec![
            (48, 63, "IPv4 bits 0-15 (octets 1-2".into()),
            (64, 71, u.into()),
            (72, 87, "IPv4 bits 16-31 (octets 3-4".into()),
            (88, 127, "the suffix, zero".into()),
        ],
        56 => vec![
            (56, 63, "IPv4 bits 0-7 (octet 1".into()),
            (64, 71, u.into()),
            (72, 95, "IPv4 bits 8-31 (octets 2-4".into()),
            (96, 127, "the suffix, zero".into()),
        ],
        64 => vec![
            (64, 71, u.into()),
            (72, 103, "IPv4 bits 0-31 (octets 1-4".into()),
            (104, 127, "the suffix, zero".into()),
        ],
        96 => vec![(96, 127, "IPv4 bits 0-31 (octets 1-4".into())],
        _ => unreachable!(),
    };
    let mut out = vec![format!("bits 0-{}: the prefix", len - 1)];
    out.extend(
        rows.into_iter()
            .map(|(a, b, what)| format!("bits {a}-{b}: {what}")),
    );
    out
}

/// RFC 6052 §2.2 embedding by arithmetic on the 128-bit number: the IPv4
/// bits fill the prefix up to bit 63, skip the u-octet (bits 64-71) and
/// continue from bit 72; a /96 takes them in bits 96-127.
fn rfc6052_embed(prefix: Ipv6Addr, len: u32, v4: Ipv4Addr) -> Ipv6Addr {
    let p = u128::from(prefix);
    let v4 = u64::from(u32::from(v4));
    if len == 96 {
        return Ipv6Addr::from(p | u128::from(v4));
    }
    let before = 64 - len; // IPv4 bits before the u-octet
    let after = 32 - before; // IPv4 bits after it
    let high = v4 >> after;
    let low = v4 & ((1u64 << after) - 1);
    // Bits 0-63 of the address are the top half; bit 72 + after - 1 is the
    // last IPv4 bit, so `low` ends (56 - after) bits above the bottom.
    Ipv6Addr::from(p | (u128::from(high) << 64) | (u128::from(low) << (56 - after)))
}

/// SplitMix64's finaliser, as published with SplitMix64.
fn splitmix64_finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hashed host rule of docs/plan.md: interface identifier =
/// finalize(0x73697867_00000000 | ipv4), finalized again while it is an
/// RFC 5453 reserved identifier.
fn hashed(net: Ipv6Addr, v4: Ipv4Addr) -> Ipv6Addr {
    let reserved = |iid: u64| {
        iid == 0
            || (0xfdff_ffff_ffff_ff80..=0xfdff_ffff_ffff_ffff).contains(&iid)
            || (0x0200_5eff_fe00_0000..=0x0200_5eff_feff_ffff).contains(&iid)
    };
    let mut iid = splitmix64_finalize(0x7369_7867_0000_0000 | u64::from(u32::from(v4)));
    while reserved(iid) {
        iid = splitmix64_finalize(iid);
    }
    Ipv6Addr::from(u128::from(net) | u128::from(iid))
}

const SAMPLE_V4: [&str; 8] = [
    "192.0.2.33",
    "0.0.0.0",
    "255.255.255.255",
    "10.1.2.3",
    "93.184.216.34",
    "198.51.100.7",
    "172.31.255.1",
    "1.2.3.4",
];

#[test]
fn explain_shows_the_rfc6052_layout_for_every_prefix_length() {
    for (prefix, _) in RFC6052_TABLE {
        let len: u8 = prefix.split_once('/').unwrap().1.parse().unwrap();
        let run = sixgate(&["addr", "explain", "--prefix", prefix]);
        assert!(run.ok, "{prefix}: {}", run.stderr);
        let bits: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| l.starts_with("bits "))
            .collect();
        let expected = rfc6052_layout(len);
        assert_eq!(bits.len(), expected.len(), "{prefix}:\n{}", run.stdout);
        for (got, want) in bits.iter().zip(&expected) {
            assert!(
                got.starts_with(want.as_str()),
                "{prefix}: {got:?} is not {want:?}"
            );
        }
        assert_eq!(
            run.stdout.contains("bits 64-71: the u-octet"),
            len != 96,
            "{prefix}:\n{}",
            run.stdout
        );
        assert!(
            run.stdout
                .starts_with(&format!("prefix {prefix}: a network-specific prefix")),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("carries: any IPv4 address"),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn explain_embeds_and_extracts_the_rfc6052_table_example() {
    for (prefix, expected) in RFC6052_TABLE {
        let expected: Ipv6Addr = expected.parse().unwrap();
        // The default example is the RFC's own 192.0.2.33.
        let run = sixgate(&["addr", "explain", "-p", prefix]);
        assert!(run.ok, "{prefix}: {}", run.stderr);
        assert_eq!(
            line(&run.stdout, "example: "),
            format!("192.0.2.33 -> {expected}"),
            "{prefix}"
        );
        assert_eq!(
            line(&run.stdout, "extract: "),
            format!("{expected} -> 192.0.2.33"),
            "{prefix}"
        );
        // The byte line is the address, field by field.
        let bytes: Vec<u8> = run
            .stdout
            .lines()
            .find(|l| l.starts_with("  ") && l.contains(" | "))
            .unwrap()
            .split(|c: char| c == '|' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| u8::from_str_radix(s, 16).unwrap())
            .collect();
        assert_eq!(bytes, expected.octets(), "{prefix}:\n{}", run.stdout);
        // And the printed address goes back through `addr extract`.
        let back = sixgate(&["addr", "extract", &expected.to_string(), "-p", prefix]);
        assert_eq!(back.stdout.trim(), "192.0.2.33", "{prefix}");
    }
}

#[test]
fn explain_round_trips_any_ipv4_for_every_prefix_length() {
    for (prefix, _) in RFC6052_TABLE {
        let (addr, len) = prefix.split_once('/').unwrap();
        let (addr, len): (Ipv6Addr, u32) = (addr.parse().unwrap(), len.parse().unwrap());
        for v4 in SAMPLE_V4 {
            let run = sixgate(&["addr", "explain", "-p", prefix, v4]);
            assert!(run.ok, "{prefix} {v4}: {}", run.stderr);
            let embedded = rfc6052_embed(addr, len, v4.parse().unwrap());
            assert_eq!(
                line(&run.stdout, "example: "),
                format!("{v4} -> {embedded}")
            );
            assert_eq!(
                line(&run.stdout, "extract: "),
                format!("{embedded} -> {v4}")
            );
        }
    }
}

#[test]
fn explain_of_the_well_known_prefix_states_the_section_3_1_restriction() {
    let run = sixgate(&["addr", "explain"]);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("prefix 64:ff9b::/96: the well-known prefix (RFC 6052 §2.1)\n"),
        "{}",
        run.stdout
    );
    assert!(
        line(&run.stdout, "carries: ").starts_with("global IPv4 addresses only (RFC 6052 §3.1)"),
        "{}",
        run.stdout
    );
    // 192.0.2.33 is documentation space: shown, and said to be refused.
    let example = line(&run.stdout, "example: ");
    assert!(
        example.starts_with("192.0.2.33 -> 64:ff9b::c000:221 (for illustration only"),
        "{example}"
    );
    assert!(example.contains("not a global IPv4 address"), "{example}");
    // A global address carries no such note.
    let run = sixgate(&["addr", "explain", "93.184.216.34"]);
    assert_eq!(
        line(&run.stdout, "example: "),
        "93.184.216.34 -> 64:ff9b::5db8:d822"
    );
    // A prefix from the RFC 8215 local-use space is network-specific.
    let run = sixgate(&["addr", "explain", "-p", "64:ff9b:1::/96", "10.0.0.1"]);
    assert!(
        run.stdout.starts_with(
            "prefix 64:ff9b:1::/96: a network-specific prefix from the local-use 64:ff9b:1::/48 (RFC 8215)"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(
        line(&run.stdout, "example: "),
        "10.0.0.1 -> 64:ff9b:1::a00:1"
    );
}

#[test]
fn derive_nat64_prefix_embeds_by_rfc6052() {
    for (prefix, expected) in RFC6052_TABLE {
        let run = sixgate(&["addr", "derive", "--nat64-prefix", prefix, "192.0.2.33"]);
        assert!(run.ok, "{prefix}: {}", run.stderr);
        let got: Ipv6Addr = run.stdout.trim().parse().unwrap();
        assert_eq!(got, expected.parse::<Ipv6Addr>().unwrap(), "{prefix}");
        // Several addresses: one line each, in order.
        let (addr, len) = prefix.split_once('/').unwrap();
        let (addr, len): (Ipv6Addr, u32) = (addr.parse().unwrap(), len.parse().unwrap());
        let mut args = vec!["addr", "derive", "--nat64-prefix", prefix];
        args.extend(SAMPLE_V4);
        let run = sixgate(&args);
        assert!(run.ok, "{prefix}: {}", run.stderr);
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines.len(), SAMPLE_V4.len());
        for (l, v4) in lines.iter().zip(SAMPLE_V4) {
            assert_eq!(
                l.parse::<Ipv6Addr>().unwrap(),
                rfc6052_embed(addr, len, v4.parse().unwrap()),
                "{prefix} {v4}"
            );
        }
    }
}

#[test]
fn derive_nat64_prefix_keeps_non_global_ipv4_out_of_the_well_known_prefix() {
    let run = sixgate(&[
        "addr",
        "derive",
        "--nat64-prefix",
        "64:ff9b::/96",
        "93.184.216.34",
    ]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "64:ff9b::5db8:d822");
    // One refused address among good ones: nothing is printed.
    let run = sixgate(&[
        "addr",
        "derive",
        "--nat64-prefix",
        "64:ff9b::/96",
        "93.184.216.34",
        "10.0.0.1",
    ]);
    assert!(!run.ok);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("10.0.0.1 is not a global IPv4 address"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("RFC 6052 §3.1"), "{}", run.stderr);
}

#[test]
fn derive_uplink_hashes_the_ipv4_address_into_the_64() {
    // Two values computed apart in Python (arbitrary-precision integers),
    // besides the Rust rule above.
    let run = sixgate(&[
        "addr",
        "derive",
        "--uplink",
        "2001:db8:0:1::/64",
        "10.1.2.3",
        "10.1.2.4",
    ]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "2001:db8:0:1:8d17:2f47:dff3:c044\n2001:db8:0:1:c47b:4a1a:933a:8bf\n"
    );
    for net in ["2001:db8:101:80::/64", "2001:db8:102:40::/64", "fd00::/64"] {
        let base: Ipv6Addr = net.split_once('/').unwrap().0.parse().unwrap();
        let mut args = vec!["addr", "derive", "--uplink", net];
        args.extend(SAMPLE_V4);
        let run = sixgate(&args);
        assert!(run.ok, "{net}: {}", run.stderr);
        let got: Vec<Ipv6Addr> = run.stdout.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(got.len(), SAMPLE_V4.len());
        for (addr, v4) in got.iter().zip(SAMPLE_V4) {
            assert_eq!(*addr, hashed(base, v4.parse().unwrap()), "{net} {v4}");
            // Inside the /64, with the prefix untouched.
            assert_eq!(
                u128::from(*addr) >> 64,
                u128::from(base) >> 64,
                "{net} {v4}"
            );
        }
        let mut distinct = got.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), got.len(), "{net}: {got:?}");
    }
    // Stable: the same answer on every run, and no §3.1 rule here (the
    // uplink is not a translation prefix).
    let a = sixgate(&["addr", "derive", "--uplink", "2001:db8::/64", "192.168.1.1"]);
    let b = sixgate(&["addr", "derive", "--uplink", "2001:db8::/64", "192.168.1.1"]);
    assert!(a.ok, "{}", a.stderr);
    assert_eq!(a.stdout, b.stdout);
}

/// Runs `args`, which must fail with exit code 1, print nothing, and say
/// why in one line that contains every one of `needles`.
fn refused(args: &[&str], needles: &[&str]) {
    let run = sixgate(args);
    assert!(!run.ok, "{args:?} succeeded: {}", run.stdout);
    assert_eq!(run.stdout, "", "{args:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "{args:?}: {needle:?} not in {}",
            run.stderr
        );
    }
}

#[test]
fn bad_prefixes_are_refused_in_one_line_naming_them() {
    refused(
        &["addr", "explain", "-p", "2001:db8::/33"],
        &["--prefix `2001:db8::/33`", "/32, /40, /48, /56, /64, /96"],
    );
    refused(
        &["addr", "explain", "-p", "2001:db8::"],
        &["`2001:db8::`", "ADDRESS/LENGTH"],
    );
    refused(
        &["addr", "explain", "-p", "2001:db8::1/64"],
        &["`2001:db8::1/64`", "bits after /64 must be zero"],
    );
    refused(
        &["addr", "explain", "-p", "2001:db8:0:0:ff00::/96"],
        &["`2001:db8:0:0:ff00::/96`", "u-octet"],
    );
    refused(
        &[
            "addr",
            "derive",
            "--nat64-prefix",
            "64:ff9b::/97",
            "192.0.2.1",
        ],
        &["--nat64-prefix `64:ff9b::/97`", "RFC 6052 §2.2"],
    );
    refused(
        &["addr", "derive", "--uplink", "2001:db8::/56", "192.0.2.1"],
        &["2001:db8::/56 is not an IPv6 /64"],
    );
    refused(
        &["addr", "derive", "--uplink", "10.0.0.0/24", "192.0.2.1"],
        &["--uplink `10.0.0.0/24`", "IPv4 prefix"],
    );
    refused(
        &["addr", "derive", "--uplink", "2001:db8::1/64", "192.0.2.1"],
        &["--uplink `2001:db8::1/64`", "did you mean 2001:db8::/64"],
    );
    refused(
        &["addr", "derive", "--uplink", "uplink", "192.0.2.1"],
        &["--uplink `uplink`"],
    );
}

#[test]
fn bad_ipv4_addresses_are_refused_in_one_line_naming_them() {
    refused(
        &["addr", "explain", "192.0.2.256"],
        &["`192.0.2.256` is not an IPv4 address"],
    );
    refused(
        &["addr", "explain", "2001:db8::1"],
        &["`2001:db8::1` is an IPv6 address"],
    );
    refused(
        &[
            "addr",
            "derive",
            "--uplink",
            "2001:db8::/64",
            "10.0.0.1",
            "10.0.0",
        ],
        &["`10.0.0` is not an IPv4 address"],
    );
    refused(
        &[
            "addr",
            "derive",
            "--nat64-prefix",
            "64:ff9b:1::/96",
            "::ffff:10.0.0.1",
        ],
        &["`::ffff:10.0.0.1` is an IPv6 address"],
    );
}

#[test]
fn derive_needs_exactly_one_way() {
    for args in [
        &["addr", "derive", "192.0.2.1"][..],
        &[
            "addr",
            "derive",
            "--uplink",
            "2001:db8::/64",
            "--nat64-prefix",
            "64:ff9b:1::/96",
            "192.0.2.1",
        ][..],
    ] {
        let run = sixgate(args);
        assert!(!run.ok, "{args:?}");
        assert!(
            run.stderr.contains("--uplink") && run.stderr.contains("--nat64-prefix"),
            "{args:?}: {}",
            run.stderr
        );
    }
}
