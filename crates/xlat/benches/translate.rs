//! Translation cost per packet, both directions: UDP with a 64-byte IP
//! packet and TCP with a 1500-byte IP packet. Run with
//! `cargo bench -p sixgate-xlat --bench translate`.

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

fn bench(c: &mut Criterion) {
    let siit = siit();
    let mut out = Output::new();
    let mut g = c.benchmark_group("translate");
    let cases = [
        ("4to6_udp_64", udp4(64), Verdict::FourToSix),
        ("6to4_udp_64", udp6(64), Verdict::SixToFour),
        ("4to6_tcp_1500", tcp4(1500), Verdict::FourToSix),
        ("6to4_tcp_1500", tcp6(1500), Verdict::SixToFour),
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
