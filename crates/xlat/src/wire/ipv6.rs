//! IPv6 header (RFC 8200 §3) and the extension header walk of RFC 7915 §5.1.

use std::net::Ipv6Addr;

use super::{be16, proto, set_be16, WireError};

mod field {
    use std::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;
/// Length of the Fragment header (RFC 8200 §4.5).
pub const FRAG_HEADER_LEN: usize = 8;
/// At most this many extension headers are walked before giving up.
const MAX_EXT_HEADERS: usize = 16;

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T> {
    buffer: T,
}

/// The Fragment header (RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentHeader {
    /// Offset of the header from the start of the packet.
    pub at: usize,
    /// Fragment offset in 8-byte units.
    pub offset_units: u16,
    pub more: bool,
    pub ident: u32,
}

/// What lies behind the extension headers: RFC 7915 §5.1 skips Hop-by-Hop,
/// Destination Options and Routing headers with Segments Left zero, and
/// translates the Fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Walk {
    /// The upper-layer protocol (or, in a non-first fragment, the Next Header
    /// of the Fragment header).
    pub protocol: u8,
    /// Offset of the upper-layer data from the start of the packet.
    pub upper_at: usize,
    pub fragment: Option<FragmentHeader>,
    /// Offset of a non-zero Segments Left field of a Routing header: RFC 7915
    /// §5.1 answers such a packet with a Parameter Problem pointing there.
    pub segments_left_at: Option<usize>,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Checks version 6 and 40 + payload length <= buffer length. A zero
    /// payload length (jumbogram, RFC 2675) is refused as malformed.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        let b = p.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if p.version() != 6 {
            return Err(WireError::Malformed);
        }
        if HEADER_LEN + usize::from(p.payload_len()) > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }

    pub fn flow_label(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([0, b[1] & 0x0f, b[2], b[3]])
    }

    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        Ipv6Addr::from(a)
    }

    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        Ipv6Addr::from(a)
    }

    /// Header and payload, without bytes past the payload length.
    pub fn packet(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// Walks the extension headers (RFC 7915 §5.1). `Err` when the chain runs
    /// past the payload length (or the buffer, for the truncated packet inside
    /// an ICMPv6 error) or is longer than 16 headers. Needs 40 bytes.
    pub fn walk(&self) -> Result<Ipv6Walk, WireError> {
        let all = self.buffer.as_ref();
        let b = &all[..all.len().min(HEADER_LEN + usize::from(self.payload_len()))];
        let mut nh = self.next_header();
        let mut at = HEADER_LEN;
        let mut fragment = None;
        let mut segments_left_at = None;
        for _ in 0..MAX_EXT_HEADERS {
            match nh {
                proto::HOP_BY_HOP | proto::DEST_OPTS | proto::ROUTING => {
                    if at + 8 > b.len() {
                        return Err(WireError::Truncated);
                    }
                    let len = (usize::from(b[at + 1]) + 1) * 8;
                    if at + len > b.len() {
                        return Err(WireError::Truncated);
                    }
                    if nh == proto::ROUTING && b[at + 3] != 0 && segments_left_at.is_none() {
                        segments_left_at = Some(at + 3);
                    }
                    nh = b[at];
                    at += len;
                }
                proto::FRAGMENT => {
                    if fragment.is_some() {
                        return Err(WireError::Malformed);
                    }
                    if at + FRAG_HEADER_LEN > b.len() {
                        return Err(WireError::Truncated);
                    }
                    let off = be16(b, at + 2);
                    let fh = FragmentHeader {
                        at,
                        offset_units: off >> 3,
                        more: off & 1 != 0,
                        ident: u32::from_be_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]),
                    };
                    fragment = Some(fh);
                    nh = b[at];
                    at += FRAG_HEADER_LEN;
                    if fh.offset_units != 0 {
                        // The rest is fragment data, not headers.
                        break;
                    }
                }
                _ => break,
            }
        }
        if matches!(nh, proto::HOP_BY_HOP | proto::DEST_OPTS | proto::ROUTING)
            && fragment.is_none_or(|f| f.offset_units == 0)
        {
            return Err(WireError::Malformed);
        }
        Ok(Ipv6Walk {
            protocol: nh,
            upper_at: at,
            fragment,
            segments_left_at,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Version 6, the traffic class and the flow label.
    pub fn set_version_tc_flow(&mut self, tc: u8, flow: u32) {
        let v = (6u32 << 28) | (u32::from(tc) << 20) | (flow & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&v.to_be_bytes());
    }

    pub fn set_payload_len(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::LENGTH.start, v);
    }

    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = v;
    }

    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }
}

/// Writes a Fragment header into `b[..8]`.
pub fn emit_fragment_header(
    b: &mut [u8],
    next_header: u8,
    offset_units: u16,
    more: bool,
    ident: u32,
) {
    b[0] = next_header;
    b[1] = 0;
    set_be16(b, 2, (offset_units << 3) | u16::from(more));
    b[4..8].copy_from_slice(&ident.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(next: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 40];
        let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(0xb8, 0x12345);
        p.set_payload_len(u16::try_from(ext.len() + payload.len()).unwrap());
        p.set_next_header(next);
        p.set_hop_limit(64);
        p.set_src_addr("2001:db8::1".parse().unwrap());
        p.set_dst_addr("64:ff9b::c000:201".parse().unwrap());
        b.extend_from_slice(ext);
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn deconstructs_fields() {
        let b = packet(17, &[], &[0; 8]);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        let w = p.walk().unwrap();
        assert_eq!((w.protocol, w.upper_at, w.fragment), (17, 40, None));
    }

    #[test]
    fn walk_skips_hop_by_hop_and_routing_with_zero_segments_left() {
        // HBH (8 bytes, next = routing), routing type 0 segments left 0 (8 bytes, next = UDP).
        let ext = [43, 0, 1, 4, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0];
        let b = packet(0, &ext, &[0; 8]);
        let w = Ipv6Packet::new_checked(&b[..]).unwrap().walk().unwrap();
        assert_eq!((w.protocol, w.upper_at, w.segments_left_at), (17, 56, None));
    }

    #[test]
    fn walk_reports_segments_left_offset() {
        let ext = [17, 0, 0, 2, 0, 0, 0, 0];
        let b = packet(43, &ext, &[0; 8]);
        let w = Ipv6Packet::new_checked(&b[..]).unwrap().walk().unwrap();
        assert_eq!(w.segments_left_at, Some(43));
    }

    #[test]
    fn walk_reads_the_fragment_header() {
        let mut fh = [0u8; 8];
        emit_fragment_header(&mut fh, 17, 185, true, 0xdead_beef);
        let b = packet(44, &fh, &[0; 16]);
        let w = Ipv6Packet::new_checked(&b[..]).unwrap().walk().unwrap();
        let f = w.fragment.unwrap();
        assert_eq!((f.offset_units, f.more, f.ident), (185, true, 0xdead_beef));
        assert_eq!((w.protocol, w.upper_at), (17, 48));
    }

    #[test]
    fn truncated_chains_are_refused() {
        let b = packet(0, &[17, 1, 0, 0, 0, 0, 0, 0], &[]);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.walk().unwrap_err(), WireError::Truncated);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..45]).unwrap_err(),
            WireError::Truncated
        );
    }
}
