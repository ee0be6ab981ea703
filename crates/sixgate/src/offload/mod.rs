//! What the TUN drivers of siit and nat64 share for TUN offloads
//! (`IFF_VNET_HDR`): the partial checksum of a TCP super-packet, and
//! completing the partial checksums the kernel leaves to us; UDP
//! super-packets cut on reading and joined on writing ([`udp`]).

pub mod udp;

use std::io;

use sixgate_telemetry::Counter;
use sixgate_xlat::checksum;

use crate::tun::{Tun, VnetHdr};

use udp::{UdpOffload, WriteCounters};

/// The counters a driver keeps for what it reads and writes with offloads.
#[derive(Clone, Copy)]
pub struct OffloadCounters<'a> {
    /// Packets dropped for a virtio-net header the driver cannot honour.
    pub vnet_errors: &'a Counter,
    /// TCP super-packets translated and written whole.
    pub gso_packets: &'a Counter,
    /// UDP super-packets read and cut into datagrams.
    pub udp_gso_read: &'a Counter,
    pub write: WriteCounters<'a>,
}

/// A packet read from a device with offloads, by what its virtio-net
/// header asks of the driver.
pub enum Read<'a> {
    /// A packet to translate as it is (a partial checksum completed here).
    Plain(&'a mut [u8]),
    /// A TCP super-packet, its checksum field holding the pseudo-header sum.
    TcpSuper(VnetHdr, &'a mut [u8]),
    /// A UDP super-packet, its checksum field holding the pseudo-header sum.
    UdpSuper(VnetHdr, &'a mut [u8]),
}

/// Splits `raw` (a [`VnetHdr`] and a packet) by what the header asks; a
/// header that cannot be honoured (or a partial checksum outside the
/// packet) gives `None` and is counted in `vnet_errors`.
pub fn read<'a>(raw: &'a mut [u8], vnet_errors: &Counter) -> Option<Read<'a>> {
    let hdr = VnetHdr::parse(raw);
    let (Some(hdr), Some(packet)) = (hdr, raw.get_mut(VnetHdr::LEN..)) else {
        vnet_errors.inc();
        return None;
    };
    let partial = hdr.flags & VnetHdr::NEEDS_CSUM != 0;
    match hdr.gso_type & !VnetHdr::GSO_ECN {
        VnetHdr::GSO_NONE if !partial => Some(Read::Plain(packet)),
        VnetHdr::GSO_NONE if complete_checksum(packet, hdr.csum_start, hdr.csum_offset) => {
            Some(Read::Plain(packet))
        }
        VnetHdr::GSO_TCPV4 | VnetHdr::GSO_TCPV6 if partial => Some(Read::TcpSuper(hdr, packet)),
        VnetHdr::GSO_UDP_L4 if partial => Some(Read::UdpSuper(hdr, packet)),
        _ => {
            vnet_errors.inc();
            None
        }
    }
}

/// Writes the translation of a TCP super-packet (`segment`, with `tcp`
/// describing it) as a super-packet, after the UDP runs pending in
/// `writer` so that order is kept; counted.
pub fn write_tcp_super_packet(
    tun: &Tun,
    writer: &mut UdpOffload,
    received: &VnetHdr,
    segment: &[u8],
    tcp: &TcpPartial,
    counters: OffloadCounters<'_>,
) {
    counters.gso_packets.inc();
    writer.coalescer.flush(tun, counters.write);
    match send_tcp_super_packet(tun, received, segment, tcp) {
        Ok(()) => {}
        Err(None) => counters.vnet_errors.inc(),
        Err(Some(err)) => {
            counters.write.write_errors.inc();
            tracing::trace!("tun write failed: {err}");
        }
    }
}

/// Offset of the checksum in a TCP header.
pub const TCP_CHECKSUM_AT: u16 = 16;

/// Where the TCP header of a translated super-packet is, and the partial
/// checksum (the pseudo-header sum, not complemented) the kernel expects in
/// its checksum field.
#[derive(Debug, PartialEq, Eq)]
pub struct TcpPartial {
    pub csum_start: u16,
    pub hdr_len: u16,
    pub pseudo_sum: u16,
}

impl TcpPartial {
    /// `None` unless `packet` is IPv4 or IPv6 (no extension header) carrying
    /// a whole TCP header.
    pub fn of(packet: &[u8]) -> Option<Self> {
        let (l4, l4_len, pseudo) = match packet.first()? >> 4 {
            4 => {
                let ihl = usize::from(packet.first()? & 0x0f) * 4;
                if *packet.get(9)? != 6 || ihl < 20 {
                    return None;
                }
                let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
                let l4_len = total.checked_sub(ihl)?;
                let sum = checksum::add(6 + u64::try_from(l4_len).ok()?, packet.get(12..20)?);
                (ihl, l4_len, sum)
            }
            6 => {
                if *packet.get(6)? != 6 {
                    return None;
                }
                let l4_len = usize::from(u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]));
                let sum = checksum::add(6 + u64::try_from(l4_len).ok()?, packet.get(8..40)?);
                (40, l4_len, sum)
            }
            _ => return None,
        };
        let data_offset = usize::from(packet.get(l4 + 12)? >> 4) * 4;
        if data_offset < 20 || l4_len < data_offset || packet.len() < l4 + data_offset {
            return None;
        }
        Some(Self {
            csum_start: u16::try_from(l4).ok()?,
            hdr_len: u16::try_from(l4 + data_offset).ok()?,
            pseudo_sum: checksum::fold(pseudo),
        })
    }
}

/// Completes a partial checksum (`NEEDS_CSUM`): the field at `start +
/// offset` holds the pseudo-header sum; the checksum covers it and every
/// byte from `start` on. False when the offsets do not fit the packet.
pub fn complete_checksum(packet: &mut [u8], start: u16, offset: u16) -> bool {
    let (start, at) = (usize::from(start), usize::from(start) + usize::from(offset));
    if at + 2 > packet.len() {
        return false;
    }
    let Some(covered) = packet.get(start..) else {
        return false;
    };
    let mut sum = !checksum::fold(checksum::add(0, covered));
    // UDP (checksum at offset 6) sends a computed zero as all ones.
    if sum == 0 && offset == 6 {
        sum = 0xffff;
    }
    packet[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    true
}

/// Writes a translated TCP super-packet: a virtio-net header with the GSO
/// type of its new family (the ECN bit of `received` kept), and the partial
/// checksum the kernel expects in place of the checksum the core wrote.
/// `Err(None)` when the checksum field lies outside `segment`.
fn send_tcp_super_packet(
    tun: &Tun,
    received: &VnetHdr,
    segment: &[u8],
    tcp: &TcpPartial,
) -> Result<(), Option<io::Error>> {
    let gso_type = if segment.first().is_some_and(|b| b >> 4 == 6) {
        VnetHdr::GSO_TCPV6
    } else {
        VnetHdr::GSO_TCPV4
    };
    let header = VnetHdr {
        flags: VnetHdr::NEEDS_CSUM,
        gso_type: gso_type | (received.gso_type & VnetHdr::GSO_ECN),
        hdr_len: tcp.hdr_len,
        gso_size: received.gso_size,
        csum_start: tcp.csum_start,
        csum_offset: TCP_CHECKSUM_AT,
    }
    .to_bytes();
    let at = usize::from(tcp.csum_start) + usize::from(TCP_CHECKSUM_AT);
    let (Some(head), Some(tail)) = (segment.get(..at), segment.get(at + 2..)) else {
        return Err(None);
    };
    let sum = tcp.pseudo_sum.to_be_bytes();
    let parts = [
        io::IoSlice::new(&header),
        io::IoSlice::new(head),
        io::IoSlice::new(&sum),
        io::IoSlice::new(tail),
    ];
    tun.send_parts(&parts).map_err(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP packet (20-byte TCP header, 5 bytes of data) with a
    /// correct checksum, computed here from the definition (RFC 793).
    fn tcp4_packet() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 45, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 6, 198, 51, 100, 2, // IPv4
            0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0,
            0, // TCP
            b'h', b'e', b'l', b'l', b'o',
        ];
        let pseudo = checksum::add(6 + 25, &p[12..20]);
        let checksum = !checksum::fold(checksum::add(pseudo, &p[20..]));
        p[36..38].copy_from_slice(&checksum.to_be_bytes());
        p
    }

    #[test]
    fn a_partial_checksum_completes_to_the_full_one() {
        let full = tcp4_packet();
        let mut partial = full.clone();
        let pseudo = checksum::fold(checksum::add(6 + 25, &full[12..20]));
        partial[36..38].copy_from_slice(&pseudo.to_be_bytes());
        assert!(complete_checksum(&mut partial, 20, 16));
        assert_eq!(partial, full);
        assert!(
            !complete_checksum(&mut partial, 40, 16),
            "offsets past the end"
        );
    }

    #[test]
    fn tcp_partial_locates_the_header_and_sums_the_pseudo_header() {
        let p = tcp4_packet();
        let tcp = TcpPartial::of(&p).unwrap();
        assert_eq!(tcp.csum_start, 20);
        assert_eq!(tcp.hdr_len, 40);
        assert_eq!(
            tcp.pseudo_sum,
            checksum::fold(checksum::add(6 + 25, &p[12..20]))
        );
        // Not TCP, or a truncated header: no.
        let mut udp = p.clone();
        udp[9] = 17;
        assert_eq!(TcpPartial::of(&udp), None);
        assert_eq!(TcpPartial::of(&p[..30]), None);
    }
}
