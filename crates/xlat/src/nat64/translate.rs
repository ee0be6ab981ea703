//! The stateful NAT64 data path: RFC 6146 §3.4-§3.7 on top of the stateless
//! RFC 7915 translator of [`crate::siit`].
//!
//! A NAT64 packet is a SIIT packet whose IPv6 host address and port are
//! swapped for a pool4 transport address. So this module does only the
//! stateful part and leaves every header rule of RFC 7915 to [`Siit`]:
//!
//! - 6→4: ask [`State::outbound`] for (T, t), rewrite the IPv6 source to the
//!   prefix-embedded T and the source port (or ICMP identifier) to t, with an
//!   incremental checksum update (RFC 1624), then hand the packet to
//!   `Siit::translate`, whose pool6 is the NAT64 prefix: the source becomes T
//!   and the destination Y' becomes Z.
//! - 4→6: ask [`State::inbound`] for (X', x), let `Siit::translate` make the
//!   IPv6 packet (destination = prefix + T), then rewrite its destination to
//!   X' and the destination port to x.
//! - ICMP errors: the inner packet's pool4 side is mapped through the BIB
//!   ([`State::lookup_v6`] / [`State::lookup_v4`]), without creating or
//!   refreshing anything (RFC 6146 §3.5 ICMP error handling), and the
//!   outer ICMP checksum is recomputed.
//! - Hairpinning (RFC 6146 §3.8): a 6→4 packet toward a pool4 address is
//!   translated to IPv4 and then fed back through the 4→6 half.
//!
//! Packets whose hop limit or TTL runs out, and IPv6 packets with a Routing
//! header to follow, are answered here with the RFC 7915 ICMP error, from the
//! translator's own address, before any state is made.
//!
//! Fragments: the first fragment of a datagram carries the ports and is
//! mapped as any packet; the state remembers its mapping for FRAGMENT_MIN
//! (2 s, bounded) and the later fragments of the same datagram take it. A
//! later fragment that comes before its first is held by the state
//! ([`Verdict::Held`], bounded) and translated right after its first
//! fragment, in the same output; held longer than FRAGMENT_MIN it is dropped
//! (`fragment_timeout`). There is no reassembly: each fragment is translated
//! on its own (RFC 7915 §4.1, §5.1.1).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::prefix64::{is_global_v4, Prefix64};
use crate::siit::{DropReason, Output, Siit, SiitConfig, Verdict as SiitVerdict};
use crate::wire::{icmp, proto, Ipv4Packet, Ipv6Packet};

use super::fragments::Seeded;
use super::{
    shard_of_port, Config, FragmentKey, IcmpError, Pool4, Proto, Random, Refuse, State, Taddr4,
    Taddr6, TcpFlags, TcpProbe,
};

/// Bytes of a probe from [`Translator::tcp_probe`]: an IPv6 header and a
/// TCP header without options.
pub const TCP_PROBE_LEN: usize = 60;

/// Why the NAT64 did not forward a packet. `as_str()` is the metric label;
/// [`Drop::labels`] lists them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Drop {
    /// The stateless translator refused it (malformed, untranslatable, ...).
    Xlat(DropReason),
    /// The state refused it (pool exhausted, limits, no BIB entry, filtered).
    State(Refuse),
    /// An IPv6 packet outside the prefix, or an IPv4 packet not to pool4.
    NotOurs,
    /// A later fragment that cannot be followed: of a hairpinned datagram.
    Fragment,
    /// A later fragment that came before its first fragment, refused because
    /// the held fragments reached a limit (`MAX_HELD`, `MAX_HELD_BYTES`,
    /// `MAX_HELD_PER_DATAGRAM`).
    FragmentQueueFull,
    /// A held fragment whose first fragment did not come within
    /// FRAGMENT_MIN. Counted by the state ([`super::Stats`]), never a
    /// verdict.
    FragmentTimeout,
    /// A held fragment that did not translate once its first fragment came.
    /// Counted by the state ([`super::Stats`]), never a verdict.
    FragmentReleaseFailed,
    /// Not TCP, UDP or ICMP.
    Protocol,
    /// An ICMP error whose inner packet matches no BIB entry.
    IcmpNoBinding,
}

impl Drop {
    pub fn as_str(self) -> &'static str {
        match self {
            Drop::Xlat(r) => r.as_str(),
            Drop::State(r) => r.as_str(),
            Drop::NotOurs => "not_nat64",
            Drop::Fragment => "fragment",
            Drop::FragmentQueueFull => "fragment_queue_full",
            Drop::FragmentTimeout => "fragment_timeout",
            Drop::FragmentReleaseFailed => "fragment_release_failed",
            Drop::Protocol => "protocol",
            Drop::IcmpNoBinding => "icmp_no_bib_entry",
        }
    }

    /// Every drop label, each once.
    pub fn labels() -> Vec<&'static str> {
        let mut all: Vec<&'static str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        all.extend(Refuse::ALL.iter().map(|r| r.as_str()));
        all.extend(
            [
                Drop::NotOurs,
                Drop::Fragment,
                Drop::FragmentQueueFull,
                Drop::FragmentTimeout,
                Drop::FragmentReleaseFailed,
                Drop::Protocol,
                Drop::IcmpNoBinding,
            ]
            .iter()
            .map(|d| d.as_str()),
        );
        all
    }
}

/// What [`Translator::translate`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// An IPv6 packet went out as IPv4.
    SixToFour,
    /// An IPv4 packet came in as IPv6.
    FourToSix,
    /// An IPv6 packet to a pool4 address went back out as IPv6 (RFC 6146
    /// §3.8).
    Hairpin,
    /// A later fragment that came before its first fragment: held by the
    /// state, and translated into the output of its first fragment when that
    /// comes (or dropped after FRAGMENT_MIN). The output is empty.
    Held,
    /// Not forwarded; the output holds the ICMP error for its source.
    IcmpError(Drop),
    /// Dropped; the output is empty.
    Drop(Drop),
}

impl Verdict {
    /// Every value of `as_str`.
    pub const LABELS: &'static [&'static str] =
        &["6to4", "4to6", "hairpin", "held", "icmp_error", "drop"];

    /// The `direction` label of the packet counter.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::SixToFour => "6to4",
            Verdict::FourToSix => "4to6",
            Verdict::Hairpin => "hairpin",
            Verdict::Held => "held",
            Verdict::IcmpError(_) => "icmp_error",
            Verdict::Drop(_) => "drop",
        }
    }

    pub fn drop_reason(self) -> Option<Drop> {
        match self {
            Verdict::IcmpError(d) | Verdict::Drop(d) => Some(d),
            _ => None,
        }
    }
}

/// The caller-owned output: zero or more packets to write to the TUN device,
/// reused from packet to packet.
#[derive(Debug)]
pub struct Packets {
    siit: Output,
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// Whether the packets are in `buf` (rewritten or generated here) rather
    /// than in `siit`.
    own: bool,
    /// The IPv4 middle of a hairpin.
    hairpin: Vec<u8>,
}

impl Default for Packets {
    fn default() -> Self {
        Self::new()
    }
}

impl Packets {
    pub fn new() -> Self {
        Self {
            siit: Output::new(),
            buf: Vec::with_capacity(96 * 1024),
            ends: Vec::with_capacity(64),
            own: false,
            hairpin: Vec::with_capacity(64 * 1024),
        }
    }

    fn clear(&mut self) {
        self.siit.clear();
        self.buf.clear();
        self.ends.clear();
        self.own = false;
    }

    pub fn len(&self) -> usize {
        if self.own {
            self.ends.len()
        } else {
            self.siit.len()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th packet.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if !self.own {
            return self.siit.get(i);
        }
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.buf.get(start..end)
    }

    /// The packets, in order.
    pub fn packets(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }

    /// Copies the `i`-th packet of the stateless output into the owned
    /// buffer, where it can be rewritten.
    fn adopt(&mut self, i: usize) -> Option<std::ops::Range<usize>> {
        let p = self.siit.get(i)?;
        self.own = true;
        let start = self.buf.len();
        self.buf.extend_from_slice(p);
        self.ends.push(self.buf.len());
        Some(start..self.buf.len())
    }

    /// Makes the owned buffer hold every packet so far, so that more can be
    /// added after them.
    fn adopt_all(&mut self) {
        if !self.own {
            for i in 0..self.siit.len() {
                self.adopt(i);
            }
            self.own = true;
        }
        self.siit.clear();
    }

    fn push_own(&mut self, packet: &[u8]) -> std::ops::Range<usize> {
        self.own = true;
        let start = self.buf.len();
        self.buf.extend_from_slice(packet);
        self.ends.push(self.buf.len());
        start..self.buf.len()
    }
}

/// Where a transport header keeps what the NAT64 rewrites.
#[derive(Debug, Clone, Copy)]
struct L4 {
    proto: Proto,
    src_port: u16,
    dst_port: u16,
    flags: TcpFlags,
    /// Offsets from the start of the transport header.
    src_port_at: usize,
    dst_port_at: usize,
    checksum_at: usize,
    /// UDP: a zero checksum means "none" (IPv4 only).
    udp: bool,
}

/// Reads the transport ports of a TCP, UDP or ICMP-echo header. `v6` picks
/// ICMPv6 echo types. `min_full`: require the whole fixed header (false for
/// the truncated inner packet of an ICMP error, where 8 bytes are enough).
fn l4_of(protocol: u8, b: &[u8], v6: bool, min_full: bool) -> Result<L4, Drop> {
    let be16 =
        |at: usize| -> Option<u16> { Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?])) };
    let bad = Drop::Xlat(DropReason::MalformedTransport);
    match protocol {
        proto::TCP => {
            if b.len() < if min_full { 20 } else { 8 } {
                return Err(bad);
            }
            Ok(L4 {
                proto: Proto::Tcp,
                src_port: be16(0).ok_or(bad)?,
                dst_port: be16(2).ok_or(bad)?,
                flags: TcpFlags::from_octet(b.get(13).copied().unwrap_or(0)),
                src_port_at: 0,
                dst_port_at: 2,
                checksum_at: 16,
                udp: false,
            })
        }
        proto::UDP => {
            if b.len() < 8 {
                return Err(bad);
            }
            Ok(L4 {
                proto: Proto::Udp,
                src_port: be16(0).ok_or(bad)?,
                dst_port: be16(2).ok_or(bad)?,
                flags: TcpFlags::NONE,
                src_port_at: 0,
                dst_port_at: 2,
                checksum_at: 6,
                udp: true,
            })
        }
        proto::ICMP | proto::ICMPV6 => {
            let bad = Drop::Xlat(DropReason::MalformedIcmp);
            if b.len() < icmp::HEADER_LEN {
                return Err(bad);
            }
            let echo = if v6 {
                [icmp::v6::ECHO_REQUEST, icmp::v6::ECHO_REPLY]
            } else {
                [icmp::v4::ECHO_REQUEST, icmp::v4::ECHO_REPLY]
            };
            if !echo.contains(&b[0]) {
                return Err(Drop::Xlat(DropReason::IcmpUntranslatable));
            }
            let id = be16(4).ok_or(bad)?;
            Ok(L4 {
                proto: Proto::Icmp,
                src_port: id,
                dst_port: id,
                flags: TcpFlags::NONE,
                src_port_at: 4,
                dst_port_at: 4,
                checksum_at: 2,
                udp: false,
            })
        }
        _ => Err(Drop::Protocol),
    }
}

fn set16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

fn get16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// RFC 1624: the transport checksum after an address and a port changed.
/// Leaves a UDP "no checksum" (0) alone and never writes a UDP 0.
fn fix_checksum(l4: &mut [u8], at: usize, udp: bool, old: u64, new: u64) {
    let Some(hc) = get16(l4, at) else { return };
    if udp && hc == 0 {
        return;
    }
    let mut v = checksum::update(hc, old, new);
    if udp && v == 0 {
        v = 0xffff;
    }
    set16(l4, at, v);
}

/// The sum of an address and a port, as they enter a checksum.
fn sum_addr_port(addr: &[u8], port: u16) -> u64 {
    checksum::add(checksum::add(0, addr), &port.to_be_bytes())
}

/// Recomputes the ICMPv6 checksum of `b` (a whole IPv6 packet whose upper
/// layer at `at` is ICMPv6).
fn refill_icmpv6_checksum(b: &mut [u8], at: usize) {
    if b.len() < at + icmp::HEADER_LEN || b.len() < 40 {
        return;
    }
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&b[8..24]);
    dst.copy_from_slice(&b[24..40]);
    set16(b, at + 2, 0);
    let len = u32::try_from(b.len() - at).unwrap_or(0);
    let sum = checksum::pseudo_v6(Ipv6Addr::from(src), Ipv6Addr::from(dst), proto::ICMPV6, len);
    let v = !checksum::fold(checksum::add(sum, &b[at..]));
    set16(b, at + 2, v);
}

/// The stateful translator: a [`Siit`] over the NAT64 prefix, and the glue
/// to a [`State`].
#[derive(Debug)]
pub struct Translator {
    siit: Siit,
    prefix: Prefix64,
    /// Sources of the ICMP errors the translator makes itself.
    own_v4: Option<Ipv4Addr>,
    own_v6: Option<Ipv6Addr>,
}

impl Translator {
    /// `template` carries the RFC 7915 knobs (MTU, TOS, own addresses); its
    /// pool6, EAM table and hairpinning are replaced: the NAT64 prefix is
    /// pool6, there is no EAM, and hairpinning is the NAT64's own.
    pub fn new(prefix: Prefix64, template: SiitConfig) -> Self {
        let own_v4 = template.own_ipv4;
        let own_v6 = template
            .own_ipv6
            .or_else(|| own_v4.map(|a| prefix.embed_unchecked(a)));
        let config = SiitConfig {
            pool6: Some(prefix),
            eam: Vec::new(),
            hairpinning: false,
            ..template
        };
        Self {
            siit: Siit::new(config),
            prefix,
            own_v4,
            own_v6,
        }
    }

    pub fn prefix(&self) -> Prefix64 {
        self.prefix
    }

    /// The probe of RFC 6146 §3.5.2.2 for an ESTABLISHED session whose
    /// TCP_EST ran out ([`State::take_probes`]), as an IPv6 packet toward
    /// the session's IPv6 endpoint, from the IPv4 peer's synthesized address
    /// and port, as if the peer had sent it through the NAT64: "a TCP
    /// segment for the connection with no data", sequence and
    /// acknowledgment numbers zero, ACK the only flag. The window (which the
    /// RFC leaves open) is 8192 and the hop limit 64. Such a segment is out
    /// of the receiver's window, so a live endpoint answers with an ACK of
    /// its current numbers (RFC 9293 §3.10.7.4), or an RST when it has
    /// forgotten the connection; the answer is a packet of the session.
    pub fn tcp_probe(&self, probe: &TcpProbe) -> [u8; TCP_PROBE_LEN] {
        let src = self.prefix.embed_unchecked(probe.remote.addr);
        let dst = probe.v6.addr;
        let mut p = [0u8; TCP_PROBE_LEN];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&20u16.to_be_bytes());
        p[6] = 6;
        p[7] = 64;
        p[8..24].copy_from_slice(&src.octets());
        p[24..40].copy_from_slice(&dst.octets());
        let tcp = &mut p[40..];
        tcp[0..2].copy_from_slice(&probe.remote.port.to_be_bytes());
        tcp[2..4].copy_from_slice(&probe.v6.port.to_be_bytes());
        // Sequence and acknowledgment numbers (4..12) stay zero.
        tcp[12] = 5 << 4;
        tcp[13] = 0x10;
        tcp[14..16].copy_from_slice(&8192u16.to_be_bytes());
        let sum = checksum::add(checksum::pseudo_v6(src, dst, 6, 20), tcp);
        tcp[16..18].copy_from_slice(&(!checksum::fold(sum)).to_be_bytes());
        p
    }

    /// Translates one packet read from the TUN device. `packet` is modified
    /// in place (the IPv6 source of a 6→4 packet is rewritten before the
    /// stateless translation). Write every packet of `out` to the device,
    /// whatever the verdict.
    pub fn translate<R: Random>(
        &self,
        state: &mut State<R>,
        now_ms: u64,
        packet: &mut [u8],
        out: &mut Packets,
    ) -> Verdict {
        self.translate_pair(state, None, now_ms, packet, out)
    }

    /// [`Translator::translate`] for a sharded state: `first` is the shard
    /// [`Sharding::route`] names first, `second` the other one of a hairpin
    /// when it is not the same (lock them in index order).
    pub fn translate_pair<R: Random>(
        &self,
        state: &mut State<R>,
        second: Option<&mut State<R>>,
        now_ms: u64,
        packet: &mut [u8],
        out: &mut Packets,
    ) -> Verdict {
        out.clear();
        let verdict = match packet.first().map(|b| b >> 4) {
            Some(6) => self.six_to_four(state, second, now_ms, packet, out),
            Some(4) => self.four_to_six_inner(state, now_ms, packet, out, false),
            _ => Verdict::Drop(Drop::Xlat(DropReason::UnknownVersion)),
        };
        if matches!(verdict, Verdict::Drop(_)) {
            out.clear();
        }
        verdict
    }

    /// RFC 7915 §5.1: the translator is a router; a hop limit that would
    /// reach zero gets an ICMPv6 Time Exceeded from its own address, and a
    /// Routing header with segments left a Parameter Problem. No state.
    /// `kind`: ICMPv6 type, the pointer of a Parameter Problem (else 0),
    /// and the reason the packet was not forwarded.
    fn router_error_v6<R: Random>(
        &self,
        state: &mut State<R>,
        now: u64,
        packet: &[u8],
        (t, pointer, why): (u8, u32, DropReason),
        out: &mut Packets,
    ) -> Verdict {
        let about_error = Ipv6Packet::new_unchecked(packet).walk().is_ok_and(|w| {
            w.protocol == proto::ICMPV6 && packet.get(w.upper_at).is_some_and(|&t| t < 128)
        });
        match self.own_v6 {
            Some(own) if !about_error && state.allow_icmp_error(now) => {
                icmpv6_error(packet, own, t, 0, pointer, out);
                Verdict::IcmpError(Drop::Xlat(why))
            }
            _ => Verdict::Drop(Drop::Xlat(why)),
        }
    }

    /// RFC 7915 §4.1: a TTL that would reach zero gets an ICMPv4 Time
    /// Exceeded from the translator's own address. No state.
    fn router_error_v4<R: Random>(
        &self,
        state: &mut State<R>,
        now: u64,
        packet: &[u8],
        hl: usize,
        out: &mut Packets,
    ) -> Verdict {
        let why = DropReason::TtlExpired;
        let about_error = packet[9] == proto::ICMP
            && packet
                .get(hl)
                .is_some_and(|&t| matches!(t, 3 | 4 | 5 | 11 | 12));
        match self.own_v4 {
            Some(own) if !about_error && state.allow_icmp_error(now) => {
                icmpv4_error(packet, own, icmp::v4::TIME_EXCEEDED, 0, out);
                Verdict::IcmpError(Drop::Xlat(why))
            }
            _ => Verdict::Drop(Drop::Xlat(why)),
        }
    }

    fn extract(&self, addr: Ipv6Addr) -> Option<Ipv4Addr> {
        let v4 = self.prefix.extract(addr)?;
        if self.prefix.is_well_known() && !is_global_v4(v4) {
            return None;
        }
        Some(v4)
    }

    // ---- 6 → 4 ----

    fn six_to_four<R: Random>(
        &self,
        state: &mut State<R>,
        second: Option<&mut State<R>>,
        now: u64,
        packet: &mut [u8],
        out: &mut Packets,
    ) -> Verdict {
        let (src6, dst6, hop, walk, total) = {
            let Ok(ip) = Ipv6Packet::new_checked(&*packet) else {
                return Verdict::Drop(Drop::Xlat(DropReason::MalformedIpv6));
            };
            let Ok(walk) = ip.walk() else {
                return Verdict::Drop(Drop::Xlat(DropReason::MalformedIpv6));
            };
            (
                ip.src_addr(),
                ip.dst_addr(),
                ip.hop_limit(),
                walk,
                40 + usize::from(ip.payload_len()),
            )
        };
        let packet = &mut packet[..total];
        if !self.prefix.contains(dst6) {
            return Verdict::Drop(Drop::NotOurs);
        }
        // A source that cannot be a host (or that is the prefix itself,
        // which would loop) gets no state.
        if src6.is_multicast()
            || src6.is_unspecified()
            || src6.is_loopback()
            || self.prefix.contains(src6)
        {
            return Verdict::Drop(Drop::Xlat(DropReason::UntranslatableSource));
        }
        if let Some(at) = walk.segments_left_at {
            let pointer = u32::try_from(at).unwrap_or(0);
            let kind = (
                icmp::v6::PARAMETER_PROBLEM,
                pointer,
                DropReason::SegmentsLeft,
            );
            return self.router_error_v6(state, now, packet, kind, out);
        }
        if hop <= 1 {
            let kind = (icmp::v6::TIME_EXCEEDED, 0, DropReason::HopLimitExpired);
            return self.router_error_v6(state, now, packet, kind, out);
        }
        let Some(z) = self.extract(dst6) else {
            return Verdict::Drop(Drop::Xlat(DropReason::UntranslatableDestination));
        };
        let at = walk.upper_at;
        if let Some(f) = walk.fragment {
            if walk.protocol == proto::ICMPV6 {
                return Verdict::Drop(Drop::Xlat(DropReason::FragmentedIcmp));
            }
            if f.offset_units != 0 {
                return self.later_fragment_6to4(state, now, packet, (src6, dst6, f.ident), out);
            }
        }
        let upper = &packet[at..];
        if walk.protocol == proto::ICMPV6 && upper.first().is_some_and(|&t| t < 128) {
            return self.six_to_four_error(state, packet, at, out);
        }
        let l4 = match l4_of(walk.protocol, upper, true, true) {
            Ok(l4) => l4,
            Err(d) => return Verdict::Drop(d),
        };
        let m = match state.outbound(
            now,
            l4.proto,
            Taddr6::new(src6, l4.src_port),
            Taddr4::new(z, l4.dst_port),
            l4.flags,
        ) {
            Ok(m) => m,
            Err(r) => return refused_v6(r.reason, r.icmp, packet, out),
        };
        // (X', x) -> (prefix + T, t): the stateless step then makes it T.
        let new_src = self.prefix.embed_unchecked(m.v4.addr);
        let old = sum_addr_port(&src6.octets(), l4.src_port);
        let new = sum_addr_port(&new_src.octets(), m.v4.port);
        packet[8..24].copy_from_slice(&new_src.octets());
        let l4b = &mut packet[at..];
        set16(l4b, l4.src_port_at, m.v4.port);
        fix_checksum(l4b, l4.checksum_at, l4.udp, old, new);
        if let Some(f) = walk.fragment {
            // The first fragment: its followers take the same source.
            state.remember_fragment_v6(now, src6, dst6, f.ident, m.v4.addr);
        }

        if state.is_pool4_addr(z) {
            return self.hairpin(second.unwrap_or(state), now, packet, out);
        }
        let verdict = match self.siit.translate(packet, &mut out.siit) {
            SiitVerdict::SixToFour => Verdict::SixToFour,
            SiitVerdict::IcmpError(r) => Verdict::IcmpError(Drop::Xlat(r)),
            SiitVerdict::Drop(r) => Verdict::Drop(Drop::Xlat(r)),
            SiitVerdict::FourToSix | SiitVerdict::Hairpin => {
                Verdict::Drop(Drop::Xlat(DropReason::Unsupported))
            }
        };
        if let (Verdict::SixToFour, Some(f)) = (verdict, walk.fragment) {
            // The later fragments that came before this one follow it.
            let key = FragmentKey::V6(src6.octets(), dst6.octets(), f.ident);
            let held = state.take_held_fragments(now, &key);
            self.release_held(state, now, held, out);
        }
        verdict
    }

    /// Translates later fragments taken from the state
    /// ([`State::take_held_fragments`]) once their first fragment went
    /// through (its mapping is remembered), adding them to `out` after the
    /// packets already there. One that does not translate is counted
    /// (`fragment_release_failed`).
    pub fn release_held<R: Random>(
        &self,
        state: &mut State<R>,
        now: u64,
        held: Vec<Vec<u8>>,
        out: &mut Packets,
    ) {
        if held.is_empty() {
            return;
        }
        out.adopt_all();
        for mut p in held {
            let before = out.ends.len();
            let v = match p.first().map(|b| b >> 4) {
                Some(6) => self.six_to_four(state, None, now, &mut p, out),
                Some(4) => self.four_to_six_inner(state, now, &mut p, out, false),
                _ => Verdict::Drop(Drop::Xlat(DropReason::UnknownVersion)),
            };
            match v {
                Verdict::SixToFour | Verdict::FourToSix | Verdict::IcmpError(_) => {
                    // The 6→4 half leaves its packets in the stateless
                    // output; the 4→6 half has adopted them already.
                    if out.ends.len() == before {
                        for i in 0..out.siit.len() {
                            out.adopt(i);
                        }
                    }
                }
                // Held again: its mapping was pushed out meanwhile.
                Verdict::Held => {}
                Verdict::Hairpin | Verdict::Drop(_) => state.fragment_release_failed(),
            }
            out.siit.clear();
        }
    }

    /// A 6→4 fragment after the first: the source its first fragment got,
    /// no port (it is in the first fragment, whose checksum covers the
    /// whole datagram and was updated there).
    fn later_fragment_6to4<R: Random>(
        &self,
        state: &mut State<R>,
        now: u64,
        packet: &mut [u8],
        (src6, dst6, ident): (Ipv6Addr, Ipv6Addr, u32),
        out: &mut Packets,
    ) -> Verdict {
        if self.extract(dst6).is_some_and(|z| state.is_pool4_addr(z)) {
            // A hairpinned datagram's later fragments: not followed.
            return Verdict::Drop(Drop::Fragment);
        }
        let Some(t) = state.fragment_v6(now, src6, dst6, ident) else {
            // Before its first fragment: held until that one comes.
            let key = FragmentKey::V6(src6.octets(), dst6.octets(), ident);
            return if state.hold_fragment(now, key, packet) {
                Verdict::Held
            } else {
                Verdict::Drop(Drop::FragmentQueueFull)
            };
        };
        packet[8..24].copy_from_slice(&self.prefix.embed_unchecked(t).octets());
        match self.siit.translate(packet, &mut out.siit) {
            SiitVerdict::SixToFour => Verdict::SixToFour,
            SiitVerdict::IcmpError(r) => Verdict::IcmpError(Drop::Xlat(r)),
            SiitVerdict::Drop(r) => Verdict::Drop(Drop::Xlat(r)),
            _ => Verdict::Drop(Drop::Xlat(DropReason::Unsupported)),
        }
    }

    /// RFC 6146 §3.8: the 6→4 half is done (`packet` has source prefix + T);
    /// translate it to IPv4, then take the IPv4 packet in as if it came from
    /// the IPv4 side.
    fn hairpin<R: Random>(
        &self,
        state: &mut State<R>,
        now: u64,
        packet: &[u8],
        out: &mut Packets,
    ) -> Verdict {
        match self.siit.translate(packet, &mut out.siit) {
            SiitVerdict::SixToFour => {}
            SiitVerdict::IcmpError(r) => return Verdict::IcmpError(Drop::Xlat(r)),
            SiitVerdict::Drop(r) => return Verdict::Drop(Drop::Xlat(r)),
            _ => return Verdict::Drop(Drop::Xlat(DropReason::Unsupported)),
        }
        let mut middle = std::mem::take(&mut out.hairpin);
        middle.clear();
        if let Some(v4) = out.siit.get(0) {
            middle.extend_from_slice(v4);
        }
        out.clear();
        let v = self.four_to_six_inner(state, now, &mut middle, out, true);
        out.hairpin = middle;
        match v {
            Verdict::FourToSix => Verdict::Hairpin,
            other => other,
        }
    }

    /// An ICMPv6 error from the IPv6 side about a packet we delivered
    /// (inner: prefix + Z → X'). Maps the inner destination and the outer
    /// source to the pool4 address of the BIB entry.
    fn six_to_four_error<R: Random>(
        &self,
        state: &mut State<R>,
        packet: &mut [u8],
        at: usize,
        out: &mut Packets,
    ) -> Verdict {
        let inner_at = at + icmp::HEADER_LEN;
        let Some(inner) = packet.get(inner_at..) else {
            return Verdict::Drop(Drop::Xlat(DropReason::MalformedIcmp));
        };
        if inner.len() < 40 || inner[0] >> 4 != 6 {
            return Verdict::Drop(Drop::Xlat(DropReason::MalformedIcmp));
        }
        let ip = Ipv6Packet::new_unchecked(inner);
        let (isrc, idst) = (ip.src_addr(), ip.dst_addr());
        let Ok(walk) = ip.walk() else {
            return Verdict::Drop(Drop::Xlat(DropReason::MalformedIcmp));
        };
        if walk.fragment.is_some_and(|f| f.offset_units != 0) || !self.prefix.contains(isrc) {
            return Verdict::Drop(Drop::IcmpNoBinding);
        }
        let Some(iupper) = inner.get(walk.upper_at..) else {
            return Verdict::Drop(Drop::Xlat(DropReason::MalformedIcmp));
        };
        let l4 = match l4_of(walk.protocol, iupper, true, false) {
            Ok(l4) => l4,
            Err(_) => return Verdict::Drop(Drop::IcmpNoBinding),
        };
        // Inner: prefix + Z:z → X':x; X':x is the BIB entry.
        let Some(t) = state.lookup_v6(l4.proto, Taddr6::new(idst, l4.dst_port)) else {
            return Verdict::Drop(Drop::IcmpNoBinding);
        };
        let t6 = self.prefix.embed_unchecked(t.addr).octets();
        let old = sum_addr_port(&idst.octets(), l4.dst_port);
        let new = sum_addr_port(&t6, t.port);
        let iu = inner_at + walk.upper_at;
        packet[inner_at + 24..inner_at + 40].copy_from_slice(&t6);
        set16(packet, iu + l4.dst_port_at, t.port);
        if let Some(l4b) = packet.get_mut(iu..) {
            fix_checksum(l4b, l4.checksum_at, l4.udp, old, new);
        }
        // Outer source: whoever sent it, it leaves as T (RFC 6146 §3.5).
        packet[8..24].copy_from_slice(&t6);
        refill_icmpv6_checksum(packet, at);
        match self.siit.translate(packet, &mut out.siit) {
            SiitVerdict::SixToFour => Verdict::SixToFour,
            SiitVerdict::IcmpError(r) => Verdict::IcmpError(Drop::Xlat(r)),
            SiitVerdict::Drop(r) => Verdict::Drop(Drop::Xlat(r)),
            _ => Verdict::Drop(Drop::Xlat(DropReason::Unsupported)),
        }
    }

    // ---- 4 → 6 ----

    /// `hairpin`: the packet is the IPv4 middle of a hairpin, whose source
    /// is a pool4 address by design; from outside such a source is spoofed.
    fn four_to_six_inner<R: Random>(
        &self,
        state: &mut State<R>,
        now: u64,
        packet: &mut [u8],
        out: &mut Packets,
        hairpin: bool,
    ) -> Verdict {
        let (src4, dst4, ttl, hl, (fragment, offset, ident), protocol, total) = {
            let Ok(ip) = Ipv4Packet::new_checked(&*packet) else {
                return Verdict::Drop(Drop::Xlat(DropReason::MalformedIpv4));
            };
            if !ip.verify_checksum() {
                return Verdict::Drop(Drop::Xlat(DropReason::BadIpv4Checksum));
            }
            (
                ip.src_addr(),
                ip.dst_addr(),
                ip.ttl(),
                ip.header_len(),
                (ip.is_fragment(), ip.frag_offset_units(), ip.ident()),
                ip.protocol(),
                usize::from(ip.total_len()),
            )
        };
        let packet = &mut packet[..total];
        if !state.is_pool4_addr(dst4) {
            return Verdict::Drop(Drop::NotOurs);
        }
        if src4.is_unspecified()
            || src4.is_broadcast()
            || src4.is_multicast()
            || src4.is_loopback()
            || (!hairpin && state.is_pool4_addr(src4))
        {
            return Verdict::Drop(Drop::Xlat(DropReason::UntranslatableSource));
        }
        if ttl <= 1 {
            return self.router_error_v4(state, now, packet, hl, out);
        }
        if fragment && protocol == proto::ICMP {
            return Verdict::Drop(Drop::Xlat(DropReason::FragmentedIcmp));
        }
        if offset != 0 {
            if hairpin {
                // Never made: a hairpin's later fragments stop on the 6→4
                // side.
                return Verdict::Drop(Drop::Fragment);
            }
            return self.later_fragment_4to6(
                state,
                now,
                packet,
                (src4, dst4, protocol, ident),
                out,
            );
        }
        let upper = &packet[hl..];
        if protocol == proto::ICMP && upper.first().is_some_and(|&t| matches!(t, 3 | 11 | 12)) {
            return self.four_to_six_error(state, packet, hl, out);
        }
        let l4 = match l4_of(protocol, upper, false, true) {
            Ok(l4) => l4,
            Err(d) => return Verdict::Drop(d),
        };
        let m = match state.inbound(
            now,
            l4.proto,
            Taddr4::new(src4, l4.src_port),
            Taddr4::new(dst4, l4.dst_port),
            l4.flags,
        ) {
            Ok(m) => m,
            Err(r) => return refused_v4(r.reason, r.icmp, packet, out),
        };
        let verdict = match self.siit.translate(packet, &mut out.siit) {
            SiitVerdict::FourToSix => Verdict::FourToSix,
            SiitVerdict::IcmpError(r) => return Verdict::IcmpError(Drop::Xlat(r)),
            SiitVerdict::Drop(r) => return Verdict::Drop(Drop::Xlat(r)),
            _ => return Verdict::Drop(Drop::Xlat(DropReason::Unsupported)),
        };
        if fragment {
            // The first fragment: its followers go to the same host.
            state.remember_fragment_v4(now, (src4, dst4), protocol, ident, m.v6.addr);
        }
        // prefix + T:t → X':x in every packet (several when the translator
        // fragmented it); the port only where the transport header is.
        let t6 = self.prefix.embed_unchecked(dst4).octets();
        let x6 = m.v6.addr.octets();
        let old = sum_addr_port(&t6, l4.dst_port);
        let new = sum_addr_port(&x6, m.v6.port);
        let n = out.siit.len();
        for i in 0..n {
            let Some(range) = out.adopt(i) else { continue };
            let b = &mut out.buf[range];
            b[24..40].copy_from_slice(&x6);
            let Ok(walk) = Ipv6Packet::new_unchecked(&*b).walk() else {
                continue;
            };
            if walk.fragment.is_some_and(|f| f.offset_units != 0) {
                continue;
            }
            if let Some(l4b) = b.get_mut(walk.upper_at..) {
                set16(l4b, l4.dst_port_at, m.v6.port);
                fix_checksum(l4b, l4.checksum_at, l4.udp, old, new);
            }
        }
        if fragment && !hairpin {
            // The later fragments that came before this one follow it.
            let key = FragmentKey::V4(src4.octets(), dst4.octets(), protocol, ident);
            let held = state.take_held_fragments(now, &key);
            self.release_held(state, now, held, out);
        }
        verdict
    }

    /// A 4→6 fragment after the first: to the host its first fragment went
    /// to; the destination is rewritten in every packet the translator
    /// makes of it (none holds a transport header).
    fn later_fragment_4to6<R: Random>(
        &self,
        state: &mut State<R>,
        now: u64,
        packet: &[u8],
        (src4, dst4, protocol, ident): (Ipv4Addr, Ipv4Addr, u8, u16),
        out: &mut Packets,
    ) -> Verdict {
        let Some(x) = state.fragment_v4(now, (src4, dst4), protocol, ident) else {
            // Before its first fragment: held until that one comes.
            let key = FragmentKey::V4(src4.octets(), dst4.octets(), protocol, ident);
            return if state.hold_fragment(now, key, packet) {
                Verdict::Held
            } else {
                Verdict::Drop(Drop::FragmentQueueFull)
            };
        };
        match self.siit.translate(packet, &mut out.siit) {
            SiitVerdict::FourToSix => {}
            SiitVerdict::IcmpError(r) => return Verdict::IcmpError(Drop::Xlat(r)),
            SiitVerdict::Drop(r) => return Verdict::Drop(Drop::Xlat(r)),
            _ => return Verdict::Drop(Drop::Xlat(DropReason::Unsupported)),
        }
        let x6 = x.octets();
        for i in 0..out.siit.len() {
            if let Some(range) = out.adopt(i) {
                out.buf[range][24..40].copy_from_slice(&x6);
            }
        }
        Verdict::FourToSix
    }

    /// An ICMPv4 error from the IPv4 side about a packet we sent (inner:
    /// T:t → Z:z). Maps the outer destination and the inner source to the
    /// IPv6 host of the BIB entry of T:t.
    fn four_to_six_error<R: Random>(
        &self,
        state: &mut State<R>,
        packet: &[u8],
        hl: usize,
        out: &mut Packets,
    ) -> Verdict {
        let inner_at = hl + icmp::HEADER_LEN;
        let Some(inner) = packet.get(inner_at..) else {
            return Verdict::Drop(Drop::Xlat(DropReason::MalformedIcmp));
        };
        if inner.len() < 20 || inner[0] >> 4 != 4 {
            return Verdict::Drop(Drop::Xlat(DropReason::MalformedIcmp));
        }
        let ihl = usize::from(inner[0] & 0x0f) * 4;
        let iproto = inner[9];
        let isrc = Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]);
        let frag = u16::from_be_bytes([inner[6], inner[7]]) & 0x1fff;
        if ihl < 20 || frag != 0 {
            return Verdict::Drop(Drop::IcmpNoBinding);
        }
        let Some(iupper) = inner.get(ihl..) else {
            return Verdict::Drop(Drop::Xlat(DropReason::MalformedIcmp));
        };
        let l4 = match l4_of(iproto, iupper, false, false) {
            Ok(l4) => l4,
            Err(_) => return Verdict::Drop(Drop::IcmpNoBinding),
        };
        let Some(x) = state.lookup_v4(l4.proto, Taddr4::new(isrc, l4.src_port)) else {
            return Verdict::Drop(Drop::IcmpNoBinding);
        };
        match self.siit.translate(packet, &mut out.siit) {
            SiitVerdict::FourToSix => {}
            SiitVerdict::IcmpError(r) => return Verdict::IcmpError(Drop::Xlat(r)),
            SiitVerdict::Drop(r) => return Verdict::Drop(Drop::Xlat(r)),
            _ => return Verdict::Drop(Drop::Xlat(DropReason::Unsupported)),
        }
        let Some(range) = out.adopt(0) else {
            return Verdict::Drop(Drop::Xlat(DropReason::Unsupported));
        };
        let b = &mut out.buf[range];
        let x6 = x.addr.octets();
        // Outer destination.
        b[24..40].copy_from_slice(&x6);
        let Ok(walk) = Ipv6Packet::new_unchecked(&*b).walk() else {
            return Verdict::Drop(Drop::Xlat(DropReason::MalformedIcmp));
        };
        let at = walk.upper_at;
        let inner6 = at + icmp::HEADER_LEN;
        if b.len() < inner6 + 40 {
            return Verdict::Drop(Drop::Xlat(DropReason::MalformedIcmp));
        }
        // Inner source (prefix + T → X') and port (t → x).
        let old_src: [u8; 16] = b[inner6 + 8..inner6 + 24].try_into().unwrap_or([0; 16]);
        b[inner6 + 8..inner6 + 24].copy_from_slice(&x6);
        if let Ok(iwalk) = Ipv6Packet::new_unchecked(&b[inner6..]).walk() {
            let iu = inner6 + iwalk.upper_at;
            let old = sum_addr_port(&old_src, l4.src_port);
            let new = sum_addr_port(&x6, x.port);
            set16(b, iu + l4.src_port_at, x.port);
            if let Some(l4b) = b.get_mut(iu..) {
                fix_checksum(l4b, l4.checksum_at, l4.udp, old, new);
            }
        }
        refill_icmpv6_checksum(b, at);
        Verdict::FourToSix
    }
}

/// Which shard holds a packet's state, for a driver that splits the state
/// over several [`State`] shards (one per worker, each behind its own lock).
///
/// A 6→4 packet goes to the shard of its IPv6 source address (so one host's
/// sessions, and its per-source limit, stay in one shard), or, for a static
/// BIB entry, to the shard of its pool4 port; a 4→6 packet goes to the shard
/// that owns its pool4 port ([`shard_of_port`]), which is the shard that
/// handed the port out. ICMP errors follow their inner packet. A hairpin
/// needs two shards: the source's, then the one of the pool4 port it is
/// sent to.
#[derive(Debug, Clone)]
pub struct Sharding {
    shards: usize,
    seed: u64,
    prefix: Prefix64,
    pool4: Pool4,
    statics: Vec<(Proto, Taddr6, u16)>,
}

impl Sharding {
    pub fn new(shards: usize, prefix: Prefix64, config: &Config, seed: u64) -> Self {
        Self {
            shards: shards.max(1),
            seed,
            prefix,
            pool4: config.pool4.clone(),
            statics: config
                .static_bib
                .iter()
                .map(|s| (s.proto, s.v6, s.v4.port))
                .collect(),
        }
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The same sharding over a new pool4 and static BIB list (a reload:
    /// the number of shards and the prefix stay).
    pub fn reconfigured(&self, config: &Config) -> Self {
        Self::new(self.shards, self.prefix, config, self.seed)
    }

    fn of_v6(&self, proto: Proto, addr: &[u8], port: u16) -> usize {
        if self.shards == 1 {
            return 0;
        }
        if let Some((_, _, t)) = self
            .statics
            .iter()
            .find(|(p, v6, _)| *p == proto && v6.port == port && v6.addr.octets() == addr)
        {
            return shard_of_port(*t, self.shards);
        }
        let mut h = self.seed ^ 0xcbf2_9ce4_8422_2325;
        for &b in addr {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        usize::try_from(h % u64::try_from(self.shards).unwrap_or(1)).unwrap_or(0)
    }

    /// (shard, the other shard of a hairpin). Packets that cannot be parsed
    /// go to shard 0, where translation drops them.
    pub fn route(&self, packet: &[u8]) -> (usize, Option<usize>) {
        if self.shards == 1 {
            return (0, None);
        }
        match packet.first().map(|b| b >> 4) {
            Some(6) => self.route6(packet).unwrap_or((0, None)),
            Some(4) => (self.route4(packet).unwrap_or(0), None),
            _ => (0, None),
        }
    }

    fn route6(&self, packet: &[u8]) -> Option<(usize, Option<usize>)> {
        let ip = Ipv6Packet::new_checked(packet).ok()?;
        let walk = ip.walk().ok()?;
        let upper = packet.get(walk.upper_at..)?;
        if walk.protocol == proto::ICMPV6 && *upper.first()? < 128 {
            // An error about a packet to X': X' and x are inside.
            let inner = upper.get(icmp::HEADER_LEN..)?;
            if inner.len() < 40 {
                return None;
            }
            let iwalk = Ipv6Packet::new_unchecked(inner).walk().ok()?;
            let l4 = l4_of(iwalk.protocol, inner.get(iwalk.upper_at..)?, true, false).ok()?;
            return Some((self.of_v6(l4.proto, &inner[24..40], l4.dst_port), None));
        }
        if walk.fragment.is_some_and(|f| f.offset_units != 0) {
            // No ports: the shard of the source, like its first fragment
            // (unless that one went to a static entry's shard).
            return Some((self.of_v6(Proto::Udp, &packet[8..24], 0), None));
        }
        let l4 = l4_of(walk.protocol, upper, true, false).ok()?;
        let first = self.of_v6(l4.proto, &packet[8..24], l4.src_port);
        let dst = ip.dst_addr();
        let hairpin = self
            .prefix
            .extract(dst)
            .filter(|z| self.prefix.contains(dst) && self.pool4.has_address(*z));
        // An ICMP hairpin meets the identifier the first shard hands out.
        let second = match hairpin {
            Some(_) if l4.proto != Proto::Icmp => Some(shard_of_port(l4.dst_port, self.shards)),
            _ => None,
        };
        Some((first, second.filter(|s| *s != first)))
    }

    /// Whether `packet` is an IPv4 fragment after the first: it carries no
    /// port, so no shard can be named for it (see [`Sharding::fragment`]).
    pub fn is_later_ipv4_fragment(&self, packet: &[u8]) -> bool {
        Ipv4Packet::new_checked(packet).is_ok_and(|ip| ip.frag_offset_units() != 0)
    }

    /// The datagram of a fragment (IPv4, or IPv6 with a Fragment header) and
    /// whether the fragment is a later one (offset not 0); `None` for a
    /// packet that is not a fragment.
    ///
    /// A later fragment carries no port, so [`Sharding::route`] cannot name
    /// the shard of its datagram for sure (an IPv4 one not at all; an IPv6
    /// one of a static BIB entry's datagram goes elsewhere than its first).
    /// A driver asks the shards whether they know the datagram
    /// ([`State::knows_fragment`], the [`Sharding::holding_shard`] first)
    /// and, when none does, lets the holding shard hold it; after a first
    /// fragment is translated in another shard than the holding one, it
    /// takes the held fragments from there ([`State::take_held_fragments`])
    /// and releases them through the first fragment's shard
    /// ([`Translator::release_held`]).
    pub fn fragment(&self, packet: &[u8]) -> Option<(FragmentKey, bool)> {
        match packet.first().map(|b| b >> 4) {
            Some(4) => {
                let ip = Ipv4Packet::new_checked(packet).ok()?;
                if !ip.is_fragment() {
                    return None;
                }
                let key = FragmentKey::V4(
                    ip.src_addr().octets(),
                    ip.dst_addr().octets(),
                    ip.protocol(),
                    ip.ident(),
                );
                Some((key, ip.frag_offset_units() != 0))
            }
            Some(6) => {
                // The common case first: a transport header right after the
                // fixed header, no extension header to walk.
                if matches!(
                    packet.get(6),
                    Some(&(proto::TCP | proto::UDP | proto::ICMPV6))
                ) {
                    return None;
                }
                let ip = Ipv6Packet::new_checked(packet).ok()?;
                let f = ip.walk().ok()?.fragment?;
                let key = FragmentKey::V6(ip.src_addr().octets(), ip.dst_addr().octets(), f.ident);
                Some((key, f.offset_units != 0))
            }
            _ => None,
        }
    }

    /// The shard that holds the later fragments of the datagram `key` that
    /// came before its first fragment: for IPv6, the shard of the source
    /// (where [`Sharding::route`] sends its first fragment too, unless that
    /// one is for a static BIB entry); for IPv4, a hash of the datagram's
    /// identity.
    pub fn holding_shard(&self, key: &FragmentKey) -> usize {
        use std::hash::BuildHasher;
        if self.shards == 1 {
            return 0;
        }
        match key {
            FragmentKey::V6(src, _, _) => self.of_v6(Proto::Udp, src, 0),
            FragmentKey::V4(..) => {
                let h = Seeded(self.seed ^ 0x6a09_e667).hash_one(key);
                usize::try_from(h % u64::try_from(self.shards).unwrap_or(1)).unwrap_or(0)
            }
        }
    }

    fn route4(&self, packet: &[u8]) -> Option<usize> {
        let ip = Ipv4Packet::new_checked(packet).ok()?;
        let upper = packet.get(ip.header_len()..)?;
        if ip.protocol() == proto::ICMP && matches!(upper.first()?, 3 | 11 | 12) {
            // An error about a packet from T:t.
            let inner = upper.get(icmp::HEADER_LEN..)?;
            let ihl = usize::from(*inner.first()? & 0x0f) * 4;
            let l4 = l4_of(*inner.get(9)?, inner.get(ihl..)?, false, false).ok()?;
            return Some(shard_of_port(l4.src_port, self.shards));
        }
        let l4 = l4_of(ip.protocol(), upper, false, false).ok()?;
        Some(shard_of_port(l4.dst_port, self.shards))
    }
}

/// RFC 6146 §3.5.1.1: an IPv6 packet the state refused, answered (when the
/// state asks) with an ICMPv6 Destination Unreachable, code 3, from the
/// packet's destination.
fn refused_v6(
    reason: Refuse,
    icmp_err: Option<IcmpError>,
    orig: &[u8],
    out: &mut Packets,
) -> Verdict {
    if icmp_err != Some(IcmpError::V6AddressUnreachable) || orig.len() < 40 {
        return Verdict::Drop(Drop::State(reason));
    }
    let mut from = [0u8; 16];
    from.copy_from_slice(&orig[24..40]);
    icmpv6_error(
        orig,
        Ipv6Addr::from(from),
        icmp::v6::DEST_UNREACHABLE,
        3,
        0,
        out,
    );
    Verdict::IcmpError(Drop::State(reason))
}

/// An IPv4 packet the state refused, answered (when the state asks) with an
/// ICMP Destination Unreachable (port unreachable or administratively
/// prohibited) from the pool4 address it was sent to.
fn refused_v4(
    reason: Refuse,
    icmp_err: Option<IcmpError>,
    orig: &[u8],
    out: &mut Packets,
) -> Verdict {
    let code = match icmp_err {
        Some(IcmpError::V4PortUnreachable) => 3,
        Some(IcmpError::V4AdminProhibited) => 13,
        _ => return Verdict::Drop(Drop::State(reason)),
    };
    let from = Ipv4Addr::new(orig[16], orig[17], orig[18], orig[19]);
    icmpv4_error(orig, from, icmp::v4::DEST_UNREACHABLE, code, out);
    Verdict::IcmpError(Drop::State(reason))
}

/// An ICMPv6 error about `orig` (a whole IPv6 packet, at least 40 bytes),
/// from `from` to its source, quoting as much as fits in 1280 bytes (RFC
/// 4443 §2.4). `rest` is the pointer of a Parameter Problem.
fn icmpv6_error(orig: &[u8], from: Ipv6Addr, t: u8, code: u8, rest: u32, out: &mut Packets) {
    if orig.len() < 40 {
        return;
    }
    let body = orig.len().min(1280 - 48);
    let total = 48 + body;
    let mut p = [0u8; 1280];
    let p = &mut p[..total];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&u16::try_from(8 + body).unwrap_or(0).to_be_bytes());
    p[6] = proto::ICMPV6;
    p[7] = 64;
    p[8..24].copy_from_slice(&from.octets());
    p[24..40].copy_from_slice(&orig[8..24]);
    p[40] = t;
    p[41] = code;
    p[44..48].copy_from_slice(&rest.to_be_bytes());
    p[48..].copy_from_slice(&orig[..body]);
    refill_icmpv6_checksum(p, 40);
    out.push_own(p);
}

/// An ICMPv4 error about `orig` (a whole IPv4 packet), from `from` to its
/// source, quoting as much as fits in 576 bytes (RFC 1812 §4.3.2.3). Never
/// about a packet from a broadcast, multicast, unspecified or loopback
/// source.
fn icmpv4_error(orig: &[u8], from: Ipv4Addr, t: u8, code: u8, out: &mut Packets) {
    if orig.len() < 20 {
        return;
    }
    let src = Ipv4Addr::new(orig[12], orig[13], orig[14], orig[15]);
    if src.is_broadcast() || src.is_multicast() || src.is_unspecified() || src.is_loopback() {
        return;
    }
    let body = orig.len().min(576 - 28);
    let total = 28 + body;
    let mut p = [0u8; 576];
    let p = &mut p[..total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&u16::try_from(total).unwrap_or(0).to_be_bytes());
    p[8] = 64;
    p[9] = proto::ICMP;
    p[12..16].copy_from_slice(&from.octets());
    p[16..20].copy_from_slice(&orig[12..16]);
    let hc = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&hc.to_be_bytes());
    p[20] = t;
    p[21] = code;
    p[28..].copy_from_slice(&orig[..body]);
    let ic = checksum::checksum(&p[20..]);
    p[22..24].copy_from_slice(&ic.to_be_bytes());
    out.push_own(p);
}
