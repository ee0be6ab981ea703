//! UDP segmentation offload (USO) on both sides of a TUN device opened with
//! `IFF_VNET_HDR`.
//!
//! Reading: a UDP super-packet the kernel hands over (`GSO_UDP_L4`, from
//! UDP GRO forwarding or a local `UDP_SEGMENT` sender) is cut into its
//! datagrams by [`for_each_segment`], so the translator sees each datagram
//! as it was sent.
//!
//! Writing: [`UdpCoalescer`] joins the translated datagrams of each flow
//! written in a batch into one super-packet that the kernel cuts again on
//! its way out: one write, one trip through the forwarding path and one
//! wake-up of the receiving socket for a run of datagrams instead of one
//! each. Only datagrams whose checksum verifies are joined, since the
//! kernel computes the checksum of every segment afresh: a datagram that
//! arrived damaged goes out alone, with the checksum that lets its receiver
//! see the damage.

use std::io;

use sixgate_telemetry::Counter;
use sixgate_xlat::checksum;

use super::OffloadCounters;
use crate::tun::{Tun, VnetHdr};

/// Most datagrams joined in one super-packet (the kernel takes up to 128).
pub const MAX_SEGMENTS: usize = 64;
const UDP_HEADER: usize = 8;
const UDP_CHECKSUM_AT: u16 = 6;
const UDP: u8 = 17;
/// The longest IP + UDP header joined: IPv6 without extension headers.
const MAX_HEADER: usize = 48;

/// Where packets go: a TUN device, or a list in tests.
pub trait Sink {
    /// Writes one packet given in pieces, the first being a [`VnetHdr`].
    fn send_parts(&self, parts: &[io::IoSlice<'_>]) -> io::Result<()>;
}

impl Sink for Tun {
    fn send_parts(&self, parts: &[io::IoSlice<'_>]) -> io::Result<()> {
        Tun::send_parts(self, parts)
    }
}

/// The counters a [`UdpCoalescer`] bumps.
#[derive(Clone, Copy)]
pub struct WriteCounters<'a> {
    /// Writes the device refused.
    pub write_errors: &'a Counter,
    /// Datagrams that went out inside a super-packet.
    pub coalesced: &'a Counter,
}

/// Joins translated UDP datagrams into UDP super-packets, one run per flow
/// (see the module documentation), for up to [`MAX_RUNS`] flows at once, so
/// that datagrams of flows interleaved in a batch are joined too. Every
/// packet written goes through [`UdpCoalescer::write`], so that order is
/// kept within each flow: a datagram that cannot join its flow's run sends
/// that run first, and anything that is not a joinable datagram sends every
/// run first. [`UdpCoalescer::flush`] sends the pending runs; call it before
/// waiting for more packets.
///
/// A flow is an address pair and port pair. A run is datagrams of one flow
/// with the same IP and UDP header but for lengths, checksums and (IPv4)
/// identification: same TTL or hop limit, traffic class, flow label and DF
/// bit; no IPv4 options, fragments or IPv6 extension headers. All but the
/// last carry the same number of bytes, the last at most as many. The
/// kernel numbers the IPv4 segments from the first datagram's
/// identification on.
pub struct UdpCoalescer {
    /// Pending runs, oldest first.
    runs: Vec<Run>,
    /// Emptied runs kept for their buffers.
    spare: Vec<Run>,
}

/// Flows joined at once; a datagram of one more flow sends the oldest run.
pub const MAX_RUNS: usize = 8;

/// Datagrams of one flow waiting to leave as one super-packet.
struct Run {
    header: [u8; MAX_HEADER],
    /// IP + UDP header length of the run.
    header_len: usize,
    payload: Vec<u8>,
    /// Payload bytes of each datagram but the last.
    segment: usize,
    count: usize,
    /// No datagram can join any more (a shorter one ended the run, or a
    /// limit is reached).
    closed: bool,
}

impl Default for UdpCoalescer {
    fn default() -> Self {
        Self::new()
    }
}

impl UdpCoalescer {
    pub fn new() -> Self {
        Self {
            runs: Vec::with_capacity(MAX_RUNS),
            spare: Vec::with_capacity(MAX_RUNS),
        }
    }

    /// Writes `packet` (any IP packet, without a virtio-net header): a
    /// datagram that continues its flow's run joins it; one that cannot
    /// sends that run and starts a new one; anything else sends every run,
    /// then goes out alone.
    pub fn write(&mut self, sink: &impl Sink, packet: &[u8], counters: WriteCounters<'_>) {
        let Some(header_len) = joinable_datagram(packet) else {
            self.flush(sink, counters);
            send_alone(sink, packet, counters.write_errors);
            return;
        };
        let (header, payload) = packet.split_at(header_len);
        if let Some(i) = self.runs.iter().position(|run| run.same_flow(header)) {
            if self.runs[i].continues(header, payload.len()) {
                self.runs[i].push(payload);
                return;
            }
            let run = self.runs.remove(i);
            self.send(run, sink, counters);
        } else if self.runs.len() == MAX_RUNS {
            let oldest = self.runs.remove(0);
            self.send(oldest, sink, counters);
        }
        let mut run = self.spare.pop().unwrap_or_else(Run::new);
        run.start(header, payload);
        self.runs.push(run);
    }

    /// Sends the pending runs, oldest first: one datagram as it is,
    /// several as one super-packet.
    pub fn flush(&mut self, sink: &impl Sink, counters: WriteCounters<'_>) {
        // Taken out and put back so that its capacity stays: no allocation
        // per batch.
        let mut runs = std::mem::take(&mut self.runs);
        for run in runs.drain(..) {
            self.send(run, sink, counters);
        }
        self.runs = runs;
    }

    fn send(&mut self, mut run: Run, sink: &impl Sink, counters: WriteCounters<'_>) {
        match run.send(sink) {
            Ok(joined) => counters.coalesced.add(joined),
            Err(err) => {
                counters.write_errors.inc();
                tracing::trace!("tun write failed: {err}");
            }
        }
        run.payload.clear();
        if self.spare.len() < MAX_RUNS {
            self.spare.push(run);
        }
    }
}

impl Run {
    fn new() -> Self {
        Self {
            header: [0; MAX_HEADER],
            header_len: 0,
            payload: Vec::new(),
            segment: 0,
            count: 0,
            closed: false,
        }
    }

    fn start(&mut self, header: &[u8], payload: &[u8]) {
        self.header[..header.len()].copy_from_slice(header);
        self.header_len = header.len();
        self.payload.clear();
        self.payload.extend_from_slice(payload);
        self.segment = payload.len();
        self.count = 1;
        self.closed = payload.is_empty();
    }

    fn push(&mut self, payload: &[u8]) {
        self.payload.extend_from_slice(payload);
        self.count += 1;
        self.closed = payload.len() < self.segment
            || self.count == MAX_SEGMENTS
            || self.payload.len() + self.segment > max_payload(self.header_len);
    }

    /// Whether `header` (of a joinable datagram) is of this run's flow:
    /// the same family, addresses and ports.
    fn same_flow(&self, header: &[u8]) -> bool {
        if header.len() != self.header_len {
            return false;
        }
        let run = &self.header[..self.header_len];
        if self.header_len == 20 + UDP_HEADER {
            run[12..24] == header[12..24]
        } else {
            run[8..44] == header[8..44]
        }
    }

    /// Whether a datagram of this run's flow with this header and payload
    /// length joins the run.
    fn continues(&self, header: &[u8], payload_len: usize) -> bool {
        if self.closed
            || payload_len == 0
            || payload_len > self.segment
            || self.payload.len() + payload_len > max_payload(self.header_len)
        {
            return false;
        }
        let run = &self.header[..self.header_len];
        // The bytes that may differ: lengths, checksums, the identification
        // (the addresses and ports are the same flow's).
        let same = |range: std::ops::Range<usize>| run.get(range.clone()) == header.get(range);
        if self.header_len == 20 + UDP_HEADER {
            same(0..2) && same(6..10)
        } else {
            same(0..4) && same(6..8)
        }
    }

    /// Writes the run: one datagram as it is, several as one super-packet.
    /// The number of datagrams that went out joined.
    fn send(&mut self, sink: &impl Sink) -> io::Result<u64> {
        let header_len = self.header_len;
        let ip_len = header_len - UDP_HEADER;
        let mut header = self.header;
        if self.count == 1 {
            let vnet = VnetHdr::default().to_bytes();
            let parts = [
                io::IoSlice::new(&vnet),
                io::IoSlice::new(&header[..header_len]),
                io::IoSlice::new(&self.payload),
            ];
            return sink.send_parts(&parts).map(|()| 0);
        }
        let udp_len = UDP_HEADER + self.payload.len();
        set_lengths(&mut header[..header_len], udp_len);
        let pseudo = pseudo_sum(&header[..header_len], udp_len);
        let at = ip_len + usize::from(UDP_CHECKSUM_AT);
        header[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
        let vnet = VnetHdr {
            flags: VnetHdr::NEEDS_CSUM,
            gso_type: VnetHdr::GSO_UDP_L4,
            hdr_len: to_u16(header_len),
            gso_size: to_u16(self.segment),
            csum_start: to_u16(ip_len),
            csum_offset: UDP_CHECKSUM_AT,
        }
        .to_bytes();
        let parts = [
            io::IoSlice::new(&vnet),
            io::IoSlice::new(&header[..header_len]),
            io::IoSlice::new(&self.payload),
        ];
        sink.send_parts(&parts).map(|()| self.count as u64)
    }
}

/// What a packet loop keeps for writing with offloads: the UDP run being
/// joined, and room to cut a UDP super-packet read into datagrams.
pub struct UdpOffload {
    pub coalescer: UdpCoalescer,
    segment: Vec<u8>,
}

impl Default for UdpOffload {
    fn default() -> Self {
        Self::new()
    }
}

impl UdpOffload {
    pub fn new() -> Self {
        Self {
            coalescer: UdpCoalescer::new(),
            segment: Vec::with_capacity(2048),
        }
    }

    /// Writes `packets` through the coalescer.
    pub fn write_all<'a>(
        &mut self,
        sink: &impl Sink,
        packets: impl Iterator<Item = &'a [u8]>,
        counters: WriteCounters<'_>,
    ) {
        for packet in packets {
            self.coalescer.write(sink, packet, counters);
        }
    }

    /// Cuts the UDP super-packet `packet` (see [`for_each_segment`]) and
    /// hands each datagram to `translate` with the coalescer to write what
    /// comes of it; counted in `udp_gso_read`, or in `vnet_errors` when the
    /// packet cannot be cut.
    pub fn for_each_datagram(
        &mut self,
        packet: &[u8],
        hdr: &VnetHdr,
        counters: OffloadCounters<'_>,
        mut translate: impl FnMut(&mut [u8], &mut UdpCoalescer),
    ) {
        let Self { coalescer, segment } = self;
        let cut = for_each_segment(packet, hdr, segment, |datagram| {
            translate(datagram, coalescer);
        });
        if cut {
            counters.udp_gso_read.inc();
        } else {
            counters.vnet_errors.inc();
        }
    }
}

/// Cuts a UDP super-packet (`GSO_UDP_L4` with a partial checksum, `hdr` as
/// read with it) into datagrams of `hdr.gso_size` payload bytes, each with
/// its own lengths, full checksum and (IPv4) identification counted up from
/// the super-packet's, as the kernel would have sent them; `each` gets them
/// one by one in `scratch`. False, and nothing handed over, when the header
/// does not describe a UDP packet this can cut (IPv6 extension headers, an
/// IPv4 fragment, offsets that do not fit).
pub fn for_each_segment(
    packet: &[u8],
    hdr: &VnetHdr,
    scratch: &mut Vec<u8>,
    mut each: impl FnMut(&mut [u8]),
) -> bool {
    let ip_len = usize::from(hdr.csum_start);
    let fits = match packet.first().map(|b| b >> 4) {
        Some(4) => {
            usize::from(packet[0] & 0x0f) * 4 == ip_len
                && packet.get(9) == Some(&UDP)
                && packet
                    .get(6..8)
                    .is_some_and(|f| f[0] & 0x3f == 0 && f[1] == 0)
        }
        Some(6) => ip_len == 40 && packet.get(6) == Some(&UDP),
        _ => false,
    };
    let header_len = ip_len + UDP_HEADER;
    if !fits || hdr.csum_offset != UDP_CHECKSUM_AT || hdr.gso_size == 0 || packet.len() < header_len
    {
        return false;
    }
    let v4 = ip_len != 40;
    let first_id = if v4 {
        u16::from_be_bytes([packet[4], packet[5]])
    } else {
        0
    };
    let (header, payload) = packet.split_at(header_len);
    let mut id = first_id;
    for chunk in payload.chunks(usize::from(hdr.gso_size)) {
        scratch.clear();
        scratch.extend_from_slice(header);
        scratch.extend_from_slice(chunk);
        if v4 {
            // Counts up and wraps like the kernel's segmentation does.
            scratch[4..6].copy_from_slice(&id.to_be_bytes());
            id = id.wrapping_add(1);
        }
        let udp_len = UDP_HEADER + chunk.len();
        set_lengths(&mut scratch[..header_len], udp_len);
        let at = ip_len + usize::from(UDP_CHECKSUM_AT);
        scratch[at..at + 2].fill(0);
        let pseudo = pseudo_sum(&scratch[..header_len], udp_len);
        let mut sum = !checksum::fold(checksum::add(u64::from(pseudo), &scratch[ip_len..]));
        if sum == 0 {
            sum = 0xffff;
        }
        scratch[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        each(scratch);
    }
    true
}

/// The IP + UDP header length of `packet` when it is a UDP datagram that
/// may join a run: IPv4 without options and not a fragment, or IPv6 with
/// UDP right after the fixed header; lengths consistent; a checksum present
/// and correct.
fn joinable_datagram(packet: &[u8]) -> Option<usize> {
    let be16 = |at: usize| {
        packet
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let ip_len = match packet.first()? >> 4 {
        4 => {
            let simple = packet[0] & 0x0f == 5 && *packet.get(9)? == UDP;
            let whole = be16(6)? & 0x3fff == 0 && usize::from(be16(2)?) == packet.len();
            (simple && whole).then_some(20)?
        }
        6 => {
            let simple = *packet.get(6)? == UDP;
            (simple && usize::from(be16(4)?) + 40 == packet.len()).then_some(40)?
        }
        _ => return None,
    };
    let udp_len = usize::from(be16(ip_len + 4)?);
    if udp_len != packet.len() - ip_len || udp_len < UDP_HEADER || be16(ip_len + 6)? == 0 {
        return None;
    }
    let header_len = ip_len + UDP_HEADER;
    let pseudo = pseudo_sum(packet.get(..header_len)?, udp_len);
    let sum = checksum::fold(checksum::add(u64::from(pseudo), &packet[ip_len..]));
    (sum == 0xffff).then_some(header_len)
}

/// The most payload bytes one run can carry: the IPv4 total length and the
/// UDP length are 16-bit fields.
fn max_payload(header_len: usize) -> usize {
    if header_len == 20 + UDP_HEADER {
        usize::from(u16::MAX) - header_len
    } else {
        usize::from(u16::MAX) - UDP_HEADER
    }
}

/// Writes the IP and UDP length fields of `header` for a UDP length of
/// `udp_len`, and the IPv4 header checksum that goes with them.
fn set_lengths(header: &mut [u8], udp_len: usize) {
    let ip_len = header.len() - UDP_HEADER;
    if ip_len == 40 {
        header[4..6].copy_from_slice(&to_u16(udp_len).to_be_bytes());
    } else {
        header[2..4].copy_from_slice(&to_u16(ip_len + udp_len).to_be_bytes());
        header[10..12].fill(0);
        let sum = checksum::checksum(&header[..ip_len]);
        header[10..12].copy_from_slice(&sum.to_be_bytes());
    }
    header[ip_len + 4..ip_len + 6].copy_from_slice(&to_u16(udp_len).to_be_bytes());
}

/// The folded (not complemented) pseudo-header sum for the UDP packet whose
/// IP + UDP header is `header`, with a UDP length of `udp_len`.
fn pseudo_sum(header: &[u8], udp_len: usize) -> u16 {
    let ip_len = header.len() - UDP_HEADER;
    let addresses = if ip_len == 40 {
        &header[8..40]
    } else {
        &header[12..20]
    };
    checksum::fold(checksum::add(u64::from(UDP) + udp_len as u64, addresses))
}

/// Lengths here are bounded by [`max_payload`] and the TUN packet size.
fn to_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

fn send_alone(sink: &impl Sink, packet: &[u8], write_errors: &Counter) {
    let vnet = VnetHdr::default().to_bytes();
    let parts = [io::IoSlice::new(&vnet), io::IoSlice::new(packet)];
    if let Err(err) = sink.send_parts(&parts) {
        write_errors.inc();
        tracing::trace!("tun write failed: {err}");
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test patterns wrap on purpose
mod tests {
    use std::cell::RefCell;

    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
    use proptest::prelude::*;

    use super::*;

    /// Keeps what is written: the virtio-net header and the packet.
    #[derive(Default)]
    struct Written(RefCell<Vec<(VnetHdr, Vec<u8>)>>);

    impl Sink for Written {
        fn send_parts(&self, parts: &[io::IoSlice<'_>]) -> io::Result<()> {
            let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
            let hdr = VnetHdr::parse(&bytes).expect("a virtio-net header first");
            self.0
                .borrow_mut()
                .push((hdr, bytes[VnetHdr::LEN..].to_vec()));
            Ok(())
        }
    }

    impl Written {
        fn take(&self) -> Vec<(VnetHdr, Vec<u8>)> {
            std::mem::take(&mut *self.0.borrow_mut())
        }
    }

    struct Counters {
        errors: Counter,
        coalesced: Counter,
    }

    impl Counters {
        fn new() -> Self {
            Self {
                errors: Counter::new(),
                coalesced: Counter::new(),
            }
        }
        fn get(&self) -> WriteCounters<'_> {
            WriteCounters {
                write_errors: &self.errors,
                coalesced: &self.coalesced,
            }
        }
    }

    /// An IPv6 UDP datagram 2001:db8::1:5000 -> 2001:db8::2:53, built and
    /// checksummed by etherparse.
    fn udp6(payload: &[u8], hop_limit: u8) -> Vec<u8> {
        let b = PacketBuilder::ipv6(
            [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            hop_limit,
        )
        .udp(5000, 53);
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    /// An IPv4 UDP datagram 192.0.2.1:5000 -> 198.51.100.2:53 with DF set
    /// and identification `id`.
    fn udp4(payload: &[u8], id: u16) -> Vec<u8> {
        let b = PacketBuilder::ipv4([192, 0, 2, 1], [198, 51, 100, 2], 64).udp(5000, 53);
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out[4..6].copy_from_slice(&id.to_be_bytes());
        out[10..12].fill(0);
        let sum = checksum::checksum(&out[..20]);
        out[10..12].copy_from_slice(&sum.to_be_bytes());
        out
    }

    fn payloads(n: usize, size: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| (0..size).map(|j| (i * 31 + j) as u8).collect())
            .collect()
    }

    /// Cuts a written super-packet back into datagrams.
    fn cut(hdr: &VnetHdr, packet: &[u8]) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        let mut scratch = Vec::new();
        assert!(for_each_segment(packet, hdr, &mut scratch, |d| all.push(d.to_vec())));
        all
    }

    /// etherparse agrees the packet is a UDP datagram whose checksum is right.
    fn assert_valid_udp(packet: &[u8]) {
        let sliced = SlicedPacket::from_ip(packet).expect("parses");
        let Some(TransportSlice::Udp(udp)) = sliced.transport else {
            panic!("not UDP");
        };
        let want = match &sliced.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => udp
                .to_header()
                .calc_checksum_ipv4(&ip.header().to_header(), udp.payload())
                .unwrap(),
            Some(etherparse::NetSlice::Ipv6(ip)) => udp
                .to_header()
                .calc_checksum_ipv6(&ip.header().to_header(), udp.payload())
                .unwrap(),
            _ => panic!("no IP header"),
        };
        assert_eq!(udp.checksum(), want);
    }

    #[test]
    fn datagrams_of_one_flow_leave_as_one_super_packet_that_cuts_back_into_them() {
        for v4 in [false, true] {
            let sent: Vec<Vec<u8>> = payloads(10, 64)
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    if v4 {
                        udp4(p, 7 + i as u16)
                    } else {
                        udp6(p, 64)
                    }
                })
                .collect();
            let (sink, counters) = (Written::default(), Counters::new());
            let mut c = UdpCoalescer::new();
            for d in &sent {
                c.write(&sink, d, counters.get());
            }
            assert!(sink.take().is_empty(), "nothing leaves before the flush");
            c.flush(&sink, counters.get());
            let written = sink.take();
            assert_eq!(written.len(), 1);
            let (hdr, packet) = &written[0];
            let ip_len = if v4 { 20 } else { 40 };
            assert_eq!(hdr.flags, VnetHdr::NEEDS_CSUM);
            assert_eq!(hdr.gso_type, VnetHdr::GSO_UDP_L4);
            assert_eq!(
                (hdr.gso_size, hdr.csum_start, hdr.csum_offset, hdr.hdr_len),
                (64, ip_len, 6, ip_len + 8)
            );
            assert_eq!(packet.len(), usize::from(ip_len) + 8 + 640);
            // The IP header is valid for the whole super-packet.
            SlicedPacket::from_ip(packet).expect("a well-formed IP packet");
            assert_eq!(cut(hdr, packet), sent, "v4 {v4}");
            assert_eq!(counters.coalesced.get(), 10);
        }
    }

    #[test]
    fn a_lone_datagram_goes_out_as_it_came() {
        let d = udp6(b"hello", 64);
        let (sink, counters) = (Written::default(), Counters::new());
        let mut c = UdpCoalescer::new();
        c.write(&sink, &d, counters.get());
        c.flush(&sink, counters.get());
        c.flush(&sink, counters.get());
        assert_eq!(sink.take(), vec![(VnetHdr::default(), d)]);
        assert_eq!(counters.coalesced.get(), 0);
    }

    #[test]
    fn a_damaged_datagram_is_not_joined_and_keeps_its_checksum() {
        let good = udp6(&[1; 32], 64);
        let mut bad = udp6(&[1; 32], 64);
        bad[60] ^= 0xff; // payload bit flips; checksum left as it was
        let (sink, counters) = (Written::default(), Counters::new());
        let mut c = UdpCoalescer::new();
        for d in [&good, &good, &bad, &good] {
            c.write(&sink, d, counters.get());
        }
        c.flush(&sink, counters.get());
        let written = sink.take();
        assert_eq!(written.len(), 3, "two joined, the bad one, the last");
        assert_eq!(written[0].0.gso_type, VnetHdr::GSO_UDP_L4);
        assert_eq!(written[1], (VnetHdr::default(), bad));
        assert_eq!(written[2], (VnetHdr::default(), good));
    }

    #[test]
    fn runs_break_at_another_flow_a_shorter_datagram_or_anything_else_and_keep_order() {
        let p = payloads(4, 100);
        let a = |i: usize| udp6(&p[i], 64);
        let other_hop = udp6(&p[0], 63);
        let short = udp6(&p[1][..40], 64);
        let longer = udp6(&[9; 200], 64);
        let mut icmp = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .icmpv6_echo_request(1, 1)
            .write(&mut icmp, b"ping")
            .unwrap();
        let (sink, counters) = (Written::default(), Counters::new());
        let mut c = UdpCoalescer::new();
        let order = [
            a(0),
            a(1),
            other_hop.clone(),
            a(2),
            short.clone(),
            a(3),
            icmp.clone(),
            longer.clone(),
            a(0),
        ];
        for d in &order {
            c.write(&sink, d, counters.get());
        }
        c.flush(&sink, counters.get());
        let out: Vec<Vec<Vec<u8>>> = sink
            .take()
            .iter()
            .map(|(hdr, packet)| {
                if hdr.gso_type == VnetHdr::GSO_UDP_L4 {
                    cut(hdr, packet)
                } else {
                    vec![packet.clone()]
                }
            })
            .collect();
        let want = vec![
            vec![a(0), a(1)],
            vec![other_hop],
            vec![a(2), short],
            vec![a(3)],
            vec![icmp],
            // A shorter datagram may end a run.
            vec![longer, a(0)],
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn a_run_stops_at_the_segment_limit() {
        let (sink, counters) = (Written::default(), Counters::new());
        let mut c = UdpCoalescer::new();
        let d = udp6(&[7; 8], 64);
        for _ in 0..MAX_SEGMENTS + 1 {
            c.write(&sink, &d, counters.get());
        }
        c.flush(&sink, counters.get());
        let written = sink.take();
        assert_eq!(written.len(), 2);
        assert_eq!(cut(&written[0].0, &written[0].1).len(), MAX_SEGMENTS);
        assert_eq!(written[1], (VnetHdr::default(), d));
    }

    #[test]
    fn a_super_packet_read_is_cut_into_valid_datagrams_with_ids_counting_up() {
        // 2 x 1000 bytes and a last one of 300, as the kernel hands them.
        let payload: Vec<u8> = (0..2300u32).map(|i| (i % 251) as u8).collect();
        let mut packet = udp4(&payload, 0xfffe);
        let udp_len = 8 + payload.len();
        let pseudo = pseudo_sum(&packet[..28], udp_len);
        packet[26..28].copy_from_slice(&pseudo.to_be_bytes());
        let hdr = VnetHdr {
            flags: VnetHdr::NEEDS_CSUM,
            gso_type: VnetHdr::GSO_UDP_L4,
            hdr_len: 28,
            gso_size: 1000,
            csum_start: 20,
            csum_offset: 6,
        };
        let datagrams = cut(&hdr, &packet);
        assert_eq!(datagrams.len(), 3);
        for (i, d) in datagrams.iter().enumerate() {
            assert_valid_udp(d);
            let sliced = SlicedPacket::from_ip(d).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = &sliced.net else {
                panic!("IPv4");
            };
            let header = ip.header().to_header();
            assert_eq!(header.header_checksum, header.calc_header_checksum());
            assert_eq!(header.identification, 0xfffe_u16.wrapping_add(i as u16));
            let Some(TransportSlice::Udp(udp)) = sliced.transport else {
                panic!("UDP");
            };
            assert_eq!(
                udp.payload(),
                &payload[i * 1000..(i * 1000 + 1000).min(2300)]
            );
        }
    }

    #[test]
    fn headers_that_cannot_be_cut_are_refused() {
        let mut packet = udp6(&[0; 100], 64);
        let hdr = VnetHdr {
            flags: VnetHdr::NEEDS_CSUM,
            gso_type: VnetHdr::GSO_UDP_L4,
            hdr_len: 48,
            gso_size: 10,
            csum_start: 40,
            csum_offset: 6,
        };
        let mut scratch = Vec::new();
        let mut refused = |packet: &[u8], hdr: VnetHdr| {
            !for_each_segment(packet, &hdr, &mut scratch, |_| panic!("handed over"))
        };
        assert!(refused(&packet, VnetHdr { gso_size: 0, ..hdr }));
        assert!(refused(
            &packet,
            VnetHdr {
                csum_offset: 16,
                ..hdr
            }
        ));
        assert!(refused(
            &packet,
            VnetHdr {
                csum_start: 48,
                ..hdr
            }
        ));
        assert!(refused(&packet[..44], hdr));
        packet[6] = 0; // a hop-by-hop options header in front of UDP
        assert!(refused(&packet, hdr));
    }

    /// A datagram of flow `flow` (its source port) with payload `payload`.
    fn udp6_flow(flow: u16, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv6(
            [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .udp(flow, 53);
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    /// What was written, cut back into datagrams, in write order.
    fn written_datagrams(sink: &Written) -> Vec<Vec<Vec<u8>>> {
        sink.take()
            .iter()
            .map(|(hdr, packet)| {
                if hdr.gso_type == VnetHdr::GSO_UDP_L4 {
                    cut(hdr, packet)
                } else {
                    vec![packet.clone()]
                }
            })
            .collect()
    }

    #[test]
    fn interleaved_flows_are_each_joined_in_their_own_order() {
        let p = payloads(3, 50);
        let (sink, counters) = (Written::default(), Counters::new());
        let mut c = UdpCoalescer::new();
        for payload in &p {
            for flow in [1000, 2000] {
                c.write(&sink, &udp6_flow(flow, payload), counters.get());
            }
        }
        c.flush(&sink, counters.get());
        let flow = |port| p.iter().map(|x| udp6_flow(port, x)).collect::<Vec<_>>();
        assert_eq!(written_datagrams(&sink), vec![flow(1000), flow(2000)]);
        assert_eq!(counters.coalesced.get(), 6);
    }

    #[test]
    fn one_flow_more_than_the_runs_held_sends_the_oldest_run() {
        let (sink, counters) = (Written::default(), Counters::new());
        let mut c = UdpCoalescer::new();
        for flow in 0..=MAX_RUNS as u16 {
            c.write(&sink, &udp6_flow(1000 + flow, b"x"), counters.get());
        }
        let first = written_datagrams(&sink);
        assert_eq!(first, vec![vec![udp6_flow(1000, b"x")]], "the oldest goes");
        c.flush(&sink, counters.get());
        let rest: Vec<u16> = written_datagrams(&sink)
            .iter()
            .map(|d| u16::from_be_bytes([d[0][40], d[0][41]]))
            .collect();
        assert_eq!(rest, (1001..=1000 + MAX_RUNS as u16).collect::<Vec<_>>());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..20),
            gso_size in any::<u16>(),
            csum_start in 0u16..80,
        ) {
            let (sink, counters) = (Written::default(), Counters::new());
            let mut c = UdpCoalescer::new();
            let mut scratch = Vec::new();
            let hdr = VnetHdr {
                flags: VnetHdr::NEEDS_CSUM,
                gso_type: VnetHdr::GSO_UDP_L4,
                hdr_len: csum_start + 8,
                gso_size,
                csum_start,
                csum_offset: 6,
            };
            for p in &packets {
                for_each_segment(p, &hdr, &mut scratch, |d| c.write(&sink, d, counters.get()));
                c.write(&sink, p, counters.get());
            }
            c.flush(&sink, counters.get());
        }

        #[test]
        fn interleaved_flows_keep_the_order_of_each_flow(
            sends in prop::collection::vec((0u16..12, 1usize..300, any::<bool>()), 1..200),
        ) {
            let (sink, counters) = (Written::default(), Counters::new());
            let mut c = UdpCoalescer::new();
            let mut sent: std::collections::BTreeMap<u16, Vec<Vec<u8>>> = Default::default();
            for (i, (flow, size, damaged)) in sends.iter().enumerate() {
                let payload: Vec<u8> = (0..*size).map(|j| (i + j) as u8).collect();
                let mut d = udp6_flow(1000 + flow, &payload);
                if *damaged {
                    d[48] ^= 1;
                }
                c.write(&sink, &d, counters.get());
                sent.entry(1000 + flow).or_default().push(d);
                if i % 37 == 0 {
                    c.flush(&sink, counters.get());
                }
            }
            c.flush(&sink, counters.get());
            let mut back: std::collections::BTreeMap<u16, Vec<Vec<u8>>> = Default::default();
            for d in written_datagrams(&sink).into_iter().flatten() {
                back.entry(u16::from_be_bytes([d[40], d[41]])).or_default().push(d);
            }
            prop_assert_eq!(back, sent);
        }

        #[test]
        fn any_run_of_one_flow_cuts_back_into_what_was_written(
            sizes in prop::collection::vec(1usize..1400, 1..80),
            v4 in any::<bool>(),
        ) {
            let sent: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let p: Vec<u8> = (0..*n).map(|j| (i + j) as u8).collect();
                    if v4 { udp4(&p, 100 + i as u16) } else { udp6(&p, 64) }
                })
                .collect();
            let (sink, counters) = (Written::default(), Counters::new());
            let mut c = UdpCoalescer::new();
            for d in &sent {
                c.write(&sink, d, counters.get());
            }
            c.flush(&sink, counters.get());
            let mut back = Vec::new();
            for (hdr, packet) in sink.take() {
                if hdr.gso_type == VnetHdr::GSO_UDP_L4 {
                    prop_assert!(packet.len() <= usize::from(u16::MAX) + 40);
                    back.extend(cut(&hdr, &packet));
                } else {
                    back.push(packet);
                }
            }
            // IPv4 identifications only match when a run keeps the ones
            // the kernel would give; compare the rest.
            let clear_id = |mut d: Vec<u8>| {
                if v4 { d[4..6].fill(0); d[10..12].fill(0); }
                d
            };
            let back: Vec<Vec<u8>> = back.into_iter().map(clear_id).collect();
            let sent: Vec<Vec<u8>> = sent.into_iter().map(clear_id).collect();
            prop_assert_eq!(back, sent);
        }
    }
}
