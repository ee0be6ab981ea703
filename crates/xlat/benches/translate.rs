//! Translation cost per packet, both directions: UDP with a 64-byte IP
//! packet and TCP with a 1500-byte IP packet. Run with
//! `cargo bench -p sixgate-xlat --bench translate`. Two more cases show the
//! slow paths: a DF=0 IPv4 packet fragmented to 1280, and a Packet Too Big
//! whose inner packet is translated too.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::PacketBuilder;
use sixgate_xlat::{EamEntry, Output, Siit, SiitConfig, Verdict};

const H6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];
const H4_V6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0x64, 0, 0, 0, 0, 0, 0, 198, 51, 100, 7,
];
const H6_V4: [u8; 4] = [192, 0, 2, 16];
const H4: [u8; 4] = [198, 51, 100, 7];

fn siit() -> Siit {
    Siit::new(SiitConfig {
        pool6: Some("2001:db8:64::/96".parse().expect("pool6")),
        eam: vec![EamEntry::new(
            "192.0.2.0/24".parse().expect("v4"),
            "2001:db8:6::/120".parse().expect("v6"),
        )
        .expect("eam")],
        ..SiitConfig::default()
    })
}

fn udp4(total: usize) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(H4, H6_V4, 64)
        .udp(40000, 53)
        .write(&mut v, &vec![0xab; total - 28])
        .expect("build");
    v
}

fn udp6(total: usize) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(H6, H4_V6, 64)
        .udp(40000, 53)
        .write(&mut v, &vec![0xab; total - 48])
        .expect("build");
    v
}

fn tcp4(total: usize) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(H4, H6_V4, 64)
        .tcp(40000, 443, 1, 65000)
        .ack(1)
        .write(&mut v, &vec![0xcd; total - 40])
        .expect("build");
    v
}

fn tcp6(total: usize) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(H6, H4_V6, 64)
        .tcp(40000, 443, 1, 65000)
        .ack(1)
        .write(&mut v, &vec![0xcd; total - 60])
        .expect("build");
    v
}

/// An IPv4 packet with DF=0 bigger than 1280 once translated.
fn udp4_df0(total: usize) -> Vec<u8> {
    let mut h =
        etherparse::Ipv4Header::new(0, 64, etherparse::IpNumber::UDP, H4, H6_V4).expect("header");
    h.dont_fragment = false;
    let mut v = Vec::new();
    PacketBuilder::ip(etherparse::IpHeaders::Ipv4(h, Default::default()))
        .udp(40000, 53)
        .write(&mut v, &vec![0xab; total - 28])
        .expect("build");
    v
}

/// A Packet Too Big from an IPv6 router about a 1500-byte TCP segment.
fn ptb6() -> Vec<u8> {
    let mut inner = Vec::new();
    PacketBuilder::ipv6(H4_V6, H6, 63)
        .tcp(443, 40000, 1, 65000)
        .write(&mut inner, &[0xcd; 1440])
        .expect("build");
    let mut v = Vec::new();
    PacketBuilder::ipv6(H6, H4_V6, 64)
        .icmpv6_raw(2, 0, 1280u32.to_be_bytes())
        .write(&mut v, &inner[..1232])
        .expect("build");
    v
}

fn bench(c: &mut Criterion) {
    let siit = siit();
    let mut out = Output::new();
    let mut g = c.benchmark_group("translate");
    let cases = [
        ("4to6_udp_64", udp4(64), Verdict::FourToSix),
        ("6to4_udp_64", udp6(64), Verdict::SixToFour),
        ("4to6_tcp_1500", tcp4(1500), Verdict::FourToSix),
        ("6to4_tcp_1500", tcp6(1500), Verdict::SixToFour),
        (
            "4to6_udp_3000_df0_to_3_fragments",
            udp4_df0(3000),
            Verdict::FourToSix,
        ),
        ("6to4_packet_too_big_1280", ptb6(), Verdict::SixToFour),
    ];
    for (name, pkt, want) in &cases {
        assert_eq!(siit.translate(pkt, &mut out), *want, "{name}");
        g.throughput(Throughput::Elements(1));
        g.bench_function(*name, |b| {
            b.iter(|| siit.translate(black_box(pkt), black_box(&mut out)));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
