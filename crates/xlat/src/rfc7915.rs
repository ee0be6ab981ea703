//! RFC 7915: IP/ICMP Translation Algorithm, both directions.
//!
//! Comments cite the RFC section each rule comes from, in our own words.
//!
//! §4 translates IPv4 to IPv6, §5 IPv6 to IPv4. Addresses come from the EAM
//! table (RFC 7757 §3.1: consulted first) and then from pool6 (RFC 6052).
//! Checksums of TCP and UDP, and of ICMP echo messages, are updated
//! incrementally (RFC 1624) so that a payload with a bad checksum stays bad;
//! ICMP errors are rebuilt and checksummed in full after their own checksum
//! was verified.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum::{self, fold};
use crate::siit::{DropReason, Output, Siit, Verdict, IPV6_MIN_MTU};
use crate::wire::icmp::{self, IcmpPacket};
use crate::wire::ipv6::{emit_fragment_header, FRAG_HEADER_LEN};
use crate::wire::{be16, ipv4, ipv6, proto, set_be16, tcp, udp, Ipv4Packet, Ipv6Packet};

/// RFC 7915 §5.1: If the size of the translated IPv4 packet is less than or
/// equal to 1260 bytes, [DF] is set to zero; otherwise, it is set to one.
const DF_THRESHOLD: usize = 1260;
/// RFC 1812 §4.3.2.3: an ICMPv4 error is at most 576 bytes long.
const ICMPV4_ERROR_MAX: usize = 576;
/// RFC 4443 §2.4 (c): an ICMPv6 error does not exceed the minimum MTU.
const ICMPV6_ERROR_MAX: usize = 1280;
/// Hop limit / TTL of the ICMP errors the translator generates.
const OWN_HOP_LIMIT: u8 = 64;
/// Growth of an ICMP error when its inner IPv4 header (20 bytes, options
/// dropped) becomes an IPv6 header (40) plus a Fragment header (8), plus 4
/// bytes of RFC 4884 padding to a multiple of 8.
const INNER_GROWTH: usize = 32;
/// RFC 4884 §4: the original datagram field of an ICMP error that carries
/// extensions is at least 128 bytes long.
const RFC4884_MIN_ORIGINAL: usize = 128;

type Result<T> = std::result::Result<T, DropReason>;

fn u16_len(n: usize) -> Result<u16> {
    u16::try_from(n).map_err(|_| DropReason::MalformedIpv4)
}

/// Whether an ICMPv4 type is an error (RFC 792: 3, 4, 5, 11, 12).
fn is_icmpv4_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// RFC 7915 §4.2, Figure 3: ICMPv4 Parameter Problem pointer → ICMPv6.
pub(crate) fn pointer_4to6(p: u8) -> Option<u8> {
    Some(match p {
        0 => 0,           // Version/IHL -> Version/Traffic Class
        1 => 1,           // Type of Service -> Traffic Class
        2 | 3 => 4,       // Total Length -> Payload Length
        8 => 7,           // Time to Live -> Hop Limit
        9 => 6,           // Protocol -> Next Header
        12..=15 => 8,     // Source Address
        16..=19 => 24,    // Destination Address
        _ => return None, // Identification, Flags/Offset, Checksum: n/a
    })
}

/// RFC 7915 §5.2, Figure 6: ICMPv6 Parameter Problem pointer → ICMPv4.
pub(crate) fn pointer_6to4(p: u32) -> Option<u8> {
    Some(match p {
        0 => 0,           // Version/Traffic Class -> Version/IHL, Type of Service
        1 => 1,           // Traffic Class/Flow Label -> Type of Service
        4 | 5 => 2,       // Payload Length -> Total Length
        6 => 9,           // Next Header -> Protocol
        7 => 8,           // Hop Limit -> Time to Live
        8..=23 => 12,     // Source Address
        24..=39 => 16,    // Destination Address
        _ => return None, // Flow Label (2, 3) and beyond the header: n/a
    })
}

/// RFC 7915 §4.2: ICMPv4 error type/code → ICMPv6 type/code, and how the
/// 4-byte rest of header is rebuilt. `None`: drop silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rest {
    Zero,
    Mtu,
    Pointer(u32),
}

pub(crate) fn icmp_error_4to6(t: u8, code: u8, pointer: u8) -> Option<(u8, u8, Rest)> {
    use icmp::v6::*;
    match t {
        // Destination Unreachable (Type 3)
        3 => match code {
            // Net/Host Unreachable, and Source Route Failed, Network/Host
            // Unknown, Source Host Isolated, Net/Host Unreachable for TOS.
            0 | 1 | 5 | 6 | 7 | 8 | 11 | 12 => Some((DEST_UNREACHABLE, 0, Rest::Zero)),
            // Protocol Unreachable -> Parameter Problem, Unrecognized Next
            // Header, pointer to the Next Header field.
            2 => Some((PARAMETER_PROBLEM, 1, Rest::Pointer(6))),
            // Port Unreachable
            3 => Some((DEST_UNREACHABLE, 4, Rest::Zero)),
            // Fragmentation Needed -> Packet Too Big
            4 => Some((PACKET_TOO_BIG, 0, Rest::Mtu)),
            // Communication with Destination Network/Host Administratively
            // Prohibited, Communication Administratively Prohibited.
            9 | 10 | 13 => Some((DEST_UNREACHABLE, 1, Rest::Zero)),
            // Host Precedence Violation: silently drop. 15: Precedence
            // cutoff in effect -> Communication Administratively Prohibited.
            15 => Some((DEST_UNREACHABLE, 1, Rest::Zero)),
            _ => None,
        },
        // Time Exceeded (Type 11): code unchanged.
        11 => Some((TIME_EXCEEDED, code, Rest::Zero)),
        // Parameter Problem (Type 12): codes 0 (pointer) and 2 (bad length)
        // map with the Figure 3 pointer; 1 (missing option) is dropped.
        12 => match code {
            0 | 2 => {
                pointer_4to6(pointer).map(|p| (PARAMETER_PROBLEM, 0, Rest::Pointer(u32::from(p))))
            }
            _ => None,
        },
        // Source Quench (4), Redirect (5) and the rest: silently drop.
        _ => None,
    }
}

/// RFC 7915 §5.2: ICMPv6 error type/code → ICMPv4. `None`: drop silently.
pub(crate) fn icmp_error_6to4(t: u8, code: u8, pointer: u32) -> Option<(u8, u8, Rest)> {
    use icmp::v4::*;
    match t {
        // Destination Unreachable (Type 1)
        1 => match code {
            // No route, beyond scope, address unreachable -> Host Unreachable
            0 | 2 | 3 => Some((DEST_UNREACHABLE, 1, Rest::Zero)),
            // Administratively prohibited -> Communication with Destination
            // Host Administratively Prohibited
            1 => Some((DEST_UNREACHABLE, 10, Rest::Zero)),
            // Port Unreachable
            4 => Some((DEST_UNREACHABLE, 3, Rest::Zero)),
            _ => None,
        },
        // Packet Too Big (Type 2) -> Fragmentation Needed
        2 => Some((DEST_UNREACHABLE, 4, Rest::Mtu)),
        // Time Exceeded (Type 3) -> Type 11, code unchanged
        3 => Some((TIME_EXCEEDED, code, Rest::Zero)),
        // Parameter Problem (Type 4)
        4 => match code {
            // Erroneous header field -> Parameter Problem, Figure 6 pointer
            0 => pointer_6to4(pointer)
                .map(|p| (PARAMETER_PROBLEM, 0, Rest::Pointer(u32::from(p) << 24))),
            // Unrecognized Next Header -> Protocol Unreachable
            1 => Some((DEST_UNREACHABLE, 2, Rest::Zero)),
            _ => None,
        },
        _ => None,
    }
}

/// RFC 4884 §4 and §5: an ICMP error whose length attribute is set carries
/// the original datagram (`attr * unit` bytes, at least 128) followed by an
/// extension structure. Returns (original datagram, extensions); an unset or
/// impossible attribute means the whole body is the original datagram.
fn split_rfc4884(body: &[u8], attr: u8, unit: usize) -> (&[u8], &[u8]) {
    let orig = usize::from(attr) * unit;
    if attr == 0 || orig < RFC4884_MIN_ORIGINAL || orig > body.len() {
        return (body, &[]);
    }
    body.split_at(orig)
}

/// RFC 4884 on the way out: pads the translated original datagram (`n`
/// bytes at the start of `body`) with zeros to a multiple of `unit` and at
/// least 128 bytes, then appends the extensions unchanged (their checksum
/// covers only themselves). Returns the new body length and the length
/// attribute, or `None` (extensions dropped) when they do not fit.
fn append_rfc4884(body: &mut [u8], n: usize, ext: &[u8], unit: usize) -> Option<(usize, u8)> {
    if ext.is_empty() {
        return None;
    }
    let padded = n.max(RFC4884_MIN_ORIGINAL).next_multiple_of(unit);
    let attr = u8::try_from(padded / unit).ok()?;
    let end = padded + ext.len();
    if end > body.len() {
        return None;
    }
    body[n..padded].fill(0);
    body[padded..end].copy_from_slice(ext);
    Some((end, attr))
}

/// RFC 1191 §5: the largest plateau below `len` (the smallest if none).
fn plateau_below(plateaus: &[u16], len: u16) -> u16 {
    plateaus
        .iter()
        .copied()
        .find(|&p| p < len)
        .or_else(|| plateaus.last().copied())
        .unwrap_or(68)
}

fn write_v6_header(
    b: &mut [u8],
    tc: u8,
    payload_len: u16,
    next_header: u8,
    hop_limit: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) {
    let mut h = Ipv6Packet::new_unchecked(b);
    h.set_version_tc_flow(tc, 0);
    h.set_payload_len(payload_len);
    h.set_next_header(next_header);
    h.set_hop_limit(hop_limit);
    h.set_src_addr(src);
    h.set_dst_addr(dst);
}

#[allow(clippy::too_many_arguments)]
fn write_v4_header(
    b: &mut [u8],
    tos: u8,
    total_len: u16,
    ident: u16,
    (df, mf, offset_units): (bool, bool, u16),
    ttl: u8,
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    let mut h = Ipv4Packet::new_unchecked(b);
    h.set_version_and_header_len(ipv4::HEADER_LEN);
    h.set_tos(tos);
    h.set_total_len(total_len);
    h.set_ident(ident);
    h.set_flags_and_offset(df, mf, offset_units);
    h.set_ttl(ttl);
    h.set_protocol(protocol);
    h.set_src_addr(src);
    h.set_dst_addr(dst);
    h.fill_checksum();
}

/// Adjusts the TCP or UDP checksum at `at` in `seg` (when the segment holds
/// it) from the `old` pseudo-header address sum to `new`. A UDP checksum of
/// zero stays zero (no checksum); callers decide what zero means first.
fn fix_l4_checksum(protocol: u8, seg: &mut [u8], old: u64, new: u64) {
    let at = match protocol {
        proto::TCP => tcp::CHECKSUM_AT,
        proto::UDP => udp::CHECKSUM_AT,
        _ => return,
    };
    if seg.len() < at + 2 {
        return;
    }
    let c = be16(seg, at);
    if protocol == proto::UDP && c == 0 {
        return;
    }
    let mut n = checksum::update(c, old, new);
    if protocol == proto::UDP && n == 0 {
        n = 0xffff;
    }
    set_be16(seg, at, n);
}

/// The first 16-bit word of an ICMP message: type and code.
fn type_word(t: u8, code: u8) -> u64 {
    u64::from(u16::from_be_bytes([t, code]))
}

/// What an IPv4 address maps to, and the other way round.
impl Siit {
    /// RFC 7757 §3.1 then RFC 6052: IPv4 → IPv6. `pool6_only` for the source
    /// of a hairpinned packet (RFC 7757 §4.2).
    pub(crate) fn map_v4(&self, a: Ipv4Addr, pool6_only: bool) -> Option<Ipv6Addr> {
        if !pool6_only {
            if let Some(v6) = self.eam.v4_to_v6(a) {
                return Some(v6);
            }
        }
        if never_by_pool6(a) {
            return None;
        }
        self.config.pool6.and_then(|p| p.embed(a).ok())
    }

    /// RFC 7757 §3.1 then RFC 6052: IPv6 → IPv4. Under the well-known prefix
    /// a non-global IPv4 address is refused (RFC 6052 §3.1).
    pub(crate) fn map_v6(&self, a: Ipv6Addr) -> Option<Ipv4Addr> {
        if let Some(v4) = self.eam.v6_to_v4(a) {
            return Some(v4);
        }
        let p = self.config.pool6?;
        let v4 = p.extract(a)?;
        if never_by_pool6(v4) || p.is_well_known() && !crate::prefix64::is_global_v4(v4) {
            return None;
        }
        Some(v4)
    }

    /// RFC 6791: an IPv4 source for an ICMPv6 error from an untranslatable
    /// IPv6 address, picked by a hash of that address.
    fn rfc6791_v4(&self, from: Ipv6Addr) -> Option<Ipv4Addr> {
        let h = hash_v6(from);
        let pool = &self.config.rfc6791_v4;
        if pool.is_empty() {
            return self.config.own_ipv4;
        }
        let [a, b, c, d] = h.to_be_bytes();
        let i = usize::from(u16::from_be_bytes([a, b])) % pool.len();
        Some(pool[i].nth(u32::from(u16::from_be_bytes([c, d]))))
    }

    /// The IPv6 counterpart, for ICMPv4 errors from unmapped IPv4 routers.
    fn rfc6791_v6(&self, from: Ipv4Addr) -> Option<Ipv6Addr> {
        match self.config.rfc6791_v6 {
            Some(p) => Some(p.nth(u32::from(from))),
            None => self.own_v6(),
        }
    }

    fn own_v6(&self) -> Option<Ipv6Addr> {
        self.config.own_ipv6.or_else(|| {
            let v4 = self.config.own_ipv4?;
            self.map_v4(v4, false)
        })
    }

    fn tc_4to6(&self, tos: u8) -> u8 {
        if self.config.reset_traffic_class {
            0
        } else {
            tos
        }
    }

    fn tos_6to4(&self, tc: u8) -> u8 {
        if self.config.reset_tos {
            self.config.new_tos
        } else {
            tc
        }
    }
}

/// IPv4 addresses pool6 never translates (Jool's default deny list for
/// SIIT): this network 0.0.0.0/8, loopback 127.0.0.0/8, link-local
/// 169.254.0.0/16, multicast 224.0.0.0/4 and the limited broadcast. They
/// mean something only on their own link or host. An EAM entry still maps
/// them if the operator writes one.
fn never_by_pool6(a: Ipv4Addr) -> bool {
    let [o0, o1, _, _] = a.octets();
    o0 == 0 || o0 == 127 || (o0 == 169 && o1 == 254) || a.is_multicast() || a.is_broadcast()
}

fn hash_v6(a: Ipv6Addr) -> u32 {
    // FNV-1a: stable, cheap, good enough to spread over a small pool.
    let mut h: u32 = 0x811c_9dc5;
    for b in a.octets() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

// ---------------------------------------------------------------------------
// §4: IPv4 → IPv6
// ---------------------------------------------------------------------------

impl Siit {
    /// RFC 7915 §4.1. `hairpin`: the second half of a hairpin, whose source
    /// is mapped with pool6 only (RFC 7757 §4.2).
    pub(crate) fn four_to_six(&self, packet: &[u8], out: &mut Output, hairpin: bool) -> Verdict {
        match self.try_four_to_six(packet, out, hairpin) {
            Ok(v) => v,
            Err(r) => Verdict::Drop(r),
        }
    }

    fn try_four_to_six(&self, packet: &[u8], out: &mut Output, hairpin: bool) -> Result<Verdict> {
        let ip = Ipv4Packet::new_checked(packet).map_err(|_| DropReason::MalformedIpv4)?;
        if !ip.verify_checksum() {
            return Err(DropReason::BadIpv4Checksum);
        }
        let whole = &packet[..usize::from(ip.total_len())];
        let payload = ip.payload();
        let first = ip.frag_offset_units() == 0;
        let is_icmp = ip.protocol() == proto::ICMP;
        let icmp_error = is_icmp && first && payload.first().is_some_and(|&t| is_icmpv4_error(t));

        // Addresses first: a packet the translator would not forward gets
        // no ICMP error from it either.
        let dst6 = self
            .map_v4(ip.dst_addr(), false)
            .ok_or(DropReason::UntranslatableDestination)?;
        let src6 = match self.map_v4(ip.src_addr(), hairpin) {
            Some(a) => a,
            // RFC 6791: ICMP errors from IPv4 routers without a mapping.
            None if icmp_error => self
                .rfc6791_v6(ip.src_addr())
                .ok_or(DropReason::UntranslatableSource)?,
            None => return Err(DropReason::UntranslatableSource),
        };

        // §4.1 Time to Live: the translator is a router. If the TTL is
        // zero after decrement, the translator sends ICMPv4 Time Exceeded.
        if ip.ttl() <= 1 {
            return Ok(self.icmpv4_error(
                whole,
                icmp::v4::TIME_EXCEEDED,
                0,
                0,
                DropReason::TtlExpired,
                out,
            ));
        }
        // §4.1 IPv4 options: If a Source Route option is present that has
        // not yet expired, the translator SHOULD send an ICMPv4 Destination
        // Unreachable, Source Route Failed (Type 3, Code 5) error.
        if ip.has_unexpired_source_route() {
            return Ok(self.icmpv4_error(
                whole,
                icmp::v4::DEST_UNREACHABLE,
                5,
                0,
                DropReason::SourceRoute,
                out,
            ));
        }

        if ip.protocol() == proto::ICMPV6 {
            // ICMPv6 carried in IPv4 would reach the IPv6 host unchecked.
            return Err(DropReason::IcmpUntranslatable);
        }
        let is_frag = ip.is_fragment();
        if is_icmp && is_frag {
            // The ICMPv6 checksum covers a pseudo-header and the whole
            // message, which a fragment does not hold.
            return Err(DropReason::FragmentedIcmp);
        }
        let next_header = if is_icmp {
            proto::ICMPV6
        } else {
            ip.protocol()
        };
        let tc = self.tc_4to6(ip.tos());
        let hop = ip.ttl() - 1;
        let fh_len = if is_frag { FRAG_HEADER_LEN } else { 0 };
        let upper_cap = if icmp_error {
            (payload.len() + INNER_GROWTH).min(ICMPV6_ERROR_MAX - ipv6::HEADER_LEN)
        } else {
            payload.len()
        };
        let mtu = usize::from(self.config.lowest_ipv6_mtu);
        let max_len = ipv6::HEADER_LEN + fh_len + upper_cap;

        // §4: If the DF flag is not set and the IPv4 packet will result in
        // an IPv6 packet larger than lowest-ipv6-mtu bytes, the packet MUST
        // be fragmented so the resulting IPv6 packet (with Fragment header
        // added to each fragment) will be less than or equal to
        // lowest-ipv6-mtu bytes.
        if ip.dont_frag() || max_len <= mtu {
            let b = out.push(max_len);
            let n = self.upper_4to6(
                &ip,
                (src6, dst6),
                hairpin,
                &mut b[ipv6::HEADER_LEN + fh_len..],
            )?;
            let payload_len = u16_len(fh_len + n)?;
            if is_frag {
                emit_fragment_header(
                    &mut b[ipv6::HEADER_LEN..],
                    next_header,
                    ip.frag_offset_units(),
                    ip.more_frags(),
                    u32::from(ip.ident()),
                );
                write_v6_header(b, tc, payload_len, proto::FRAGMENT, hop, src6, dst6);
            } else {
                write_v6_header(b, tc, payload_len, next_header, hop, src6, dst6);
            }
            out.shrink_last(ipv6::HEADER_LEN + fh_len + n);
            return Ok(Verdict::FourToSix);
        }

        let mut scratch = std::mem::take(&mut out.scratch);
        scratch.clear();
        scratch.resize(upper_cap, 0);
        let r = self
            .upper_4to6(&ip, (src6, dst6), hairpin, &mut scratch)
            .and_then(|n| {
                let data = &scratch[..n];
                if usize::from(ip.frag_offset()) + n > usize::from(u16::MAX) {
                    return Err(DropReason::MalformedIpv4);
                }
                let h = (tc, hop, src6, dst6);
                if !is_frag && ipv6::HEADER_LEN + n <= mtu {
                    let b = out.push(ipv6::HEADER_LEN + n);
                    write_v6_header(b, tc, u16_len(n)?, next_header, hop, src6, dst6);
                    b[ipv6::HEADER_LEN..].copy_from_slice(data);
                    return Ok(Verdict::FourToSix);
                }
                let chunk = (mtu - ipv6::HEADER_LEN - FRAG_HEADER_LEN) & !7;
                let base = usize::from(ip.frag_offset());
                let mut start = 0;
                loop {
                    let end = (start + chunk).min(n);
                    let piece = &data[start..end];
                    let last = end == n;
                    let b = out.push(ipv6::HEADER_LEN + FRAG_HEADER_LEN + piece.len());
                    write_v6_header(
                        b,
                        h.0,
                        u16_len(FRAG_HEADER_LEN + piece.len())?,
                        proto::FRAGMENT,
                        h.1,
                        h.2,
                        h.3,
                    );
                    emit_fragment_header(
                        &mut b[ipv6::HEADER_LEN..],
                        next_header,
                        u16_len((base + start) / 8)?,
                        !last || ip.more_frags(),
                        u32::from(ip.ident()),
                    );
                    b[ipv6::HEADER_LEN + FRAG_HEADER_LEN..].copy_from_slice(piece);
                    start = end;
                    if last {
                        break;
                    }
                }
                Ok(Verdict::FourToSix)
            });
        out.scratch = scratch;
        r
    }

    /// Writes the translated upper-layer data of `ip` into `dst` (which has
    /// room for it) and returns its length.
    fn upper_4to6<T: AsRef<[u8]>>(
        &self,
        ip: &Ipv4Packet<T>,
        (src6, dst6): (Ipv6Addr, Ipv6Addr),
        hairpin: bool,
        dst: &mut [u8],
    ) -> Result<usize> {
        let payload = ip.payload();
        let first = ip.frag_offset_units() == 0;
        match ip.protocol() {
            proto::ICMP => self.icmp_4to6(payload, (src6, dst6), hairpin, dst),
            p @ (proto::TCP | proto::UDP) if first => {
                let seg = dst
                    .get_mut(..payload.len())
                    .ok_or(DropReason::MalformedIpv4)?;
                seg.copy_from_slice(payload);
                let need = if p == proto::TCP {
                    tcp::CHECKSUM_AT + 2
                } else {
                    udp::HEADER_LEN
                };
                if seg.len() < need {
                    return Err(DropReason::MalformedTransport);
                }
                if p == proto::UDP && be16(seg, udp::CHECKSUM_AT) == 0 {
                    // §4.5: the translator MUST compute the missing UDP
                    // checksum for unfragmented packets; fragments SHOULD
                    // be dropped (the rest of the datagram is not here).
                    if ip.is_fragment() {
                        return Err(DropReason::UdpZeroChecksumFragment);
                    }
                    let ulen = usize::from(be16(seg, 4));
                    if ulen < udp::HEADER_LEN || ulen > seg.len() {
                        return Err(DropReason::MalformedTransport);
                    }
                    let len32 = u32::from(be16(seg, 4));
                    let sum = checksum::add(
                        checksum::pseudo_v6(src6, dst6, proto::UDP, len32),
                        &seg[..ulen],
                    );
                    let c = !fold(sum);
                    set_be16(seg, udp::CHECKSUM_AT, if c == 0 { 0xffff } else { c });
                } else {
                    fix_l4_checksum(
                        p,
                        seg,
                        checksum::sum_v4_pair(ip.src_addr(), ip.dst_addr()),
                        checksum::sum_v6_pair(src6, dst6),
                    );
                }
                Ok(payload.len())
            }
            _ => {
                let seg = dst
                    .get_mut(..payload.len())
                    .ok_or(DropReason::MalformedIpv4)?;
                seg.copy_from_slice(payload);
                Ok(payload.len())
            }
        }
    }

    /// RFC 7915 §4.2: ICMPv4 → ICMPv6 (an unfragmented message).
    fn icmp_4to6(
        &self,
        msg: &[u8],
        (src6, dst6): (Ipv6Addr, Ipv6Addr),
        hairpin: bool,
        dst: &mut [u8],
    ) -> Result<usize> {
        let m = IcmpPacket::new_checked(msg).map_err(|_| DropReason::MalformedIcmp)?;
        let len32 = u32::try_from(msg.len()).map_err(|_| DropReason::MalformedIcmp)?;
        match m.msg_type() {
            t @ (icmp::v4::ECHO_REQUEST | icmp::v4::ECHO_REPLY) => {
                // Echo and Echo Reply (Type 8 and Type 0): Adjust the Type
                // values to 128 and 129, respectively, and adjust the ICMP
                // checksum both to take the type change into account and to
                // include the ICMPv6 pseudo-header.
                let nt = if t == icmp::v4::ECHO_REQUEST {
                    icmp::v6::ECHO_REQUEST
                } else {
                    icmp::v6::ECHO_REPLY
                };
                let seg = dst.get_mut(..msg.len()).ok_or(DropReason::MalformedIcmp)?;
                seg.copy_from_slice(msg);
                let old = type_word(t, m.code());
                let new =
                    type_word(nt, m.code()) + checksum::pseudo_v6(src6, dst6, proto::ICMPV6, len32);
                let mut p = IcmpPacket::new_unchecked(seg);
                p.set_msg_type(nt);
                p.set_checksum(checksum::update(m.checksum(), old, new));
                Ok(msg.len())
            }
            t if is_icmpv4_error(t) => {
                if fold(checksum::add(0, msg)) != 0xffff {
                    return Err(DropReason::BadIcmpChecksum);
                }
                let (nt, code, rest) = icmp_error_4to6(t, m.code(), m.v4_pointer())
                    .ok_or(DropReason::IcmpUntranslatable)?;
                // ICMPv4 Destination Unreachable, Time Exceeded and
                // Parameter Problem carry the RFC 4884 length in byte 5.
                let (inner, ext) = split_rfc4884(m.body(), msg[5], 4);
                let rest = match rest {
                    Rest::Zero => 0,
                    Rest::Pointer(p) => p,
                    Rest::Mtu => {
                        // The MTU field MUST be adjusted for the difference
                        // between the IPv4 and IPv6 header sizes [...] If the
                        // MTU is zero, use the RFC 1191 plateaus. IPv6 nodes
                        // never go below 1280 (RFC 8201 §4), and 6→4 packets
                        // of 1260 bytes or less carry DF=0, so 1280 is the
                        // floor written here.
                        let mut mtu = m.v4_mtu();
                        if mtu == 0 {
                            let inner_len = if inner.len() >= 4 {
                                be16(inner, 2)
                            } else {
                                u16::MAX
                            };
                            mtu = plateau_below(&self.config.mtu_plateaus, inner_len);
                        }
                        (u32::from(mtu) + 20).max(u32::from(IPV6_MIN_MTU))
                    }
                };
                if dst.len() < icmp::HEADER_LEN {
                    return Err(DropReason::MalformedIcmp);
                }
                let (head, body) = dst.split_at_mut(icmp::HEADER_LEN);
                let n = self.inner_4to6(inner, body, hairpin)?;
                let mut total = icmp::HEADER_LEN + n;
                let mut rest = rest;
                // ICMPv6 Destination Unreachable and Time Exceeded carry it
                // in byte 4, in 8-byte units (RFC 4884 §4.3).
                if matches!(nt, icmp::v6::DEST_UNREACHABLE | icmp::v6::TIME_EXCEEDED) {
                    if let Some((len, attr)) = append_rfc4884(body, n, ext, 8) {
                        total = icmp::HEADER_LEN + len;
                        rest |= u32::from(attr) << 24;
                    }
                }
                let mut p = IcmpPacket::new_unchecked(head);
                p.set_msg_type(nt);
                p.set_code(code);
                p.set_checksum(0);
                p.set_rest(rest);
                let total32 = u32::try_from(total).map_err(|_| DropReason::MalformedIcmp)?;
                let sum = checksum::pseudo_v6(src6, dst6, proto::ICMPV6, total32);
                let c = !fold(checksum::add(sum, &dst[..total]));
                set_be16(dst, 2, c);
                Ok(total)
            }
            // Information Request/Reply, Timestamp, Address Mask, Router
            // Advertisement/Solicitation and unknown types: obsoleted in
            // ICMPv6, silently drop.
            _ => Err(DropReason::IcmpUntranslatable),
        }
    }

    /// RFC 7915 §4.3: the IPv4 packet inside an ICMPv4 error, possibly
    /// truncated, becomes an IPv6 packet in `dst` (cut to fit). The TTL is
    /// not decremented. `hairpin`: the error is being hairpinned, so the
    /// inner destination (the mirror of the outer source) is mapped with
    /// pool6 only, giving back the address the erring packet was sent to.
    fn inner_4to6(&self, inner: &[u8], dst: &mut [u8], hairpin: bool) -> Result<usize> {
        const BAD: DropReason = DropReason::IcmpInnerUntranslatable;
        if inner.len() < ipv4::HEADER_LEN || inner[0] >> 4 != 4 {
            return Err(BAD);
        }
        let ip = Ipv4Packet::new_unchecked(inner);
        let hl = ip.header_len();
        if hl < ipv4::HEADER_LEN || hl > inner.len() {
            return Err(BAD);
        }
        let src6 = self.map_v4(ip.src_addr(), false).ok_or(BAD)?;
        let dst6 = self.map_v4(ip.dst_addr(), hairpin).ok_or(BAD)?;
        let declared = usize::from(ip.total_len()).saturating_sub(hl);
        let data = &inner[hl..inner.len().min(hl + declared)];
        let is_frag = ip.is_fragment();
        let fh_len = if is_frag { FRAG_HEADER_LEN } else { 0 };
        let is_icmp = ip.protocol() == proto::ICMP;
        let nh = if is_icmp {
            proto::ICMPV6
        } else {
            ip.protocol()
        };

        let mut full = [0u8; ipv6::HEADER_LEN + FRAG_HEADER_LEN];
        let payload_len = u16::try_from(declared + fh_len).unwrap_or(u16::MAX);
        if is_frag {
            write_v6_header(
                &mut full,
                self.tc_4to6(ip.tos()),
                payload_len,
                proto::FRAGMENT,
                ip.ttl(),
                src6,
                dst6,
            );
            emit_fragment_header(
                &mut full[ipv6::HEADER_LEN..],
                nh,
                ip.frag_offset_units(),
                ip.more_frags(),
                u32::from(ip.ident()),
            );
        } else {
            write_v6_header(
                &mut full,
                self.tc_4to6(ip.tos()),
                payload_len,
                nh,
                ip.ttl(),
                src6,
                dst6,
            );
        }
        let hdr = &full[..ipv6::HEADER_LEN + fh_len];
        if dst.len() < hdr.len() {
            return Err(BAD);
        }
        dst[..hdr.len()].copy_from_slice(hdr);
        let room = dst.len() - hdr.len();
        let n = data.len().min(room);
        let seg = &mut dst[hdr.len()..hdr.len() + n];
        seg.copy_from_slice(&data[..n]);
        if ip.frag_offset_units() == 0 {
            if is_icmp {
                if let Some(&t) = seg.first() {
                    if is_icmpv4_error(t) {
                        return Err(BAD);
                    }
                    let nt = match t {
                        icmp::v4::ECHO_REQUEST => icmp::v6::ECHO_REQUEST,
                        icmp::v4::ECHO_REPLY => icmp::v6::ECHO_REPLY,
                        _ => return Err(BAD),
                    };
                    seg[0] = nt;
                    if seg.len() >= 4 {
                        let len32 = u32::try_from(declared).unwrap_or(0);
                        let old = type_word(t, seg[1]);
                        let new = type_word(nt, seg[1])
                            + checksum::pseudo_v6(src6, dst6, proto::ICMPV6, len32);
                        let c = checksum::update(be16(seg, 2), old, new);
                        set_be16(seg, 2, c);
                    }
                }
            } else {
                fix_l4_checksum(
                    ip.protocol(),
                    seg,
                    checksum::sum_v4_pair(ip.src_addr(), ip.dst_addr()),
                    checksum::sum_v6_pair(src6, dst6),
                );
            }
        }
        Ok(hdr.len() + n)
    }

    /// An ICMPv4 error generated by the translator about `orig` (an IPv4
    /// packet), sent from `own_ipv4` back to its source. RFC 1812 §4.3.2.7:
    /// never about an ICMP error, a non-first fragment, a packet sent to a
    /// multicast or broadcast address, or to a source that is not unicast.
    fn icmpv4_error(
        &self,
        orig: &[u8],
        t: u8,
        code: u8,
        rest: u32,
        why: DropReason,
        out: &mut Output,
    ) -> Verdict {
        let Some(own) = self.config.own_ipv4 else {
            return Verdict::Drop(why);
        };
        let ip = Ipv4Packet::new_unchecked(orig);
        let src = ip.src_addr();
        let about_error = ip.protocol() == proto::ICMP
            && orig
                .get(ip.header_len())
                .is_some_and(|&t| is_icmpv4_error(t));
        let dst = ip.dst_addr();
        if about_error
            || dst.is_multicast()
            || dst.is_broadcast()
            || ip.frag_offset_units() != 0
            || src.is_unspecified()
            || src.is_broadcast()
            || src.is_multicast()
            || src.is_loopback()
        {
            return Verdict::Drop(why);
        }
        let body = orig
            .len()
            .min(ICMPV4_ERROR_MAX - ipv4::HEADER_LEN - icmp::HEADER_LEN);
        let total = ipv4::HEADER_LEN + icmp::HEADER_LEN + body;
        let b = out.push(total);
        write_v4_header(
            b,
            0,
            u16::try_from(total).unwrap_or(0),
            self.next_ident(),
            (false, false, 0),
            OWN_HOP_LIMIT,
            proto::ICMP,
            own,
            src,
        );
        let m = &mut b[ipv4::HEADER_LEN..];
        m[icmp::HEADER_LEN..].copy_from_slice(&orig[..body]);
        let mut p = IcmpPacket::new_unchecked(&mut *m);
        p.set_msg_type(t);
        p.set_code(code);
        p.set_rest(rest);
        let c = checksum::checksum(m);
        set_be16(m, 2, c);
        Verdict::IcmpError(why)
    }
}

// ---------------------------------------------------------------------------
// §5: IPv6 → IPv4
// ---------------------------------------------------------------------------

impl Siit {
    /// RFC 7915 §5.1, then RFC 7757 §4.2 hairpinning.
    pub(crate) fn six_to_four(&self, packet: &[u8], out: &mut Output) -> Verdict {
        let v = match self.try_six_to_four(packet, out) {
            Ok(v) => v,
            Err(r) => return Verdict::Drop(r),
        };
        if v != Verdict::SixToFour || !self.config.hairpinning {
            return v;
        }
        // Only a destination written in its pool6 form can need a hairpin: one
        // mapped by the EAM itself names an IPv4 node (an IPv6 node under an
        // EAM would have been reached by IPv6 routing without the
        // translator), and hairpinning it would loop.
        let Some(dst4) = out
            .get(0)
            .map(|v4| Ipv4Packet::new_unchecked(v4).dst_addr())
        else {
            return v;
        };
        if self.eam.is_empty() || !self.eam.contains_v4(dst4) {
            return v;
        }
        let mut dst6 = [0u8; 16];
        dst6.copy_from_slice(&packet[24..40]);
        if self.eam.v6_to_v4(Ipv6Addr::from(dst6)).is_some() {
            return v;
        }
        let mut hp = std::mem::take(&mut out.hairpin);
        hp.clear();
        hp.extend_from_slice(out.get(0).unwrap_or_default());
        // RFC 7757 §4.2: the IPv4 destination is an EAM address of the IPv6
        // side: translate straight back, the source by pool6, so that the
        // peer answers through the translator too.
        out.clear();
        let v = self.four_to_six(&hp, out, true);
        out.hairpin = hp;
        match v {
            Verdict::FourToSix => Verdict::Hairpin,
            other => other,
        }
    }

    fn try_six_to_four(&self, packet: &[u8], out: &mut Output) -> Result<Verdict> {
        let ip = Ipv6Packet::new_checked(packet).map_err(|_| DropReason::MalformedIpv6)?;
        let walk = ip.walk().map_err(|_| DropReason::MalformedIpv6)?;
        let whole = ip.packet();
        // Addresses first, as in §4.
        let upper = &whole[walk.upper_at..];
        let first = walk.fragment.is_none_or(|f| f.offset_units == 0);
        let is_icmp = walk.protocol == proto::ICMPV6;
        let icmp_error = is_icmp && first && upper.first().is_some_and(|&t| t < 128);

        let dst4 = self
            .map_v6(ip.dst_addr())
            .ok_or(DropReason::UntranslatableDestination)?;
        let src4 = match self.map_v6(ip.src_addr()) {
            Some(a) => a,
            // RFC 6791 / RFC 7915 §5.1: an ICMPv6 error from an IPv6 router
            // whose address has no IPv4 form gets a pool address.
            None if icmp_error => self
                .rfc6791_v4(ip.src_addr())
                .ok_or(DropReason::UntranslatableSource)?,
            None => return Err(DropReason::UntranslatableSource),
        };
        // §5.1: If a Routing header with a non-zero Segments Left field is
        // present, then the packet MUST NOT be translated, and an ICMPv6
        // 'parameter problem/erroneous header field encountered' (Type 4,
        // Code 0) error message, with the Pointer field indicating the first
        // byte of the Segments Left field, SHOULD be returned to the sender.
        if let Some(at) = walk.segments_left_at {
            let ptr = u32::try_from(at).unwrap_or(0);
            return Ok(self.icmpv6_error(
                whole,
                icmp::v6::PARAMETER_PROBLEM,
                0,
                ptr,
                DropReason::SegmentsLeft,
                out,
            ));
        }
        // §5.1 Hop Limit: decremented; Time Exceeded when it reaches zero.
        if ip.hop_limit() <= 1 {
            return Ok(self.icmpv6_error(
                whole,
                icmp::v6::TIME_EXCEEDED,
                0,
                0,
                DropReason::HopLimitExpired,
                out,
            ));
        }
        if walk.protocol == proto::ICMP {
            // ICMPv4 carried in IPv6 would reach the IPv4 host unchecked.
            return Err(DropReason::IcmpUntranslatable);
        }
        if is_icmp && walk.fragment.is_some() {
            return Err(DropReason::FragmentedIcmp);
        }
        let protocol = if is_icmp { proto::ICMP } else { walk.protocol };
        let cap = if icmp_error {
            upper.len().min(ICMPV4_ERROR_MAX - ipv4::HEADER_LEN)
        } else {
            upper.len()
        };
        if ipv4::HEADER_LEN + cap > usize::from(u16::MAX) {
            // Only with IPv6 links above 64 KiB: no IPv4 packet can hold it.
            return Err(DropReason::Unsupported);
        }
        let b = out.push(ipv4::HEADER_LEN + cap);
        let n = {
            let dst = &mut b[ipv4::HEADER_LEN..];
            if is_icmp {
                self.icmp_6to4(upper, ip.src_addr(), ip.dst_addr(), dst)?
            } else {
                dst.copy_from_slice(upper);
                if first {
                    if walk.protocol == proto::TCP && dst.len() < tcp::CHECKSUM_AT + 2
                        || walk.protocol == proto::UDP && dst.len() < udp::HEADER_LEN
                    {
                        return Err(DropReason::MalformedTransport);
                    }
                    fix_l4_checksum(
                        walk.protocol,
                        dst,
                        checksum::sum_v6_pair(ip.src_addr(), ip.dst_addr()),
                        checksum::sum_v4_pair(src4, dst4),
                    );
                }
                upper.len()
            }
        };
        let total = ipv4::HEADER_LEN + n;
        // §5.1 Identification and Flags: from the Fragment header when
        // there is one; otherwise DF=0 (with a fresh Identification) for
        // packets of 1260 bytes or less, DF=1 above.
        let (ident, flags) = match walk.fragment {
            Some(f) => {
                let [_, _, hi, lo] = f.ident.to_be_bytes();
                (
                    u16::from_be_bytes([hi, lo]),
                    (false, f.more, f.offset_units),
                )
            }
            None => (self.next_ident(), (total > DF_THRESHOLD, false, 0)),
        };
        write_v4_header(
            b,
            self.tos_6to4(ip.traffic_class()),
            u16_len(total)?,
            ident,
            flags,
            ip.hop_limit() - 1,
            protocol,
            src4,
            dst4,
        );
        out.shrink_last(total);
        Ok(Verdict::SixToFour)
    }

    /// RFC 7915 §5.2: ICMPv6 → ICMPv4 (an unfragmented message).
    fn icmp_6to4(
        &self,
        msg: &[u8],
        src6: Ipv6Addr,
        dst6: Ipv6Addr,
        dst: &mut [u8],
    ) -> Result<usize> {
        let m = IcmpPacket::new_checked(msg).map_err(|_| DropReason::MalformedIcmp)?;
        let len32 = u32::try_from(msg.len()).map_err(|_| DropReason::MalformedIcmp)?;
        let pseudo = checksum::pseudo_v6(src6, dst6, proto::ICMPV6, len32);
        match m.msg_type() {
            t @ (icmp::v6::ECHO_REQUEST | icmp::v6::ECHO_REPLY) => {
                // Echo Request and Echo Reply (Type 128 and 129): Adjust the
                // Type values to 8 and 0, respectively, and adjust the ICMP
                // checksum both to take the type change into account and to
                // exclude the ICMPv6 pseudo-header.
                let nt = if t == icmp::v6::ECHO_REQUEST {
                    icmp::v4::ECHO_REQUEST
                } else {
                    icmp::v4::ECHO_REPLY
                };
                let seg = dst.get_mut(..msg.len()).ok_or(DropReason::MalformedIcmp)?;
                seg.copy_from_slice(msg);
                let old = type_word(t, m.code()) + pseudo;
                let new = type_word(nt, m.code());
                let mut p = IcmpPacket::new_unchecked(seg);
                p.set_msg_type(nt);
                p.set_checksum(checksum::update(m.checksum(), old, new));
                Ok(msg.len())
            }
            t if t < 128 => {
                if fold(checksum::add(pseudo, msg)) != 0xffff {
                    return Err(DropReason::BadIcmpChecksum);
                }
                let (nt, code, rest) =
                    icmp_error_6to4(t, m.code(), m.rest()).ok_or(DropReason::IcmpUntranslatable)?;
                let rest = match rest {
                    Rest::Zero => 0,
                    Rest::Pointer(p) => p,
                    // The MTU field MUST be adjusted for the difference
                    // between the IPv4 and IPv6 header sizes, in the low 16
                    // bits of the word (RFC 1191 §4).
                    Rest::Mtu => {
                        let mtu = m.rest().saturating_sub(20).min(u32::from(u16::MAX));
                        mtu.max(68)
                    }
                };
                if dst.len() < icmp::HEADER_LEN {
                    return Err(DropReason::MalformedIcmp);
                }
                let (head, body) = dst.split_at_mut(icmp::HEADER_LEN);
                // ICMPv6 Destination Unreachable and Time Exceeded carry the
                // RFC 4884 length in byte 4, in 8-byte units.
                let (inner, ext) =
                    if matches!(t, icmp::v6::DEST_UNREACHABLE | icmp::v6::TIME_EXCEEDED) {
                        split_rfc4884(m.body(), msg[4], 8)
                    } else {
                        (m.body(), &[][..])
                    };
                let n = self.inner_6to4(inner, body)?;
                let mut total = icmp::HEADER_LEN + n;
                let mut rest = rest;
                // ICMPv4 carries it in byte 5, in 4-byte units; not in
                // Fragmentation Needed's translation from Packet Too Big,
                // which has no extensions in ICMPv6.
                if matches!(
                    nt,
                    icmp::v4::DEST_UNREACHABLE
                        | icmp::v4::TIME_EXCEEDED
                        | icmp::v4::PARAMETER_PROBLEM
                ) {
                    if let Some((len, attr)) = append_rfc4884(body, n, ext, 4) {
                        total = icmp::HEADER_LEN + len;
                        rest |= u32::from(attr) << 16;
                    }
                }
                let mut p = IcmpPacket::new_unchecked(head);
                p.set_msg_type(nt);
                p.set_code(code);
                p.set_checksum(0);
                p.set_rest(rest);
                let c = checksum::checksum(&dst[..total]);
                set_be16(dst, 2, c);
                Ok(total)
            }
            // Informational messages other than echo (MLD, ND, ...):
            // Single-hop messages [...] silently drop.
            _ => Err(DropReason::IcmpUntranslatable),
        }
    }

    /// RFC 7915 §5.3: the IPv6 packet inside an ICMPv6 error, possibly
    /// truncated, becomes an IPv4 packet in `dst` (cut to fit).
    fn inner_6to4(&self, inner: &[u8], dst: &mut [u8]) -> Result<usize> {
        const BAD: DropReason = DropReason::IcmpInnerUntranslatable;
        if inner.len() < ipv6::HEADER_LEN || inner[0] >> 4 != 6 {
            return Err(BAD);
        }
        let ip = Ipv6Packet::new_unchecked(inner);
        let walk = ip.walk().map_err(|_| BAD)?;
        let src4 = self.map_v6(ip.src_addr()).ok_or(BAD)?;
        let dst4 = self.map_v6(ip.dst_addr()).ok_or(BAD)?;
        let avail_end = inner
            .len()
            .min(ipv6::HEADER_LEN + usize::from(ip.payload_len()));
        let data = inner.get(walk.upper_at..avail_end).unwrap_or(&[]);
        let declared =
            (ipv6::HEADER_LEN + usize::from(ip.payload_len())).saturating_sub(walk.upper_at);
        let is_icmp = walk.protocol == proto::ICMPV6;
        let protocol = if is_icmp { proto::ICMP } else { walk.protocol };
        let (ident, flags) = match walk.fragment {
            Some(f) => {
                let [_, _, hi, lo] = f.ident.to_be_bytes();
                (
                    u16::from_be_bytes([hi, lo]),
                    (false, f.more, f.offset_units),
                )
            }
            None => (0, (ipv4::HEADER_LEN + declared > DF_THRESHOLD, false, 0)),
        };
        if dst.len() < ipv4::HEADER_LEN {
            return Err(BAD);
        }
        write_v4_header(
            dst,
            self.tos_6to4(ip.traffic_class()),
            u16::try_from(ipv4::HEADER_LEN + declared).unwrap_or(u16::MAX),
            ident,
            flags,
            ip.hop_limit(),
            protocol,
            src4,
            dst4,
        );
        let room = dst.len() - ipv4::HEADER_LEN;
        let n = data.len().min(room);
        let seg = &mut dst[ipv4::HEADER_LEN..ipv4::HEADER_LEN + n];
        seg.copy_from_slice(&data[..n]);
        if walk.fragment.is_none_or(|f| f.offset_units == 0) {
            if is_icmp {
                if let Some(&t) = seg.first() {
                    let nt = match t {
                        icmp::v6::ECHO_REQUEST => icmp::v4::ECHO_REQUEST,
                        icmp::v6::ECHO_REPLY => icmp::v4::ECHO_REPLY,
                        _ => return Err(BAD),
                    };
                    seg[0] = nt;
                    if seg.len() >= 4 {
                        let len32 = u32::try_from(declared).unwrap_or(0);
                        let old = type_word(t, seg[1])
                            + checksum::pseudo_v6(
                                ip.src_addr(),
                                ip.dst_addr(),
                                proto::ICMPV6,
                                len32,
                            );
                        let new = type_word(nt, seg[1]);
                        let c = checksum::update(be16(seg, 2), old, new);
                        set_be16(seg, 2, c);
                    }
                }
            } else {
                fix_l4_checksum(
                    walk.protocol,
                    seg,
                    checksum::sum_v6_pair(ip.src_addr(), ip.dst_addr()),
                    checksum::sum_v4_pair(src4, dst4),
                );
            }
        }
        Ok(ipv4::HEADER_LEN + n)
    }

    /// An ICMPv6 error generated by the translator about `orig` (an IPv6
    /// packet), from `own_ipv6` back to its source. RFC 4443 §2.4 (e): never
    /// about an ICMPv6 error, a non-first fragment, a packet sent to a
    /// multicast address, or to a multicast or unspecified source.
    fn icmpv6_error(
        &self,
        orig: &[u8],
        t: u8,
        code: u8,
        rest: u32,
        why: DropReason,
        out: &mut Output,
    ) -> Verdict {
        let Some(own) = self.own_v6() else {
            return Verdict::Drop(why);
        };
        let ip = Ipv6Packet::new_unchecked(orig);
        let src = ip.src_addr();
        let (about_error, non_first) = match ip.walk() {
            Ok(w) => (
                w.protocol == proto::ICMPV6
                    && w.fragment.is_none_or(|f| f.offset_units == 0)
                    && orig.get(w.upper_at).is_some_and(|&t| t < 128),
                w.fragment.is_some_and(|f| f.offset_units != 0),
            ),
            Err(_) => (false, false),
        };
        if about_error
            || non_first
            || src.is_unspecified()
            || src.is_multicast()
            || src.is_loopback()
        {
            return Verdict::Drop(why);
        }
        let body = orig
            .len()
            .min(ICMPV6_ERROR_MAX - ipv6::HEADER_LEN - icmp::HEADER_LEN);
        let plen = icmp::HEADER_LEN + body;
        let b = out.push(ipv6::HEADER_LEN + plen);
        write_v6_header(
            b,
            0,
            u16::try_from(plen).unwrap_or(0),
            proto::ICMPV6,
            OWN_HOP_LIMIT,
            own,
            src,
        );
        let m = &mut b[ipv6::HEADER_LEN..];
        m[icmp::HEADER_LEN..].copy_from_slice(&orig[..body]);
        let mut p = IcmpPacket::new_unchecked(&mut *m);
        p.set_msg_type(t);
        p.set_code(code);
        p.set_rest(rest);
        let plen32 = u32::try_from(plen).unwrap_or(0);
        let sum = checksum::add(checksum::pseudo_v6(own, src, proto::ICMPV6, plen32), m);
        set_be16(m, 2, !fold(sum));
        Verdict::IcmpError(why)
    }
}
