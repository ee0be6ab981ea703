//! Shared setup for the fuzz targets: one SIIT with pool6, an EAM table,
//! RFC 6791 pools and its own addresses, so every code path is reachable.

use sixgate_xlat::wire::{IcmpPacket, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};
use sixgate_xlat::{EamEntry, Output, Siit, SiitConfig};

pub fn siit() -> Siit {
    let eam = |v4: &str, v6: &str| {
        EamEntry::new(
            v4.parse().expect("valid v4 prefix"),
            v6.parse().expect("valid v6 prefix"),
        )
        .expect("equal suffix lengths")
    };
    Siit::new(SiitConfig {
        pool6: Some("2001:db8:64::/96".parse().expect("valid pool6")),
        eam: vec![
            eam("192.0.2.0/24", "2001:db8:6::/120"),
            eam("198.51.100.9/32", "2001:db8:9::9/128"),
        ],
        rfc6791_v4: vec!["203.0.113.8/30".parse().expect("valid pool")],
        rfc6791_v6: Some("2001:db8:6791::/96".parse().expect("valid pool")),
        own_ipv4: Some("203.0.113.254".parse().expect("valid address")),
        own_ipv6: Some("2001:db8:ffff::1".parse().expect("valid address")),
        ..SiitConfig::default()
    })
}

/// Translates `data`, then translates every produced packet once more.
pub fn translate_twice(siit: &Siit, data: &[u8]) {
    let mut out = Output::new();
    let mut again = Output::new();
    let _ = siit.translate(data, &mut out);
    for p in out.packets() {
        let _ = siit.translate(p, &mut again);
    }
}

/// Runs every view's checked constructor and getters.
pub fn parse_all(data: &[u8]) {
    if let Ok(p) = Ipv4Packet::new_checked(data) {
        let _ = (p.tos(), p.ident(), p.frag_offset(), p.ttl(), p.protocol());
        let _ = (
            p.src_addr(),
            p.dst_addr(),
            p.verify_checksum(),
            p.payload().len(),
        );
        let _ = p.has_unexpired_source_route();
    }
    if let Ok(p) = Ipv6Packet::new_checked(data) {
        let _ = (
            p.traffic_class(),
            p.flow_label(),
            p.hop_limit(),
            p.src_addr(),
            p.dst_addr(),
        );
        let _ = p.walk();
    }
    if data.len() >= 40 {
        let _ = Ipv6Packet::new_unchecked(data).walk();
    }
    if let Ok(p) = IcmpPacket::new_checked(data) {
        let _ = (
            p.msg_type(),
            p.code(),
            p.checksum(),
            p.rest(),
            p.body().len(),
        );
    }
    if let Ok(p) = UdpPacket::new_checked(data) {
        let _ = (p.src_port(), p.dst_port(), p.length(), p.checksum());
    }
    if let Ok(p) = TcpPacket::new_checked(data) {
        let _ = (
            p.src_port(),
            p.dst_port(),
            p.seq_number(),
            p.header_len(),
            p.checksum(),
        );
    }
}
