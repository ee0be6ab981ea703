//! The NAT64 data path on byte arrays, checked with etherparse (a crate we
//! did not write) as the oracle for headers and checksums.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use proptest::prelude::*;

use super::*;
use crate::siit::SiitConfig;

const PREFIX: &str = "64:ff9b:1::/96";
const C6: &str = "2001:db8:6::10";
const C6B: &str = "2001:db8:6::20";
const S4: &str = "198.51.100.7";
const S4_V6: &str = "64:ff9b:1::c633:6407";
const POOL: &str = "192.0.2.1";
const OWN6: &str = "2001:db8:ffff::1";

fn a4(s: &str) -> [u8; 4] {
    s.parse::<Ipv4Addr>().unwrap().octets()
}

fn a6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

fn setup(pool: &[&str]) -> (Translator, State) {
    let entries: Vec<Pool4Entry> = pool.iter().map(|e| e.parse().unwrap()).collect();
    let config = Config {
        pool4: Pool4::new(&entries).unwrap(),
        timeouts: Timeouts::default(),
        limits: Limits::default(),
        filtering: Filtering::default(),
        static_bib: Vec::new(),
    };
    let template = SiitConfig {
        own_ipv4: Some(POOL.parse().unwrap()),
        own_ipv6: Some(OWN6.parse().unwrap()),
        ..SiitConfig::default()
    };
    (
        Translator::new(PREFIX.parse().unwrap(), template),
        State::new(config, SplitMix64::new(9)).unwrap(),
    )
}

fn udp6(src: &str, sport: u16, dst: &str, dport: u16, hop: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(a6(src), a6(dst), hop)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn udp4(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(a4(src), a4(dst), 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn syn6(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(a6(src), a6(dst), 64)
        .tcp(sport, dport, 1000, 65000)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    v
}

fn synack4(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(a4(src), a4(dst), 64)
        .tcp(sport, dport, 5000, 65000)
        .syn()
        .ack(1001)
        .write(&mut v, b"hello")
        .unwrap();
    v
}

/// Parses an output packet and checks every checksum etherparse can.
fn check(pkt: &[u8]) -> SlicedPacket<'_> {
    let s = SlicedPacket::from_ip(pkt).expect("etherparse parses the output");
    match &s.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            assert_eq!(usize::from(h.total_len()), pkt.len());
            assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum());
            let (src, dst) = (h.source(), h.destination());
            match &s.transport {
                Some(TransportSlice::Udp(u)) if u.checksum() != 0 => assert_eq!(
                    u.to_header()
                        .calc_checksum_ipv4_raw(src, dst, u.payload())
                        .unwrap(),
                    u.checksum(),
                    "UDP checksum"
                ),
                Some(TransportSlice::Tcp(t)) => {
                    assert_eq!(
                        t.calc_checksum_ipv4(src, dst).unwrap(),
                        t.checksum(),
                        "TCP checksum"
                    )
                }
                Some(TransportSlice::Icmpv4(i)) => assert_eq!(
                    i.header().icmp_type.calc_checksum(i.payload()),
                    i.checksum(),
                    "ICMPv4 checksum"
                ),
                _ => {}
            }
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            let (src, dst) = (h.source(), h.destination());
            match &s.transport {
                Some(TransportSlice::Udp(u)) => assert_eq!(
                    u.to_header()
                        .calc_checksum_ipv6_raw(src, dst, u.payload())
                        .unwrap(),
                    u.checksum(),
                    "UDP checksum"
                ),
                Some(TransportSlice::Tcp(t)) => {
                    assert_eq!(
                        t.calc_checksum_ipv6(src, dst).unwrap(),
                        t.checksum(),
                        "TCP checksum"
                    )
                }
                Some(TransportSlice::Icmpv6(i)) => {
                    assert!(i.is_checksum_valid(src, dst), "ICMPv6 checksum")
                }
                _ => {}
            }
        }
        _ => panic!("not IP"),
    }
    s
}

fn addrs4(s: &SlicedPacket<'_>) -> ([u8; 4], [u8; 4]) {
    let Some(NetSlice::Ipv4(ip)) = &s.net else {
        panic!("not IPv4")
    };
    (ip.header().source(), ip.header().destination())
}

fn addrs6(s: &SlicedPacket<'_>) -> ([u8; 16], [u8; 16]) {
    let Some(NetSlice::Ipv6(ip)) = &s.net else {
        panic!("not IPv6")
    };
    (ip.header().source(), ip.header().destination())
}

fn ports(s: &SlicedPacket<'_>) -> (u16, u16) {
    match &s.transport {
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        other => panic!("no ports: {other:?}"),
    }
}

fn one(out: &Packets) -> Vec<u8> {
    assert_eq!(out.len(), 1, "one packet out");
    out.get(0).unwrap().to_vec()
}

#[test]
fn udp_goes_out_from_a_pool4_port_and_the_reply_comes_back() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut p = udp6(C6, 40000, S4_V6, 53, 64, b"query");
    assert_eq!(
        x.translate(&mut st, 0, &mut p, &mut out),
        Verdict::SixToFour
    );
    let q = one(&out);
    let s = check(&q);
    assert_eq!(addrs4(&s), (a4(POOL), a4(S4)));
    let (t, dport) = ports(&s);
    assert!((61001..=65535).contains(&t));
    assert_eq!(dport, 53);
    assert_eq!(s.ip_payload().unwrap().payload.len(), 8 + 5);

    let mut r = udp4(S4, 53, POOL, t, b"answer");
    assert_eq!(
        x.translate(&mut st, 10, &mut r, &mut out),
        Verdict::FourToSix
    );
    let a = one(&out);
    let s = check(&a);
    assert_eq!(addrs6(&s), (a6(S4_V6), a6(C6)));
    assert_eq!(ports(&s), (53, 40000));
    assert_eq!(st.stats().sessions[1], 1);
}

#[test]
fn tcp_handshake_translates_both_ways_and_establishes() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut p = syn6(C6, 50000, S4_V6, 80);
    assert_eq!(
        x.translate(&mut st, 0, &mut p, &mut out),
        Verdict::SixToFour
    );
    let q = one(&out);
    let s = check(&q);
    let (t, _) = ports(&s);
    let mut r = synack4(S4, 80, POOL, t);
    assert_eq!(
        x.translate(&mut st, 0, &mut r, &mut out),
        Verdict::FourToSix
    );
    let a = one(&out);
    let s = check(&a);
    assert_eq!(ports(&s), (80, 50000));
    assert_eq!(st.sessions(0)[0].tcp_state, Some(TcpState::Established));
}

#[test]
fn ping_maps_the_identifier_both_ways() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut p = Vec::new();
    PacketBuilder::ipv6(a6(C6), a6(S4_V6), 64)
        .icmpv6_echo_request(0x1234, 1)
        .write(&mut p, b"ping")
        .unwrap();
    assert_eq!(
        x.translate(&mut st, 0, &mut p, &mut out),
        Verdict::SixToFour
    );
    let q = one(&out);
    let s = check(&q);
    let Some(TransportSlice::Icmpv4(i)) = &s.transport else {
        panic!()
    };
    let etherparse::Icmpv4Type::EchoRequest(e) = i.icmp_type() else {
        panic!()
    };
    let id = e.id;
    let mut r = Vec::new();
    PacketBuilder::ipv4(a4(S4), a4(POOL), 64)
        .icmpv4_echo_reply(id, 1)
        .write(&mut r, b"ping")
        .unwrap();
    assert_eq!(
        x.translate(&mut st, 0, &mut r, &mut out),
        Verdict::FourToSix
    );
    let a = one(&out);
    let s = check(&a);
    assert_eq!(addrs6(&s).1, a6(C6));
    let Some(TransportSlice::Icmpv6(i)) = &s.transport else {
        panic!()
    };
    let etherparse::Icmpv6Type::EchoReply(e) = i.icmp_type() else {
        panic!()
    };
    assert_eq!(e.id, 0x1234);
}

#[test]
fn unsolicited_udp_gets_port_unreachable_and_creates_nothing() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut r = udp4(S4, 53, POOL, 61001, b"x");
    assert_eq!(
        x.translate(&mut st, 0, &mut r, &mut out),
        Verdict::IcmpError(Drop::State(Refuse::NoBinding))
    );
    let e = one(&out);
    let s = check(&e);
    assert_eq!(addrs4(&s), (a4(POOL), a4(S4)));
    let Some(TransportSlice::Icmpv4(i)) = &s.transport else {
        panic!()
    };
    assert!(matches!(
        i.icmp_type(),
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port
        )
    ));
    assert_eq!(st.session_count(), 0);
}

#[test]
fn an_exhausted_pool_answers_address_unreachable() {
    let (x, mut st) = setup(&["192.0.2.1 udp 2000-2000", "192.0.2.1 tcp", "192.0.2.1 icmp"]);
    let mut out = Packets::new();
    let mut p = udp6(C6, 1, S4_V6, 53, 64, b"a");
    assert_eq!(
        x.translate(&mut st, 0, &mut p, &mut out),
        Verdict::SixToFour
    );
    let mut p = udp6(C6, 2, S4_V6, 53, 64, b"b");
    assert_eq!(
        x.translate(&mut st, 0, &mut p, &mut out),
        Verdict::IcmpError(Drop::State(Refuse::PoolExhausted))
    );
    let e = one(&out);
    let s = check(&e);
    assert_eq!(addrs6(&s), (a6(S4_V6), a6(C6)));
    let Some(TransportSlice::Icmpv6(i)) = &s.transport else {
        panic!()
    };
    assert!(matches!(
        i.icmp_type(),
        etherparse::Icmpv6Type::DestinationUnreachable(
            etherparse::icmpv6::DestUnreachableCode::Address
        )
    ));
}

#[test]
fn icmpv4_error_about_our_packet_reaches_the_ipv6_client() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut p = udp6(C6, 40000, S4_V6, 53, 64, b"query");
    x.translate(&mut st, 0, &mut p, &mut out);
    let sent = one(&out);
    let t = ports(&check(&sent)).0;
    // The server says port unreachable, quoting what it got.
    let mut e = Vec::new();
    PacketBuilder::ipv4(a4(S4), a4(POOL), 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut e, &sent)
        .unwrap();
    assert_eq!(
        x.translate(&mut st, 0, &mut e, &mut out),
        Verdict::FourToSix
    );
    let got = one(&out);
    let s = check(&got);
    assert_eq!(addrs6(&s), (a6(S4_V6), a6(C6)));
    let Some(TransportSlice::Icmpv6(i)) = &s.transport else {
        panic!()
    };
    let inner = i.payload();
    assert_eq!(&inner[8..24], &a6(C6), "inner source is the client again");
    assert_eq!(&inner[24..40], &a6(S4_V6));
    assert_eq!(
        u16::from_be_bytes([inner[40], inner[41]]),
        40000,
        "inner port too"
    );
    assert_ne!(t, 40000);
}

#[test]
fn icmpv6_error_from_the_client_reaches_the_ipv4_server() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut p = udp6(C6, 40000, S4_V6, 53, 64, b"query");
    x.translate(&mut st, 0, &mut p, &mut out);
    let t = ports(&check(&one(&out))).0;
    // The server's answer, delivered to the client, which says port
    // unreachable about it.
    let mut r = udp4(S4, 53, POOL, t, b"late answer");
    x.translate(&mut st, 0, &mut r, &mut out);
    let delivered = one(&out);
    let mut e = Vec::new();
    PacketBuilder::ipv6(a6(C6), a6(S4_V6), 64)
        .icmpv6_raw(1, 4, [0; 4])
        .write(&mut e, &delivered)
        .unwrap();
    assert_eq!(
        x.translate(&mut st, 0, &mut e, &mut out),
        Verdict::SixToFour
    );
    let got = one(&out);
    let s = check(&got);
    assert_eq!(addrs4(&s), (a4(POOL), a4(S4)));
    let Some(TransportSlice::Icmpv4(i)) = &s.transport else {
        panic!()
    };
    let inner = i.payload();
    assert_eq!(&inner[12..16], &a4(S4));
    assert_eq!(
        &inner[16..20],
        &a4(POOL),
        "inner destination is the pool4 address"
    );
    assert_eq!(u16::from_be_bytes([inner[22], inner[23]]), t, "and port");
}

#[test]
fn hairpinning_delivers_between_two_ipv6_clients() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    // B has a mapping (it talked to the server).
    let mut p = udp6(C6B, 7000, S4_V6, 53, 64, b"b");
    x.translate(&mut st, 0, &mut p, &mut out);
    let tb = ports(&check(&one(&out))).0;
    // A sends to B's pool4 transport address, under the prefix.
    let pool_v6 = "64:ff9b:1::c000:201";
    let mut p = udp6(C6, 5000, pool_v6, tb, 64, b"hi B");
    assert_eq!(x.translate(&mut st, 0, &mut p, &mut out), Verdict::Hairpin);
    let got = one(&out);
    let s = check(&got);
    assert_eq!(addrs6(&s), (a6(pool_v6), a6(C6B)));
    let (ta, port_b) = ports(&s);
    assert_eq!(port_b, 7000);
    // B answers to what it saw: A's pool4 transport address.
    let mut p = udp6(C6B, 7000, pool_v6, ta, 64, b"hi A");
    assert_eq!(x.translate(&mut st, 0, &mut p, &mut out), Verdict::Hairpin);
    let back = one(&out);
    let s = check(&back);
    assert_eq!(addrs6(&s).1, a6(C6));
    assert_eq!(ports(&s), (tb, 5000));
}

#[test]
fn an_expiring_hop_limit_is_answered_by_the_translator_without_state() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut p = udp6(C6, 40000, S4_V6, 53, 1, b"trace");
    assert_eq!(
        x.translate(&mut st, 0, &mut p, &mut out),
        Verdict::IcmpError(Drop::Xlat(crate::siit::DropReason::HopLimitExpired))
    );
    let s = check(out.get(0).unwrap());
    assert_eq!(addrs6(&s), (a6(OWN6), a6(C6)));
    let Some(TransportSlice::Icmpv6(i)) = &s.transport else {
        panic!()
    };
    assert!(matches!(
        i.icmp_type(),
        etherparse::Icmpv6Type::TimeExceeded(_)
    ));
    assert_eq!(st.session_count(), 0);
}

#[test]
fn an_expiring_ttl_is_answered_from_the_own_ipv4_address_without_state() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut r = Vec::new();
    PacketBuilder::ipv4(a4(S4), a4(POOL), 1)
        .udp(53, 61001)
        .write(&mut r, b"x")
        .unwrap();
    assert_eq!(
        x.translate(&mut st, 0, &mut r, &mut out),
        Verdict::IcmpError(Drop::Xlat(crate::siit::DropReason::TtlExpired))
    );
    let s = check(out.get(0).unwrap());
    assert_eq!(addrs4(&s), (a4(POOL), a4(S4)));
    let Some(TransportSlice::Icmpv4(i)) = &s.transport else {
        panic!()
    };
    assert!(matches!(
        i.icmp_type(),
        etherparse::Icmpv4Type::TimeExceeded(_)
    ));
    assert_eq!(st.session_count(), 0);
}

#[test]
fn packets_outside_the_prefix_or_pool4_are_not_ours() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut p = udp6(C6, 1, "2001:db8:99::1", 53, 64, b"a");
    assert_eq!(
        x.translate(&mut st, 0, &mut p, &mut out),
        Verdict::Drop(Drop::NotOurs)
    );
    let mut r = udp4(S4, 53, "192.0.2.77", 1, b"a");
    assert_eq!(
        x.translate(&mut st, 0, &mut r, &mut out),
        Verdict::Drop(Drop::NotOurs)
    );
    assert!(out.is_empty());
}

/// Splits the upper layer of a whole IPv4 packet into two fragments at
/// `cut` bytes (a multiple of 8).
fn fragment4(whole: &[u8], cut: usize, ident: u16) -> (Vec<u8>, Vec<u8>) {
    let upper = &whole[20..];
    let mk = |data: &[u8], offset_units: u16, more: bool| {
        let mut p = whole[..20].to_vec();
        p.extend_from_slice(data);
        let total = u16::try_from(p.len()).unwrap();
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[4..6].copy_from_slice(&ident.to_be_bytes());
        let flags = if more { 0x2000 } else { 0 } | offset_units;
        p[6..8].copy_from_slice(&flags.to_be_bytes());
        p[10..12].copy_from_slice(&[0, 0]);
        let hc = crate::checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&hc.to_be_bytes());
        p
    };
    let units = u16::try_from(cut / 8).unwrap();
    (mk(&upper[..cut], 0, true), mk(&upper[cut..], units, false))
}

/// Splits the upper layer of a whole IPv6 packet (no extension headers) into
/// two fragments at `cut` bytes (a multiple of 8).
fn fragment6(whole: &[u8], cut: usize, ident: u32) -> (Vec<u8>, Vec<u8>) {
    let upper = &whole[40..];
    let nh = whole[6];
    let mk = |data: &[u8], offset_units: u16, more: bool| {
        let mut p = whole[..40].to_vec();
        p[6] = 44;
        let mut fh = [0u8; 8];
        fh[0] = nh;
        fh[2..4].copy_from_slice(&((offset_units << 3) | u16::from(more)).to_be_bytes());
        fh[4..8].copy_from_slice(&ident.to_be_bytes());
        p.extend_from_slice(&fh);
        p.extend_from_slice(data);
        let len = u16::try_from(p.len() - 40).unwrap();
        p[4..6].copy_from_slice(&len.to_be_bytes());
        p
    };
    let units = u16::try_from(cut / 8).unwrap();
    (mk(&upper[..cut], 0, true), mk(&upper[cut..], units, false))
}

/// The data of IPv6 fragments (after their Fragment header), in order.
fn reassemble6(frags: &[Vec<u8>]) -> ([u8; 16], [u8; 16], Vec<u8>) {
    let mut data = Vec::new();
    for f in frags {
        assert_eq!(f[6], 44, "a Fragment header");
        data.extend_from_slice(&f[48..]);
    }
    (
        frags[0][8..24].try_into().unwrap(),
        frags[0][24..40].try_into().unwrap(),
        data,
    )
}

fn udp_checksum_ok_v6(src: [u8; 16], dst: [u8; 16], udp: &[u8]) -> bool {
    let len = u32::try_from(udp.len()).unwrap();
    let sum = crate::checksum::pseudo_v6(Ipv6Addr::from(src), Ipv6Addr::from(dst), 17, len);
    crate::checksum::fold(crate::checksum::add(sum, udp)) == 0xffff
}

fn udp_checksum_ok_v4(src: [u8; 4], dst: [u8; 4], udp: &[u8]) -> bool {
    let len = u16::try_from(udp.len()).unwrap();
    let sum = crate::checksum::pseudo_v4(Ipv4Addr::from(src), Ipv4Addr::from(dst), 17, len);
    crate::checksum::fold(crate::checksum::add(sum, udp)) == 0xffff
}

#[test]
fn a_fragmented_udp_answer_reaches_the_client_whole() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut q = udp6(C6, 40000, S4_V6, 53, 64, b"query");
    x.translate(&mut st, 0, &mut q, &mut out);
    let t = ports(&check(&one(&out))).0;
    let payload: Vec<u8> = (0..200u8).collect();
    let whole = udp4(S4, 53, POOL, t, &payload);
    let (mut first, mut second) = fragment4(&whole, 64, 0x4242);
    let mut got = Vec::new();
    for p in [&mut first, &mut second] {
        assert_eq!(x.translate(&mut st, 10, p, &mut out), Verdict::FourToSix);
        got.extend(out.packets().map(<[u8]>::to_vec));
    }
    assert_eq!(got.len(), 2);
    for g in &got {
        assert_eq!(&g[24..40], &a6(C6), "every fragment goes to the client");
    }
    let (src, dst, udp) = reassemble6(&got);
    assert_eq!(
        u16::from_be_bytes([udp[2], udp[3]]),
        40000,
        "the port, in the first fragment"
    );
    assert!(
        udp_checksum_ok_v6(src, dst, &udp),
        "the datagram's checksum holds"
    );
    assert_eq!(&udp[8..], &payload[..]);
}

#[test]
fn a_fragmented_udp_query_leaves_whole() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let payload: Vec<u8> = (0..200u8).rev().collect();
    let whole = udp6(C6, 40000, S4_V6, 53, 64, &payload);
    let (mut first, mut second) = fragment6(&whole, 96, 0xabcd_0001);
    let mut got = Vec::new();
    for p in [&mut first, &mut second] {
        assert_eq!(x.translate(&mut st, 0, p, &mut out), Verdict::SixToFour);
        got.extend(out.packets().map(<[u8]>::to_vec));
    }
    assert_eq!(got.len(), 2);
    let mut udp = Vec::new();
    for g in &got {
        assert_eq!(&g[12..16], &a4(POOL));
        assert_eq!(&g[16..20], &a4(S4));
        udp.extend_from_slice(&g[20..]);
    }
    assert!(udp_checksum_ok_v4(a4(POOL), a4(S4), &udp));
    assert_eq!(&udp[8..], &payload[..]);
}

/// Cuts the upper layer of a whole IPv4 packet into fragments of `size`
/// bytes (a multiple of 8; the last one shorter), in order.
fn fragments4(whole: &[u8], size: usize, ident: u16) -> Vec<Vec<u8>> {
    let upper = &whole[20..];
    let n = upper.len().div_ceil(size);
    (0..n)
        .map(|i| {
            let data = &upper[i * size..((i + 1) * size).min(upper.len())];
            let mut p = whole[..20].to_vec();
            p.extend_from_slice(data);
            let total = u16::try_from(p.len()).unwrap();
            p[2..4].copy_from_slice(&total.to_be_bytes());
            p[4..6].copy_from_slice(&ident.to_be_bytes());
            let more = if i + 1 < n { 0x2000 } else { 0 };
            let flags = more | u16::try_from(i * size / 8).unwrap();
            p[6..8].copy_from_slice(&flags.to_be_bytes());
            p[10..12].copy_from_slice(&[0, 0]);
            let hc = crate::checksum::checksum(&p[..20]);
            p[10..12].copy_from_slice(&hc.to_be_bytes());
            p
        })
        .collect()
}

/// Cuts the upper layer of a whole IPv6 packet (no extension headers) into
/// fragments of `size` bytes (a multiple of 8), in order.
fn fragments6(whole: &[u8], size: usize, ident: u32) -> Vec<Vec<u8>> {
    let upper = &whole[40..];
    let nh = whole[6];
    let n = upper.len().div_ceil(size);
    (0..n)
        .map(|i| {
            let data = &upper[i * size..((i + 1) * size).min(upper.len())];
            let mut p = whole[..40].to_vec();
            p[6] = 44;
            let mut fh = [0u8; 8];
            fh[0] = nh;
            let units = u16::try_from(i * size / 8).unwrap();
            fh[2..4].copy_from_slice(&((units << 3) | u16::from(i + 1 < n)).to_be_bytes());
            fh[4..8].copy_from_slice(&ident.to_be_bytes());
            p.extend_from_slice(&fh);
            p.extend_from_slice(data);
            let len = u16::try_from(p.len() - 40).unwrap();
            p[4..6].copy_from_slice(&len.to_be_bytes());
            p
        })
        .collect()
}

/// Puts translated IPv4 fragments (in any order) back together as one
/// unfragmented IPv4 packet, which [`check`] then parses with its transport
/// checksum. Every fragment's header must be valid and share the
/// identification.
fn reassembled4(frags: &[Vec<u8>]) -> Vec<u8> {
    let mut parts: Vec<(usize, bool, &[u8])> = frags
        .iter()
        .map(|f| {
            check(f);
            assert_eq!(f[4..6], frags[0][4..6], "one identification");
            let word = u16::from_be_bytes([f[6], f[7]]);
            let hl = usize::from(f[0] & 0x0f) * 4;
            (usize::from(word & 0x1fff) * 8, word & 0x2000 != 0, &f[hl..])
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let mut data = Vec::new();
    for (i, (offset, more, bytes)) in parts.iter().enumerate() {
        assert_eq!(*offset, data.len(), "fragments meet without a gap");
        assert_eq!(*more, i + 1 < parts.len(), "only the last has MF clear");
        data.extend_from_slice(bytes);
    }
    let mut whole = frags[0][..20].to_vec();
    whole[0] = 0x45;
    whole.extend_from_slice(&data);
    let total = u16::try_from(whole.len()).unwrap();
    whole[2..4].copy_from_slice(&total.to_be_bytes());
    whole[6..8].copy_from_slice(&[0, 0]);
    whole[10..12].copy_from_slice(&[0, 0]);
    let hc = crate::checksum::checksum(&whole[..20]);
    whole[10..12].copy_from_slice(&hc.to_be_bytes());
    whole
}

/// The same for translated IPv6 fragments (a Fragment header right after
/// the fixed header): one unfragmented IPv6 packet.
fn reassembled6(frags: &[Vec<u8>]) -> Vec<u8> {
    let mut parts: Vec<(usize, bool, &[u8])> = frags
        .iter()
        .map(|f| {
            check(f);
            assert_eq!(f[6], 44, "a Fragment header");
            assert_eq!(f[44..48], frags[0][44..48], "one identification");
            assert_eq!(f[8..40], frags[0][8..40], "one source and destination");
            let word = u16::from_be_bytes([f[42], f[43]]);
            (usize::from(word >> 3) * 8, word & 1 != 0, &f[48..])
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let mut data = Vec::new();
    for (i, (offset, more, bytes)) in parts.iter().enumerate() {
        assert_eq!(*offset, data.len(), "fragments meet without a gap");
        assert_eq!(*more, i + 1 < parts.len(), "only the last has M clear");
        data.extend_from_slice(bytes);
    }
    let mut whole = frags[0][..40].to_vec();
    whole[6] = frags[0][40];
    whole.extend_from_slice(&data);
    let len = u16::try_from(data.len()).unwrap();
    whole[4..6].copy_from_slice(&len.to_be_bytes());
    whole
}

#[test]
fn reversed_ipv6_fragments_are_held_then_leave_whole_behind_the_first() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let payload: Vec<u8> = (0..1000u32)
        .map(|i| (i * 7 % 256).to_be_bytes()[3])
        .collect();
    let whole = udp6(C6, 40000, S4_V6, 53, 64, &payload);
    let mut frags = fragments6(&whole, 256, 0x5151_0001);
    assert_eq!(frags.len(), 4);
    for (i, f) in frags[1..].iter_mut().rev().enumerate() {
        let now = u64::try_from(i).unwrap() * 10;
        assert_eq!(x.translate(&mut st, now, f, &mut out), Verdict::Held);
        assert!(out.is_empty(), "nothing leaves before the first fragment");
    }
    assert_eq!(st.stats().fragments_held, 3);
    assert_eq!(st.session_count(), 0, "a later fragment makes no state");
    assert_eq!(
        x.translate(&mut st, 100, &mut frags[0], &mut out),
        Verdict::SixToFour
    );
    let got: Vec<Vec<u8>> = out.packets().map(<[u8]>::to_vec).collect();
    assert_eq!(got.len(), 4, "the first fragment and the three held");
    assert_eq!(got[0][6..8], [0x20, 0], "the first fragment leaves first");
    for g in &got {
        assert_eq!(&g[12..16], &a4(POOL));
        assert_eq!(&g[16..20], &a4(S4));
    }
    let datagram = reassembled4(&got);
    let s = check(&datagram);
    assert_eq!(addrs4(&s), (a4(POOL), a4(S4)));
    let (t, dport) = ports(&s);
    assert_eq!(dport, 53);
    assert_eq!(st.sessions(100)[0].v4.port, t, "the port of the session");
    assert_eq!(&datagram[28..], &payload[..]);
    let stats = st.stats();
    assert_eq!((stats.fragments_held, stats.fragment_bytes_held), (0, 0));
    assert_eq!(stats.fragments_timed_out, 0);
}

#[test]
fn reversed_ipv4_fragments_are_held_then_reach_the_client_whole() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut q = udp6(C6, 40000, S4_V6, 53, 64, b"query");
    x.translate(&mut st, 0, &mut q, &mut out);
    let t = ports(&check(&one(&out))).0;
    let payload: Vec<u8> = (0..900u32)
        .map(|i| (i * 13 % 256).to_be_bytes()[3])
        .collect();
    let whole = udp4(S4, 53, POOL, t, &payload);
    let mut frags = fragments4(&whole, 304, 0x4343);
    assert_eq!(frags.len(), 3);
    for f in frags[1..].iter_mut().rev() {
        assert_eq!(x.translate(&mut st, 10, f, &mut out), Verdict::Held);
        assert!(out.is_empty());
    }
    assert_eq!(
        x.translate(&mut st, 20, &mut frags[0], &mut out),
        Verdict::FourToSix
    );
    let got: Vec<Vec<u8>> = out.packets().map(<[u8]>::to_vec).collect();
    assert_eq!(got.len(), 3);
    for g in &got {
        assert_eq!(&g[24..40], &a6(C6), "every fragment goes to the client");
    }
    let datagram = reassembled6(&got);
    let s = check(&datagram);
    assert_eq!(addrs6(&s), (a6(S4_V6), a6(C6)));
    assert_eq!(ports(&s), (53, 40000));
    assert_eq!(&datagram[48..], &payload[..]);
    assert_eq!(st.stats().fragments_held, 0);
}

#[test]
fn fragments_in_any_order_after_the_first_pass_at_once() {
    // first, then the rest reversed: nothing is held.
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let whole = udp6(C6, 40000, S4_V6, 53, 64, &[5u8; 600]);
    let mut frags = fragments6(&whole, 200, 77);
    let mut got = Vec::new();
    let n = frags.len();
    for i in [0, n - 1, 1] {
        assert_eq!(
            x.translate(&mut st, 0, &mut frags[i], &mut out),
            Verdict::SixToFour
        );
        got.extend(out.packets().map(<[u8]>::to_vec));
    }
    assert_eq!(n, 4);
    assert_eq!(
        x.translate(&mut st, 0, &mut frags[2], &mut out),
        Verdict::SixToFour
    );
    got.extend(out.packets().map(<[u8]>::to_vec));
    assert_eq!(&reassembled4(&got)[28..], &[5u8; 600][..]);
    assert_eq!(st.stats().fragments_held, 0);
}

#[test]
fn a_held_fragment_is_dropped_after_fragment_min() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let whole = udp6(C6, 1, S4_V6, 53, 64, &[7u8; 100]);
    let (mut first, mut second) = fragment6(&whole, 64, 9);
    assert_eq!(st.poll_timeout(), None);
    assert_eq!(
        x.translate(&mut st, 1000, &mut second, &mut out),
        Verdict::Held
    );
    assert_eq!(st.poll_timeout(), Some(1000 + FRAGMENT_MIN_MS));
    st.handle_timeout(2999);
    assert_eq!(st.stats().fragments_held, 1, "still waiting at 1.999 s");
    st.handle_timeout(3000);
    let stats = st.stats();
    assert_eq!((stats.fragments_held, stats.fragment_bytes_held), (0, 0));
    assert_eq!(stats.fragments_timed_out, 1);
    assert_eq!(st.poll_timeout(), None);
    // The first fragment, late: it goes alone.
    assert_eq!(
        x.translate(&mut st, 3100, &mut first, &mut out),
        Verdict::SixToFour
    );
    assert_eq!(out.len(), 1);
}

#[test]
fn a_first_fragment_that_never_comes_leaves_nothing_behind() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let whole = udp4(S4, 53, POOL, 61001, &[7u8; 400]);
    let frags = fragments4(&whole, 104, 9);
    for mut f in frags[1..].iter().cloned() {
        assert_eq!(x.translate(&mut st, 0, &mut f, &mut out), Verdict::Held);
    }
    assert_eq!(st.stats().fragments_held, 3);
    // Without handle_timeout: the next fragment operation expires them.
    let other = udp6(C6, 1, S4_V6, 53, 64, &[1u8; 100]);
    let (_, mut late) = fragment6(&other, 64, 10);
    assert_eq!(
        x.translate(&mut st, 2000, &mut late, &mut out),
        Verdict::Held
    );
    let stats = st.stats();
    assert_eq!(stats.fragments_timed_out, 3);
    assert_eq!(stats.fragments_held, 1);
    assert_eq!(st.session_count(), 0);
    st.handle_timeout(4000);
    assert_eq!(st.stats().fragments_held, 0);
    assert_eq!(st.stats().fragments_timed_out, 4);
    assert_eq!(st.stats().fragment_bytes_held, 0);
}

#[test]
fn held_fragments_stay_within_their_limits_under_a_flood() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let whole = udp4(S4, 53, POOL, 61001, &[3u8; 2000]);
    let mut full = 0;
    // Distinct datagrams, one 1 KiB later fragment each.
    for id in 0..3000u16 {
        let mut f = fragments4(&whole, 1024, id).swap_remove(1);
        match x.translate(&mut st, 0, &mut f, &mut out) {
            Verdict::Held => {}
            Verdict::Drop(Drop::FragmentQueueFull) => full += 1,
            other => panic!("{other:?}"),
        }
        let s = st.stats();
        assert!(s.fragments_held <= MAX_HELD as u64);
        assert!(s.fragment_bytes_held <= MAX_HELD_BYTES as u64);
    }
    let s = st.stats();
    assert!(full > 0, "the flood hit a limit");
    assert_eq!(s.fragments_held + full, 3000);
    // After FRAGMENT_MIN, room again.
    st.handle_timeout(FRAGMENT_MIN_MS);
    assert_eq!(st.stats().fragments_held, 0);
    assert_eq!(st.stats().fragments_timed_out, 3000 - full);
}

#[test]
fn one_datagram_holds_at_most_max_held_per_datagram() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut q = udp6(C6, 40000, S4_V6, 53, 64, b"query");
    x.translate(&mut st, 0, &mut q, &mut out);
    let t = ports(&check(&one(&out))).0;
    let whole = udp4(S4, 53, POOL, t, &[9u8; 8 * 100]);
    let mut frags = fragments4(&whole, 8, 1);
    let n = frags.len();
    let mut verdicts = Vec::new();
    for f in frags[1..].iter_mut().rev() {
        verdicts.push(x.translate(&mut st, 0, f, &mut out));
    }
    let held = verdicts.iter().filter(|v| **v == Verdict::Held).count();
    assert_eq!(held, MAX_HELD_PER_DATAGRAM);
    assert!(verdicts[held..]
        .iter()
        .all(|v| *v == Verdict::Drop(Drop::FragmentQueueFull)));
    // The first releases the ones held (the datagram stays incomplete:
    // the receiver's reassembly times out, as with any lost fragment).
    assert_eq!(
        x.translate(&mut st, 0, &mut frags[0], &mut out),
        Verdict::FourToSix
    );
    assert_eq!(out.len(), 1 + MAX_HELD_PER_DATAGRAM);
    assert!(n > 1 + MAX_HELD_PER_DATAGRAM);
}

#[test]
fn a_first_fragment_to_an_unbound_port_creates_nothing() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let whole = udp4(S4, 53, POOL, 61001, &[7u8; 100]);
    let (mut first, _) = fragment4(&whole, 64, 9);
    assert!(matches!(
        x.translate(&mut st, 0, &mut first, &mut out),
        Verdict::IcmpError(Drop::State(Refuse::NoBinding))
    ));
    assert_eq!(st.session_count(), 0);
}

#[test]
fn other_protocols_are_dropped() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    let mut p = udp6(C6, 1, S4_V6, 53, 64, b"a");
    p[6] = 132; // SCTP
    assert_eq!(
        x.translate(&mut st, 0, &mut p, &mut out),
        Verdict::Drop(Drop::Protocol)
    );
}

#[test]
fn spoofed_or_martian_sources_create_no_state() {
    let (x, mut st) = setup(&[POOL]);
    let mut out = Packets::new();
    for src in ["ff02::1", "::", "::1", "64:ff9b:1::c000:201"] {
        let mut p = udp6(src, 1, S4_V6, 53, 64, b"a");
        assert_eq!(
            x.translate(&mut st, 0, &mut p, &mut out),
            Verdict::Drop(Drop::Xlat(crate::siit::DropReason::UntranslatableSource)),
            "{src}"
        );
    }
    // An IPv4 packet claiming to come from pool4 itself, or from a martian.
    let mut first = udp6(C6, 40000, S4_V6, 53, 64, b"q");
    x.translate(&mut st, 0, &mut first, &mut out);
    let t = ports(&check(&one(&out))).0;
    for src in [POOL, "0.0.0.0", "127.0.0.1", "224.0.0.1", "255.255.255.255"] {
        let mut r = udp4(src, 53, POOL, t, b"spoof");
        assert_eq!(
            x.translate(&mut st, 0, &mut r, &mut out),
            Verdict::Drop(Drop::Xlat(crate::siit::DropReason::UntranslatableSource)),
            "{src}"
        );
    }
    assert_eq!(st.session_count(), 1);
}

fn sharded(n: usize, statics: Vec<StaticBib>) -> (Translator, Vec<State>, Sharding) {
    let entries: Vec<Pool4Entry> = [POOL].iter().map(|e| e.parse().unwrap()).collect();
    let config = Config {
        pool4: Pool4::new(&entries).unwrap(),
        timeouts: Timeouts::default(),
        limits: Limits::default(),
        filtering: Filtering::default(),
        static_bib: statics,
    };
    let prefix: Prefix64 = PREFIX.parse().unwrap();
    let states = (0..n)
        .map(|i| State::new_shard(config.clone(), SplitMix64::new(i as u64), i, n).unwrap())
        .collect();
    let template = SiitConfig {
        own_ipv4: Some(POOL.parse().unwrap()),
        ..SiitConfig::default()
    };
    (
        Translator::new(prefix, template),
        states,
        Sharding::new(n, prefix, &config, 7),
    )
}

use crate::prefix64::Prefix64;

/// Runs one packet through the shards the router names.
fn run_sharded(
    x: &Translator,
    states: &mut [State],
    sh: &Sharding,
    p: &mut [u8],
    out: &mut Packets,
) -> (Verdict, usize) {
    let (a, b) = sh.route(p);
    let v = match b {
        None => x.translate_pair(&mut states[a], None, 0, p, out),
        Some(b) => {
            let (lo, hi) = states.split_at_mut(a.max(b));
            let (sa, sb) = if a < b {
                (&mut lo[a], &mut hi[0])
            } else {
                (&mut hi[0], &mut lo[b])
            };
            x.translate_pair(sa, Some(sb), 0, p, out)
        }
    };
    (v, a)
}

#[test]
fn sharded_state_sees_both_directions_of_every_flow_in_one_shard() {
    let (x, mut states, sh) = sharded(3, Vec::new());
    let mut out = Packets::new();
    let mut used = [0usize; 3];
    for host in 1..=30u16 {
        let src = format!("2001:db8:6::{host:x}");
        for port in [1000u16, 40000, 40001] {
            let mut p = udp6(&src, port, S4_V6, 53, 64, b"q");
            let (v, shard) = run_sharded(&x, &mut states, &sh, &mut p, &mut out);
            assert_eq!(v, Verdict::SixToFour);
            used[shard] += 1;
            let t = ports(&check(&one(&out))).0;
            assert_eq!(shard_of_port(t, 3), shard, "the port belongs to the shard");
            let mut r = udp4(S4, 53, POOL, t, b"a");
            let (v, back) = run_sharded(&x, &mut states, &sh, &mut r, &mut out);
            assert_eq!((v, back), (Verdict::FourToSix, shard));
            assert_eq!(addrs6(&check(&one(&out))).1, a6(&src));
            // ICMP errors about the flow find it too.
            let sent = udp4(POOL, t, S4, 53, b"q");
            let mut e = Vec::new();
            PacketBuilder::ipv4(a4(S4), a4(POOL), 64)
                .icmpv4_raw(3, 3, [0; 4])
                .write(&mut e, &sent)
                .unwrap();
            assert_eq!(
                run_sharded(&x, &mut states, &sh, &mut e, &mut out),
                (Verdict::FourToSix, shard)
            );
        }
    }
    assert!(
        used.iter().all(|&n| n > 0),
        "flows spread over the shards: {used:?}"
    );
    let total: u64 = states.iter().map(|s| s.stats().ports_total[1]).sum();
    assert_eq!(total, 4535, "the shards split pool4 exactly");
    let sessions: u32 = states.iter().map(State::session_count).sum();
    assert_eq!(sessions, 90);
}

#[test]
fn sharded_hairpin_crosses_shards() {
    let (x, mut states, sh) = sharded(2, Vec::new());
    let mut out = Packets::new();
    let mut crossed = 0;
    for b_host in 1..=8u16 {
        let b = format!("2001:db8:7::{b_host:x}");
        let mut p = udp6(&b, 7000, S4_V6, 53, 64, b"b");
        run_sharded(&x, &mut states, &sh, &mut p, &mut out);
        let tb = ports(&check(&one(&out))).0;
        let mut p = udp6(C6, 5000 + b_host, "64:ff9b:1::c000:201", tb, 64, b"hi");
        if sh.route(&p).1.is_some() {
            crossed += 1;
        }
        let (v, _) = run_sharded(&x, &mut states, &sh, &mut p, &mut out);
        assert_eq!(v, Verdict::Hairpin);
        let got = one(&out);
        let s = check(&got);
        assert_eq!(addrs6(&s).1, a6(&b));
        assert_eq!(ports(&s).1, 7000);
    }
    assert!(crossed > 0, "some hairpins crossed shards");
}

#[test]
fn sharded_static_bib_entries_live_in_the_shard_of_their_port() {
    let web6 = Taddr6::new(C6.parse().unwrap(), 8080);
    let statics = vec![StaticBib {
        proto: Proto::Tcp,
        v6: web6,
        v4: Taddr4::new(POOL.parse().unwrap(), 80),
    }];
    let (x, mut states, sh) = sharded(4, statics);
    let mut out = Packets::new();
    let mut syn = Vec::new();
    PacketBuilder::ipv4(a4(S4), a4(POOL), 64)
        .tcp(50000, 80, 1, 1000)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    let (v, shard) = run_sharded(&x, &mut states, &sh, &mut syn, &mut out);
    assert_eq!((v, shard), (Verdict::FourToSix, shard_of_port(80, 4)));
    let mut reply = Vec::new();
    PacketBuilder::ipv6(a6(C6), a6(S4_V6), 64)
        .tcp(8080, 50000, 1, 1000)
        .syn()
        .ack(2)
        .write(&mut reply, &[])
        .unwrap();
    let (v, back) = run_sharded(&x, &mut states, &sh, &mut reply, &mut out);
    assert_eq!((v, back), (Verdict::SixToFour, shard));
    assert_eq!(
        states[shard].sessions(0)[0].tcp_state,
        Some(TcpState::Established)
    );
}

#[test]
fn sharding_names_the_datagram_of_fragments_of_both_families() {
    let (_, _, sh) = sharded(3, Vec::new());
    let whole6 = udp6(C6, 1, S4_V6, 53, 64, &[0; 100]);
    assert_eq!(sh.fragment(&whole6), None);
    let (first, later) = fragment6(&whole6, 64, 0x77);
    let key6 = FragmentKey::V6(a6(C6), a6(S4_V6), 0x77);
    assert_eq!(sh.fragment(&first), Some((key6, false)));
    assert_eq!(sh.fragment(&later), Some((key6, true)));
    // An IPv6 datagram is held where its source's first fragment goes.
    assert_eq!(sh.holding_shard(&key6), sh.route(&later).0);
    assert_eq!(sh.holding_shard(&key6), sh.route(&first).0);
    let whole4 = udp4(S4, 53, POOL, 61001, &[0; 100]);
    assert_eq!(sh.fragment(&whole4), None);
    let (first, later) = fragment4(&whole4, 64, 0x99);
    let key4 = FragmentKey::V4(a4(S4), a4(POOL), 17, 0x99);
    assert_eq!(sh.fragment(&first), Some((key4, false)));
    assert_eq!(sh.fragment(&later), Some((key4, true)));
    assert!(sh.holding_shard(&key4) < 3);
}

#[test]
fn every_drop_label_is_listed_once() {
    let labels = Drop::labels();
    let mut sorted = labels.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), labels.len());
    assert!(labels.contains(&Drop::Fragment.as_str()));
    assert!(labels.contains(&Drop::State(Refuse::PoolExhausted).as_str()));
}

proptest! {
    /// Later fragments of random datagrams, sizes and times (a flood of
    /// bogus ones) never hold more than the limits, and none is held longer
    /// than FRAGMENT_MIN.
    #[test]
    fn held_fragments_are_bounded_in_count_bytes_and_time(
        steps in proptest::collection::vec((0u16..8, 1usize..180, 0u64..400, any::<bool>()), 1..400)
    ) {
        let (x, mut st) = setup(&[POOL]);
        let mut out = Packets::new();
        let mut now = 0;
        let mut last_held = None;
        for (id, units, dt, v6) in steps {
            now += dt;
            let payload = vec![1u8; units * 8 + 8];
            let mut f = if v6 {
                fragments6(&udp6(C6, 1, S4_V6, 53, 64, &payload), 8, u32::from(id)).swap_remove(1)
            } else {
                fragments4(&udp4(S4, 53, POOL, 61001, &payload), 8, id).swap_remove(1)
            };
            let v = x.translate(&mut st, now, &mut f, &mut out);
            prop_assert!(matches!(v, Verdict::Held | Verdict::Drop(Drop::FragmentQueueFull)), "{:?}", v);
            if v == Verdict::Held {
                last_held = Some(now);
            }
            let s = st.stats();
            prop_assert!(s.fragments_held <= MAX_HELD as u64);
            prop_assert!(s.fragment_bytes_held <= MAX_HELD_BYTES as u64);
            if let Some(at) = st.poll_timeout() {
                prop_assert!(at <= now + FRAGMENT_MIN_MS);
            }
        }
        if let Some(at) = last_held {
            st.handle_timeout(at + FRAGMENT_MIN_MS);
        }
        prop_assert_eq!(st.stats().fragments_held, 0);
        prop_assert_eq!(st.session_count(), 0);
    }

    /// Nonsense from either side never panics and never creates more state
    /// than the limits allow.
    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..200), v6 in any::<bool>()) {
        let (x, mut st) = setup(&[POOL]);
        let mut out = Packets::new();
        if let Some(b) = bytes.first_mut() {
            *b = (*b & 0x0f) | if v6 { 0x60 } else { 0x45 };
        }
        let _ = x.translate(&mut st, 0, &mut bytes, &mut out);
    }

    /// Valid packets with one byte changed never panic either.
    #[test]
    fn mutated_packets_never_panic(at in 0usize..80, val in any::<u8>(), which in 0u8..4) {
        let (x, mut st) = setup(&[POOL]);
        let mut out = Packets::new();
        let mut seed = udp6(C6, 40000, S4_V6, 53, 64, b"query");
        x.translate(&mut st, 0, &mut seed, &mut out);
        let t = out.get(0).map_or(61001, |p| u16::from_be_bytes([p[20], p[21]]));
        let mut p = match which {
            0 => udp6(C6, 40000, S4_V6, 53, 64, b"query"),
            1 => udp4(S4, 53, POOL, t, b"answer"),
            2 => {
                let mut e = Vec::new();
                PacketBuilder::ipv4(a4(S4), a4(POOL), 64)
                    .icmpv4_raw(3, 3, [0; 4])
                    .write(&mut e, &udp4(POOL, t, S4, 53, b"q"))
                    .unwrap();
                e
            }
            _ => syn6(C6, 1, S4_V6, 80),
        };
        if let Some(b) = p.get_mut(at) {
            *b = val;
        }
        let _ = x.translate(&mut st, 0, &mut p, &mut out);
        prop_assert!(st.session_count() <= 3);
    }
}
