//! Test packets built and checked by etherparse, a crate we did not write.
#![allow(dead_code)]

use etherparse::{
    IpHeaders, IpNumber, Ipv4Header, Ipv6Header, NetSlice, PacketBuilder, SlicedPacket,
    TransportSlice,
};
use sixgate_xlat::{EamEntry, Siit, SiitConfig};

/// The IPv6 host, mapped by the EAM entry 192.0.2.0/24 <-> 2001:db8:6::/120.
pub const H6: &str = "2001:db8:6::10";
pub const H6_V4: &str = "192.0.2.16";
/// An IPv4 host, seen from IPv6 through pool6 2001:db8:64::/96.
pub const H4: &str = "198.51.100.7";
pub const H4_V6: &str = "2001:db8:64::c633:6407";
pub const OWN4: &str = "203.0.113.254";
pub const OWN6: &str = "2001:db8:ffff::1";

pub fn config() -> SiitConfig {
    SiitConfig {
        pool6: Some("2001:db8:64::/96".parse().unwrap()),
        eam: vec![EamEntry::new(
            "192.0.2.0/24".parse().unwrap(),
            "2001:db8:6::/120".parse().unwrap(),
        )
        .unwrap()],
        rfc6791_v4: vec!["203.0.113.8/30".parse().unwrap()],
        own_ipv4: Some(OWN4.parse().unwrap()),
        own_ipv6: Some(OWN6.parse().unwrap()),
        ..SiitConfig::default()
    }
}

pub fn siit() -> Siit {
    let c = config();
    c.validate().unwrap();
    Siit::new(c)
}

pub fn v4(s: &str) -> [u8; 4] {
    s.parse::<std::net::Ipv4Addr>().unwrap().octets()
}

pub fn v6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

/// An IPv4 header with DF as given, for the builder.
pub fn ipv4_header(src: &str, dst: &str, ttl: u8, df: bool) -> Ipv4Header {
    let mut h = Ipv4Header::new(0, ttl, IpNumber::UDP, v4(src), v4(dst)).unwrap();
    h.dont_fragment = df;
    h.identification = 0x4242;
    h
}

pub fn udp4(src: &str, dst: &str, ttl: u8, df: bool, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ip(IpHeaders::Ipv4(
        ipv4_header(src, dst, ttl, df),
        Default::default(),
    ))
    .udp(40000, 53);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

pub fn tcp4(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(v4(src), v4(dst), 64)
        .tcp(40000, 443, 1000, 65000)
        .ack(77)
        .psh();
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

pub fn echo4(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(v4(src), v4(dst), 64).icmpv4_echo_request(0x1234, 7);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

pub fn udp6(src: &str, dst: &str, hop: u8, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(v6(src), v6(dst), hop).udp(40000, 53);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

pub fn tcp6(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(v6(src), v6(dst), 64)
        .tcp(40000, 443, 1000, 65000)
        .ack(77)
        .psh();
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

pub fn echo6(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(v6(src), v6(dst), 64).icmpv6_echo_request(0x1234, 7);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// A raw ICMPv4 message (type, code, rest, body) in an IPv4 packet, with
/// etherparse computing both checksums.
pub fn icmp4_raw(src: &str, dst: &str, t: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(v4(src), v4(dst), 64).icmpv4_raw(t, code, rest);
    let mut v = Vec::new();
    b.write(&mut v, body).unwrap();
    v
}

pub fn icmp6_raw(src: &str, dst: &str, t: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(v6(src), v6(dst), 64).icmpv6_raw(t, code, rest);
    let mut v = Vec::new();
    b.write(&mut v, body).unwrap();
    v
}

/// Parses our IPv6 output with etherparse and checks the transport checksum.
pub fn parse6(pkt: &[u8]) -> SlicedPacket<'_> {
    let s = SlicedPacket::from_ip(pkt).expect("etherparse parses the IPv6 output");
    let Some(NetSlice::Ipv6(ip)) = &s.net else {
        panic!("not IPv6: {pkt:02x?}");
    };
    let h = ip.header();
    assert_eq!(usize::from(h.payload_length()) + Ipv6Header::LEN, pkt.len());
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
    s
}

/// Parses our IPv4 output with etherparse and checks the header and
/// transport checksums.
pub fn parse4(pkt: &[u8]) -> SlicedPacket<'_> {
    let s = SlicedPacket::from_ip(pkt).expect("etherparse parses the IPv4 output");
    let Some(NetSlice::Ipv4(ip)) = &s.net else {
        panic!("not IPv4: {pkt:02x?}");
    };
    let h = ip.header();
    assert_eq!(usize::from(h.total_len()), pkt.len());
    assert_eq!(
        h.to_header().calc_header_checksum(),
        h.header_checksum(),
        "IPv4 header checksum"
    );
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
    s
}

pub fn ipv6_of(s: &SlicedPacket<'_>) -> etherparse::Ipv6HeaderSlice<'static> {
    let Some(NetSlice::Ipv6(ip)) = &s.net else {
        panic!("not IPv6")
    };
    // Re-slice from an owned copy so that the caller keeps no borrow.
    let bytes: &'static [u8] = Box::leak(ip.header().slice().to_vec().into_boxed_slice());
    etherparse::Ipv6HeaderSlice::from_slice(bytes).unwrap()
}

pub fn ipv4_of(s: &SlicedPacket<'_>) -> etherparse::Ipv4HeaderSlice<'static> {
    let Some(NetSlice::Ipv4(ip)) = &s.net else {
        panic!("not IPv4")
    };
    let bytes: &'static [u8] = Box::leak(ip.header().slice().to_vec().into_boxed_slice());
    etherparse::Ipv4HeaderSlice::from_slice(bytes).unwrap()
}
