//! RFC 7915 §5 (IPv6 → IPv4) and RFC 7757 §4.2 hairpinning, on packets built
//! by etherparse, output checked by etherparse.

// Test data is made by truncating counters to bytes on purpose.
#![allow(clippy::cast_possible_truncation)]

mod oracle;

use etherparse::{
    IpHeaders, IpNumber, Ipv6Extensions, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader,
    PacketBuilder, TransportSlice,
};
use oracle::*;
use sixgate_xlat::{DropReason, Output, Siit, SiitConfig, Verdict};

fn one(siit: &Siit, pkt: &[u8]) -> (Verdict, Vec<Vec<u8>>) {
    let mut out = Output::new();
    let v = siit.translate(pkt, &mut out);
    (v, out.packets().map(<[u8]>::to_vec).collect())
}

#[test]
fn udp_maps_addresses_and_keeps_checksum_valid() {
    let pkt = udp6(H6, H4_V6, 64, b"hello ipv4");
    let (v, out) = one(&siit(), &pkt);
    assert_eq!(v, Verdict::SixToFour);
    let s = parse4(&out[0]);
    let h = ipv4_of(&s);
    assert_eq!((h.source(), h.destination()), (v4(H6_V4), v4(H4)));
    assert_eq!(h.ttl(), 63);
    assert_eq!(h.protocol(), IpNumber::UDP);
    let Some(TransportSlice::Udp(u)) = &s.transport else {
        panic!()
    };
    assert_eq!(u.payload(), b"hello ipv4");
}

#[test]
fn tcp_segment_keeps_checksum_valid() {
    let payload: Vec<u8> = (0..1440u32).map(|i| (i * 13) as u8).collect();
    let (v, out) = one(&siit(), &tcp6(H6, H4_V6, &payload));
    assert_eq!(v, Verdict::SixToFour);
    let s = parse4(&out[0]);
    let Some(TransportSlice::Tcp(t)) = &s.transport else {
        panic!()
    };
    assert_eq!(t.payload(), &payload[..]);
}

#[test]
fn packets_of_1260_bytes_or_less_get_df0_and_bigger_get_df1() {
    // IPv4 size = IPv6 size - 20; UDP header 8, IPv4 header 20.
    for (v4_len, df) in [(1260usize, false), (1261, true), (100, false), (1500, true)] {
        let (_, out) = one(&siit(), &udp6(H6, H4_V6, 64, &vec![0; v4_len - 28]));
        let h = ipv4_of(&parse4(&out[0]));
        assert_eq!(out[0].len(), v4_len);
        assert_eq!(h.dont_fragment(), df, "{v4_len} bytes");
        assert!(!h.more_fragments());
    }
}

#[test]
fn traffic_class_is_copied_unless_reset_tos() {
    let mut pkt = udp6(H6, H4_V6, 64, b"x");
    pkt[0] = 0x6b; // traffic class 0xb8
    pkt[1] = 0x80;
    let (_, out) = one(&siit(), &pkt);
    assert_eq!(out[0][1], 0xb8);
    let reset = Siit::new(SiitConfig {
        reset_tos: true,
        new_tos: 0x20,
        ..config()
    });
    let (_, out) = one(&reset, &pkt);
    assert_eq!(out[0][1], 0x20);
}

fn with_ext(ext: Ipv6Extensions, payload: &[u8]) -> Vec<u8> {
    let h = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: 0,
        next_header: IpNumber::UDP,
        hop_limit: 64,
        source: v6(H6),
        destination: v6(H4_V6),
    };
    let mut v = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv6(h, ext))
        .udp(40000, 53)
        .write(&mut v, payload)
        .unwrap();
    v
}

#[test]
fn hop_by_hop_and_destination_options_are_skipped() {
    let opts = Ipv6RawExtHeader::new_raw(IpNumber::UDP, &[1, 4, 0, 0, 0, 0]).unwrap();
    let ext = Ipv6Extensions {
        hop_by_hop_options: Some(opts.clone()),
        destination_options: Some(opts),
        ..Default::default()
    };
    let (v, out) = one(&siit(), &with_ext(ext, b"through options"));
    assert_eq!(v, Verdict::SixToFour);
    let s = parse4(&out[0]);
    assert_eq!(
        out[0].len(),
        20 + 8 + 15,
        "extension headers not carried over"
    );
    let Some(TransportSlice::Udp(u)) = &s.transport else {
        panic!()
    };
    assert_eq!(u.payload(), b"through options");
}

#[test]
fn routing_header_with_segments_left_gets_parameter_problem() {
    // Routing type 0 (deprecated but parseable), segments left 1.
    let rh = Ipv6RawExtHeader::new_raw(IpNumber::UDP, &[0, 1, 0, 0, 0, 0]).unwrap();
    let ext = Ipv6Extensions {
        routing: Some(etherparse::Ipv6RoutingExtensions {
            routing: rh,
            final_destination_options: None,
        }),
        ..Default::default()
    };
    let pkt = with_ext(ext, b"x");
    let (v, out) = one(&siit(), &pkt);
    assert_eq!(v, Verdict::IcmpError(DropReason::SegmentsLeft));
    let s = parse6(&out[0]);
    let h = ipv6_of(&s);
    assert_eq!((h.source(), h.destination()), (v6(OWN6), v6(H6)));
    let Some(TransportSlice::Icmpv6(i)) = &s.transport else {
        panic!()
    };
    assert_eq!((i.type_u8(), i.code_u8()), (4, 0));
    assert_eq!(
        u32::from_be_bytes(i.bytes5to8()),
        43,
        "points at Segments Left"
    );
}

#[test]
fn fragment_header_becomes_ipv4_fragment_fields() {
    let ext = Ipv6Extensions {
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber::UDP,
            etherparse::IpFragOffset::try_new(0).unwrap(),
            true,
            0xabcd_1234,
        )),
        ..Default::default()
    };
    let pkt = with_ext(ext, &[7; 64]);
    let (v, out) = one(&siit(), &pkt);
    assert_eq!(v, Verdict::SixToFour);
    let h = ipv4_of(&parse4(&out[0]));
    assert_eq!(
        h.identification(),
        0x1234,
        "low 16 bits of the IPv6 identification"
    );
    assert!(h.more_fragments());
    assert!(!h.dont_fragment());
    assert_eq!(out[0].len(), 20 + 8 + 64);
}

#[test]
fn hop_limit_one_gets_time_exceeded_from_own_ipv6() {
    let pkt = udp6(H6, H4_V6, 1, b"tracepath probe");
    let (v, out) = one(&siit(), &pkt);
    assert_eq!(v, Verdict::IcmpError(DropReason::HopLimitExpired));
    let s = parse6(&out[0]);
    let h = ipv6_of(&s);
    assert_eq!((h.source(), h.destination()), (v6(OWN6), v6(H6)));
    let Some(TransportSlice::Icmpv6(i)) = &s.transport else {
        panic!()
    };
    assert_eq!((i.type_u8(), i.code_u8()), (3, 0));
    assert_eq!(i.payload(), &pkt[..]);
}

#[test]
fn time_exceeded_is_not_sent_about_an_icmp_error() {
    let mut pkt = icmp6_raw(H6, H4_V6, 1, 4, [0; 4], &udp6(H4_V6, H6, 3, b"x"));
    pkt[7] = 1; // hop limit 1
    assert_eq!(
        one(&siit(), &pkt).0,
        Verdict::Drop(DropReason::HopLimitExpired)
    );
}

#[test]
fn echo_request_maps_to_type_8_without_pseudo_header() {
    let (v, out) = one(&siit(), &echo6(H6, H4_V6, b"ping6"));
    assert_eq!(v, Verdict::SixToFour);
    let s = parse4(&out[0]);
    let Some(TransportSlice::Icmpv4(i)) = &s.transport else {
        panic!()
    };
    assert_eq!((i.type_u8(), i.code_u8()), (8, 0));
    assert_eq!(i.payload(), b"ping6");
}

#[test]
fn packet_too_big_becomes_fragmentation_needed_with_mtu_minus_20() {
    // H4 sent a big packet to H6; an IPv6 router (EAM-mapped) on the way
    // answers with a Packet Too Big that goes back to H4 through SIIT.
    let inner = udp6(H4_V6, H6, 63, &[0xcd; 1400]);
    let pkt = icmp6_raw(
        "2001:db8:6::1",
        H4_V6,
        2,
        0,
        1280u32.to_be_bytes(),
        &inner[..1232],
    );
    let (v, out) = one(&siit(), &pkt);
    assert_eq!(v, Verdict::SixToFour);
    let s = parse4(&out[0]);
    assert!(out[0].len() <= 576, "ICMPv4 error cut to 576 bytes");
    let h = ipv4_of(&s);
    assert_eq!(
        h.source(),
        v4("192.0.2.1"),
        "router 2001:db8:6::1 is EAM-mapped"
    );
    assert_eq!(h.destination(), v4(H4));
    let Some(TransportSlice::Icmpv4(i)) = &s.transport else {
        panic!()
    };
    assert_eq!((i.type_u8(), i.code_u8()), (3, 4));
    assert_eq!(i.bytes5to8(), [0, 0, 0x04, 0xec], "1280 - 20 = 1260");
    // The inner packet is IPv4 H4 -> H6_V4, with the original lengths.
    let inner4 = &i.payload()[..20];
    let ih = etherparse::Ipv4HeaderSlice::from_slice(inner4).unwrap();
    assert_eq!((ih.source(), ih.destination()), (v4(H4), v4(H6_V4)));
    assert_eq!(usize::from(ih.total_len()), 1448 - 20);
    assert_eq!(ih.to_header().calc_header_checksum(), ih.header_checksum());
}

#[test]
fn icmpv6_error_from_a_native_ipv6_router_uses_the_rfc6791_pool() {
    let inner = udp6(H4_V6, H6, 63, &[0; 16]);
    let pkt = icmp6_raw("2001:db8:99::1", H4_V6, 3, 0, [0; 4], &inner);
    let (v, out) = one(&siit(), &pkt);
    assert_eq!(v, Verdict::SixToFour);
    let h = ipv4_of(&parse4(&out[0]));
    let src = std::net::Ipv4Addr::from(h.source());
    assert!(
        "203.0.113.8/30"
            .parse::<sixgate_xlat::Ipv4Prefix>()
            .unwrap()
            .contains(src),
        "{src}"
    );
    // The same router's plain packets are not translated.
    let (v, _) = one(&siit(), &udp6("2001:db8:99::1", H4_V6, 64, b"x"));
    assert_eq!(v, Verdict::Drop(DropReason::UntranslatableSource));
}

#[test]
fn icmpv6_type_code_table_of_section_5_2() {
    // (type, code, rest) -> Some((type4, code4)) or dropped.
    type Case = (u8, u8, u32, Option<(u8, u8)>);
    let cases: [Case; 10] = [
        (1, 0, 0, Some((3, 1))),
        (1, 1, 0, Some((3, 10))),
        (1, 2, 0, Some((3, 1))),
        (1, 3, 0, Some((3, 1))),
        (1, 4, 0, Some((3, 3))),
        (1, 5, 0, None),
        (3, 1, 0, Some((11, 1))),
        (4, 1, 6, Some((3, 2))),
        (4, 2, 0, None),
        (200, 0, 0, None),
    ];
    for (t, c, rest, want) in cases {
        let inner = udp6(H4_V6, H6, 63, &[0; 16]);
        let pkt = icmp6_raw(H6, H4_V6, t, c, rest.to_be_bytes(), &inner);
        let (v, out) = one(&siit(), &pkt);
        match want {
            Some((t4, c4)) => {
                let s = parse4(&out[0]);
                let Some(TransportSlice::Icmpv4(i)) = &s.transport else {
                    panic!()
                };
                assert_eq!((i.type_u8(), i.code_u8()), (t4, c4), "type {t} code {c}");
            }
            None => assert_eq!(
                v,
                Verdict::Drop(DropReason::IcmpUntranslatable),
                "type {t} code {c}"
            ),
        }
    }
}

#[test]
fn parameter_problem_pointer_follows_figure_6() {
    for (p6, p4) in [
        (0u32, Some(0u8)),
        (1, Some(1)),
        (4, Some(2)),
        (6, Some(9)),
        (7, Some(8)),
        (8, Some(12)),
        (23, Some(12)),
        (24, Some(16)),
        (39, Some(16)),
        (2, None),
        (40, None),
    ] {
        let inner = udp6(H4_V6, H6, 63, &[0; 16]);
        let pkt = icmp6_raw(H6, H4_V6, 4, 0, p6.to_be_bytes(), &inner);
        let (v, out) = one(&siit(), &pkt);
        match p4 {
            Some(p4) => {
                let s = parse4(&out[0]);
                let Some(TransportSlice::Icmpv4(i)) = &s.transport else {
                    panic!()
                };
                assert_eq!(
                    (i.type_u8(), i.code_u8(), i.bytes5to8()[0]),
                    (12, 0, p4),
                    "pointer {p6}"
                );
            }
            None => assert_eq!(
                v,
                Verdict::Drop(DropReason::IcmpUntranslatable),
                "pointer {p6}"
            ),
        }
    }
}

#[test]
fn neighbor_discovery_and_mld_are_dropped_silently() {
    for t in [130u8, 133, 134, 135, 136, 137, 143] {
        let pkt = icmp6_raw(H6, H4_V6, t, 0, [0; 4], &[0; 16]);
        assert_eq!(
            one(&siit(), &pkt).0,
            Verdict::Drop(DropReason::IcmpUntranslatable),
            "type {t}"
        );
    }
}

#[test]
fn fragmented_icmpv6_is_dropped() {
    let h = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: 0,
        next_header: IpNumber::IPV6_ICMP,
        hop_limit: 64,
        source: v6(H6),
        destination: v6(H4_V6),
    };
    let ext = Ipv6Extensions {
        fragment: Some(Ipv6FragmentHeader::new(
            IpNumber::IPV6_ICMP,
            etherparse::IpFragOffset::try_new(0).unwrap(),
            true,
            1,
        )),
        ..Default::default()
    };
    let mut pkt = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv6(h, ext))
        .icmpv6_echo_request(1, 1)
        .write(&mut pkt, &[0; 32])
        .unwrap();
    assert_eq!(
        one(&siit(), &pkt).0,
        Verdict::Drop(DropReason::FragmentedIcmp)
    );
}

#[test]
fn truncated_and_garbage_ipv6_is_dropped_as_malformed() {
    let pkt = udp6(H6, H4_V6, 64, b"abc");
    assert_eq!(
        one(&siit(), &pkt[..30]).0,
        Verdict::Drop(DropReason::MalformedIpv6)
    );
    assert_eq!(
        one(&siit(), &pkt[..50]).0,
        Verdict::Drop(DropReason::MalformedIpv6)
    );
    assert_eq!(
        one(&siit(), &[]).0,
        Verdict::Drop(DropReason::UnknownVersion)
    );
    assert_eq!(
        one(&siit(), &[0x50; 40]).0,
        Verdict::Drop(DropReason::UnknownVersion)
    );
}

#[test]
fn hairpin_to_an_eam_address_comes_back_as_ipv6_with_a_pool6_source() {
    // H6 (2001:db8:6::10 = 192.0.2.16) sends to 192.0.2.32 through pool6:
    // 192.0.2.32 is itself EAM-mapped to 2001:db8:6::20.
    let pkt = udp6(H6, "2001:db8:64::c000:220", 64, b"hairpin");
    let (v, out) = one(&siit(), &pkt);
    assert_eq!(v, Verdict::Hairpin);
    let s = parse6(&out[0]);
    let h = ipv6_of(&s);
    assert_eq!(h.destination(), v6("2001:db8:6::20"));
    assert_eq!(
        h.source(),
        v6("2001:db8:64::c000:210"),
        "RFC 7757 §4.2: the source goes through pool6, not the EAM"
    );
    assert_eq!(h.hop_limit(), 62, "two translations, two hops");
    let Some(TransportSlice::Udp(u)) = &s.transport else {
        panic!()
    };
    assert_eq!(u.payload(), b"hairpin");

    let off = Siit::new(SiitConfig {
        hairpinning: false,
        ..config()
    });
    assert_eq!(one(&off, &pkt).0, Verdict::SixToFour);
}

#[test]
fn an_eam_mapped_ipv4_host_is_reached_without_hairpin() {
    // An EAM entry that names an IPv4 host: its IPv6 form is translated by
    // the EAM and must go out as IPv4, not loop back to IPv6.
    let mut c = config();
    c.eam.push(
        sixgate_xlat::EamEntry::new(
            "198.51.100.2/32".parse().unwrap(),
            "2001:db8:46::2/128".parse().unwrap(),
        )
        .unwrap(),
    );
    let siit = Siit::new(c);
    let (v, out) = one(&siit, &udp6(H6, "2001:db8:46::2", 64, b"to v4 host"));
    assert_eq!(v, Verdict::SixToFour);
    assert_eq!(ipv4_of(&parse4(&out[0])).destination(), v4("198.51.100.2"));
}

#[test]
fn multicast_with_hop_limit_one_gets_no_icmp_error() {
    // The kernel's MLD report into the TUN device: fe80::1 -> ff02::16, hop
    // limit 1. RFC 4443 §2.4 (e): no error about multicast; it is simply
    // not translatable.
    let mut pkt = icmp6_raw("fe80::1", "ff02::16", 143, 0, [0; 4], &[0; 20]);
    pkt[7] = 1;
    let (v, out) = one(&siit(), &pkt);
    assert!(matches!(v, Verdict::Drop(_)), "{v:?}");
    assert!(out.is_empty());
}

#[test]
fn hop_limit_one_to_an_untranslatable_destination_is_just_dropped() {
    let (v, out) = one(&siit(), &udp6(H6, "2001:db8:99::1", 1, b"x"));
    assert_eq!(v, Verdict::Drop(DropReason::UntranslatableDestination));
    assert!(out.is_empty());
}

#[test]
fn icmpv4_carried_in_ipv6_is_dropped() {
    let mut pkt = udp6(H6, H4_V6, 64, &[0; 16]);
    pkt[6] = 1; // next header ICMP (for IPv4)
    assert_eq!(
        one(&siit(), &pkt).0,
        Verdict::Drop(DropReason::IcmpUntranslatable)
    );
}

#[test]
fn hairpinned_icmp_error_carries_the_addresses_the_sender_used() {
    // H6b (2001:db8:6::20 = 192.0.2.32) sent to H6 in its pool6 form; that
    // was hairpinned and reached H6 from 2001:db8:64::c000:220. H6 answers
    // Port Unreachable; once hairpinned back, the inner packet must read
    // H6b -> 2001:db8:64::c000:210, as H6b sent it.
    let inner = udp6("2001:db8:64::c000:220", H6, 62, &[0; 16]);
    let pkt = icmp6_raw(H6, "2001:db8:64::c000:220", 1, 4, [0; 4], &inner);
    let (v, out) = one(&siit(), &pkt);
    assert_eq!(v, Verdict::Hairpin);
    let s = parse6(&out[0]);
    let h = ipv6_of(&s);
    assert_eq!(h.source(), v6("2001:db8:64::c000:210"));
    assert_eq!(h.destination(), v6("2001:db8:6::20"));
    let Some(TransportSlice::Icmpv6(i)) = &s.transport else {
        panic!()
    };
    assert_eq!((i.type_u8(), i.code_u8()), (1, 4));
    let inner6 = parse6(i.payload());
    let ih = ipv6_of(&inner6);
    assert_eq!(ih.source(), v6("2001:db8:6::20"));
    assert_eq!(ih.destination(), v6("2001:db8:64::c000:210"));
}
