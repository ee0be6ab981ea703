//! Property tests: round trips keep payloads and checksums valid, and no
//! input, however broken, makes a parser or the translator panic.

// Test data is made by truncating counters to bytes on purpose.
#![allow(clippy::cast_possible_truncation)]

mod oracle;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use oracle::*;
use proptest::prelude::*;
use sixgate_xlat::wire::{IcmpPacket, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};
use sixgate_xlat::{Output, Siit, Verdict};

fn transport_payload<'a>(s: &SlicedPacket<'a>) -> (&'a [u8], u16) {
    match &s.transport {
        Some(TransportSlice::Udp(u)) => (u.payload(), u.checksum()),
        Some(TransportSlice::Tcp(t)) => (t.payload(), t.checksum()),
        other => panic!("unexpected transport {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn six_to_four_to_six_keeps_payload_and_checksum_validity(
        payload in proptest::collection::vec(any::<u8>(), 0..1400),
        tcp: bool,
    ) {
        let siit = siit();
        let mut out = Output::new();
        let original = if tcp { tcp6(H6, H4_V6, &payload) } else { udp6(H6, H4_V6, 64, &payload) };
        prop_assert_eq!(siit.translate(&original, &mut out), Verdict::SixToFour);
        let v4 = out.get(0).unwrap().to_vec();
        let s4 = parse4(&v4); // checksums valid for the IPv4 addresses
        prop_assert_eq!(transport_payload(&s4).0, &payload[..]);

        prop_assert_eq!(siit.translate(&v4, &mut out), Verdict::FourToSix);
        prop_assert_eq!(out.len(), 1);
        let back = out.get(0).unwrap().to_vec();
        let s6 = parse6(&back); // checksums valid again for IPv6
        let s0 = SlicedPacket::from_ip(&original).unwrap();
        let (p_back, c_back) = transport_payload(&s6);
        let (p_orig, c_orig) = transport_payload(&s0);
        prop_assert_eq!(p_back, p_orig);
        prop_assert_eq!(c_back, c_orig, "same addresses, same checksum");
        prop_assert_eq!(&back[8..40], &original[8..40]);
    }

    #[test]
    fn four_to_six_fragments_reassemble_to_the_original_datagram(
        len in 0usize..9000,
        mtu in 1280u16..1600,
    ) {
        let payload: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let siit = Siit::new(sixgate_xlat::SiitConfig { lowest_ipv6_mtu: mtu, ..config() });
        let mut out = Output::new();
        let pkt = udp4(H4, H6_V4, 64, false, &payload);
        prop_assert_eq!(siit.translate(&pkt, &mut out), Verdict::FourToSix);
        let mut datagram = vec![0u8; len + 8];
        let mut covered = 0;
        for f in out.packets() {
            prop_assert!(f.len() <= usize::from(mtu));
            let s = SlicedPacket::from_ip(f).unwrap();
            let Some(NetSlice::Ipv6(_)) = &s.net else { panic!() };
            if f[6] == 44 {
                let off = usize::from(u16::from_be_bytes([f[42], f[43]]) & !7);
                datagram[off..off + f.len() - 48].copy_from_slice(&f[48..]);
                covered += f.len() - 48;
            } else {
                datagram.copy_from_slice(&f[40..]);
                covered += f.len() - 40;
            }
        }
        prop_assert_eq!(covered, len + 8);
        let u = etherparse::UdpSlice::from_slice(&datagram).unwrap();
        prop_assert_eq!(u.payload(), &payload[..]);
        prop_assert_eq!(
            u.to_header().calc_checksum_ipv6_raw(v6(H4_V6), v6(H6), u.payload()).unwrap(),
            u.checksum()
        );
    }

    #[test]
    fn icmp_errors_survive_four_to_six_to_four(
        kind in 0usize..5,
        inner_len in 0usize..1500,
    ) {
        // (type, code, rest) of ICMPv4 errors whose translation is reversible.
        let kinds: [(u8, u8, [u8; 4]); 5] = [
            (3, 3, [0; 4]),           // port unreachable
            (3, 1, [0; 4]),           // host unreachable
            (11, 0, [0; 4]),          // TTL exceeded in transit
            (3, 4, [0, 0, 5, 0xdc]),  // fragmentation needed, MTU 1500
            (12, 0, [8, 0, 0, 0]),    // parameter problem at the TTL
        ];
        let (t, code, rest) = kinds[kind];
        let inner = udp4(H6_V4, H4, 63, true, &vec![0x5a; inner_len]);
        let cut = inner.len().min(548);
        let pkt = icmp4_raw(H4, H6_V4, t, code, rest, &inner[..cut]);
        let siit = siit();
        let mut out = Output::new();
        prop_assert_eq!(siit.translate(&pkt, &mut out), Verdict::FourToSix);
        let v6 = out.get(0).unwrap().to_vec();
        parse6(&v6);
        prop_assert!(v6.len() <= 1280);
        prop_assert_eq!(siit.translate(&v6, &mut out), Verdict::SixToFour);
        let back = out.get(0).unwrap().to_vec();
        parse4(&back);
        prop_assert!(back.len() <= 576);
        // Same addresses, type, code and rest of header as the original.
        prop_assert_eq!(&back[12..20], &pkt[12..20]);
        prop_assert_eq!(&back[20..22], &pkt[20..22]);
        prop_assert_eq!(&back[24..28], &pkt[24..28]);
        // The inner packet: same addresses, lengths, protocol and TTL, and
        // its UDP header and data unchanged (same addresses, same checksum).
        let (i0, i1) = (&pkt[28..], &back[28..]);
        prop_assert_eq!(&i1[2..4], &i0[2..4], "inner total length");
        prop_assert_eq!(&i1[8..10], &i0[8..10], "inner TTL and protocol");
        prop_assert_eq!(&i1[12..20], &i0[12..20], "inner addresses");
        let n = i1.len().min(i0.len());
        prop_assert_eq!(&i1[20..n], &i0[20..n], "inner UDP header and data");
    }

    #[test]
    fn arbitrary_bytes_never_panic_in_translate(
        version in prop_oneof![Just(0x40u8), Just(0x60u8), any::<u8>()],
        mut bytes in proptest::collection::vec(any::<u8>(), 0..1600),
    ) {
        if let Some(b) = bytes.first_mut() {
            *b = version | (*b & 0x0f);
        }
        let mut out = Output::new();
        let v = siit().translate(&bytes, &mut out);
        if matches!(v, Verdict::Drop(_)) {
            prop_assert!(out.is_empty());
        }
    }

    #[test]
    fn mutated_valid_packets_never_panic(
        which in 0usize..8,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        do_cut: bool,
    ) {
        let inner6 = udp6(H4_V6, H6, 63, &[1; 40]);
        let inner4 = udp4(H6_V4, H4, 63, true, &[1; 40]);
        let seeds = [
            udp4(H4, H6_V4, 64, false, &[3; 3000]),
            tcp4(H4, H6_V4, &[4; 100]),
            echo4(H4, H6_V4, &[5; 56]),
            icmp4_raw(H4, H6_V4, 3, 4, [0, 0, 5, 0xdc], &inner4),
            udp6(H6, H4_V6, 64, &[6; 100]),
            tcp6(H6, H4_V6, &[7; 100]),
            echo6(H6, H4_V6, &[8; 56]),
            icmp6_raw(H6, H4_V6, 2, 0, 1400u32.to_be_bytes(), &inner6),
        ];
        let mut pkt = seeds[which].clone();
        for (at, val) in flips {
            let i = at.index(pkt.len());
            pkt[i] = val;
        }
        if do_cut {
            pkt.truncate(cut.index(pkt.len() + 1));
        }
        let siit = siit();
        let mut out = Output::new();
        let _ = siit.translate(&pkt, &mut out);
        // Whatever came out is itself safe to translate again.
        let produced: Vec<Vec<u8>> = out.packets().map(<[u8]>::to_vec).collect();
        for p in produced {
            let _ = siit.translate(&p, &mut out);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_in_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = Ipv4Packet::new_checked(&bytes[..]) {
            let _ = (p.tos(), p.ident(), p.frag_offset(), p.ttl(), p.protocol(), p.src_addr(), p.dst_addr());
            let _ = (p.verify_checksum(), p.payload().len(), p.has_unexpired_source_route());
        }
        if let Ok(p) = Ipv6Packet::new_checked(&bytes[..]) {
            let _ = (p.traffic_class(), p.flow_label(), p.hop_limit(), p.src_addr(), p.dst_addr());
            let _ = p.walk();
        }
        if bytes.len() >= 40 {
            // The lenient walk used on the truncated packet inside ICMPv6 errors.
            let _ = Ipv6Packet::new_unchecked(&bytes[..]).walk();
        }
        if let Ok(p) = IcmpPacket::new_checked(&bytes[..]) {
            let _ = (p.msg_type(), p.code(), p.checksum(), p.rest(), p.v4_mtu(), p.body().len());
        }
        if let Ok(p) = UdpPacket::new_checked(&bytes[..]) {
            let _ = (p.src_port(), p.dst_port(), p.length(), p.checksum());
        }
        if let Ok(p) = TcpPacket::new_checked(&bytes[..]) {
            let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.header_len(), p.flags(), p.checksum());
        }
    }
}
