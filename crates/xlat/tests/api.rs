//! The contract the driver relies on: config checks name the field, labels
//! are stable and unique, the output buffer is reused.

// Test data is made by truncating counters to bytes on purpose.
#![allow(clippy::cast_possible_truncation)]

mod oracle;

use oracle::*;
use sixgate_xlat::{DropReason, EamEntry, Output, SiitConfig, Verdict};

#[test]
fn validate_names_the_field_of_a_bad_value() {
    let err = SiitConfig::default().validate().unwrap_err();
    assert_eq!(err.field, "pool6");
    let err = SiitConfig {
        lowest_ipv6_mtu: 1000,
        ..config()
    }
    .validate()
    .unwrap_err();
    assert_eq!(err.field, "lowest_ipv6_mtu");
    assert!(
        err.to_string()
            .starts_with("lowest_ipv6_mtu: 1000 is below"),
        "{err}"
    );
    let dup = EamEntry::new(
        "192.0.2.0/24".parse().unwrap(),
        "2001:db8:7::/120".parse().unwrap(),
    )
    .unwrap();
    let mut c = config();
    c.eam.push(dup);
    assert_eq!(c.validate().unwrap_err().field, "eam");
    let err = SiitConfig {
        mtu_plateaus: vec![1500, 20],
        ..config()
    }
    .validate()
    .unwrap_err();
    assert_eq!(err.field, "mtu_plateaus");
    assert!(config().validate().is_ok());
}

#[test]
fn drop_reason_labels_are_unique_snake_case_and_all_listed() {
    let labels: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
    let mut sorted = labels.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), labels.len(), "duplicate label");
    for l in &labels {
        assert!(
            l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{l}"
        );
    }
    for v in [
        Verdict::FourToSix,
        Verdict::SixToFour,
        Verdict::Hairpin,
        Verdict::IcmpError(DropReason::TtlExpired),
        Verdict::Drop(DropReason::MalformedIpv4),
    ] {
        assert!(Verdict::LABELS.contains(&v.as_str()), "{v:?}");
    }
}

#[test]
fn output_is_cleared_and_reused_between_packets() {
    let siit = siit();
    let mut out = Output::new();
    siit.translate(&udp4(H4, H6_V4, 64, false, &[0; 3000]), &mut out);
    assert_eq!(out.len(), 3);
    siit.translate(&udp6(H6, H4_V6, 64, b"x"), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out.packets().next().unwrap().len(), 29);
    assert_eq!(
        siit.translate(&[0x45, 0, 0], &mut out),
        Verdict::Drop(DropReason::MalformedIpv4)
    );
    assert!(out.is_empty());
}

#[test]
fn siit_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>(_: &T) {}
    let siit = siit();
    shared(&siit);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut out = Output::new();
                assert_eq!(
                    siit.translate(&udp6(H6, H4_V6, 64, b"x"), &mut out),
                    Verdict::SixToFour
                );
            });
        }
    });
}
