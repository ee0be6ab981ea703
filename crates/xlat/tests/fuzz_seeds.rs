//! Writes the seed corpus of the fuzz targets (`fuzz/seeds/`): valid packets
//! of every kind the translator handles, built by etherparse, so that the
//! fuzzers start past the address checks. Run on demand:
//! `cargo test -p sixgate-xlat --test fuzz_seeds -- --ignored`.

mod oracle;

use oracle::*;

#[test]
#[ignore = "writes files; run on demand to refresh fuzz/seeds"]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    std::fs::create_dir_all(&dir).unwrap();
    let inner4 = udp4(H6_V4, H4, 63, true, &[1; 40]);
    let inner6 = udp6(H4_V6, H6, 63, &[1; 40]);
    let seeds = [
        ("udp4", udp4(H4, H6_V4, 64, true, &[3; 32])),
        ("udp4_df0_big", udp4(H4, H6_V4, 64, false, &[3; 2000])),
        ("udp4_ttl1", udp4(H4, H6_V4, 1, true, &[3; 32])),
        ("tcp4", tcp4(H4, H6_V4, &[4; 100])),
        ("echo4", echo4(H4, H6_V4, &[5; 56])),
        (
            "frag_needed4",
            icmp4_raw(H4, H6_V4, 3, 4, [0, 0, 5, 0xdc], &inner4),
        ),
        (
            "param_problem4",
            icmp4_raw(H4, H6_V4, 12, 0, [8, 0, 0, 0], &inner4),
        ),
        ("udp6", udp6(H6, H4_V6, 64, &[6; 32])),
        ("udp6_hop1", udp6(H6, H4_V6, 1, &[6; 32])),
        ("tcp6", tcp6(H6, H4_V6, &[7; 100])),
        ("echo6", echo6(H6, H4_V6, &[8; 56])),
        (
            "ptb6",
            icmp6_raw(H6, H4_V6, 2, 0, 1400u32.to_be_bytes(), &inner6),
        ),
        (
            "param_problem6",
            icmp6_raw(H6, H4_V6, 4, 0, 7u32.to_be_bytes(), &inner6),
        ),
        (
            "hairpin6",
            udp6(H6, "2001:db8:64::c000:220", 64, b"hairpin"),
        ),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
