//! SIIT: stateless IP/ICMP translation (RFC 7915) with Explicit Address
//! Mappings (RFC 7757), as one sans-IO object.
//!
//! # Contract with the driver
//!
//! - Build a [`SiitConfig`] (plain struct, pub fields, `Default`), check it
//!   with [`SiitConfig::validate`] (the [`ConfigError`] names the field),
//!   then [`Siit::new`]. A `Siit` is immutable and `Sync`: translate from any
//!   number of threads through `&self` (the only shared state is an atomic
//!   counter for IPv4 Identification values).
//! - For every packet read from the TUN device (raw IPv4 or IPv6, no packet
//!   information header), call [`Siit::translate`]`(packet, &mut out)`. The
//!   IP version is taken from the first nibble. No clock is needed: SIIT is
//!   stateless. `out` is an [`Output`] owned by the caller and reused from
//!   packet to packet: `translate` clears it and writes zero or more packets
//!   into it (several when an IPv4 packet with DF=0 is fragmented to
//!   `lowest_ipv6_mtu`). Nothing is allocated per packet once `out` exists
//!   ([`Output::new`] reserves room for the largest case; `tests/no_alloc.rs`
//!   checks it).
//! - Write every packet of [`Output::packets`] to the TUN device, whatever the
//!   verdict ([`Verdict::Drop`] leaves `out` empty). Packets may be IPv4 or
//!   IPv6 whatever the input was: an ICMP error goes back in the input's
//!   family, a hairpinned packet comes out as IPv6.
//! - The returned [`Verdict`] says what happened: translated 4→6
//!   ([`Verdict::FourToSix`]), 6→4 ([`Verdict::SixToFour`]), hairpinned 6→4→6
//!   (RFC 7757 §4.2, [`Verdict::Hairpin`]), an ICMP error generated back to
//!   the sender instead of a translation ([`Verdict::IcmpError`]: Time
//!   Exceeded, Parameter Problem for a Routing header with Segments Left,
//!   Source Route Failed; the `DropReason` inside says why the original was
//!   not forwarded), or dropped ([`Verdict::Drop`]). Translated ICMP errors
//!   (Packet Too Big ↔ Fragmentation Needed and the rest of the §4.2/§5.2
//!   tables) are plain `FourToSix`/`SixToFour` translations.
//! - [`Verdict::as_str`] is the `direction` label of
//!   `sixgate_siit_packets_total` ([`Verdict::LABELS`] lists them);
//!   [`DropReason::as_str`] is the `reason` label of the drop counter and
//!   [`DropReason::ALL`] lists every reason, so the driver can keep one
//!   counter per reason.
//!
//! The translation itself (RFC 7915 §4 and §5) lives in `rfc7915.rs`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::eam::{EamEntry, EamTable, Ipv4Prefix, Ipv6Prefix};
use crate::prefix64::Prefix64;

/// RFC 1191 §7, table 7-1: the MTU plateaus, used when a Packet Too Big or
/// Fragmentation Needed carries an MTU of zero (RFC 7915 §4.2, §5.2).
pub const RFC1191_PLATEAUS: [u16; 11] = [
    65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68,
];

/// RFC 8200 §5: the minimum IPv6 link MTU.
pub const IPV6_MIN_MTU: u16 = 1280;

/// The SIIT configuration. Plain data: the driver maps its TOML section on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiitConfig {
    /// RFC 6052 prefix for addresses not in the EAM table (RFC 7915 §1.3).
    /// `None`: only EAM entries translate.
    pub pool6: Option<Prefix64>,
    /// RFC 7757 explicit address mappings, consulted before `pool6`.
    pub eam: Vec<EamEntry>,
    /// RFC 7757 §4.2 hairpinning: an IPv6 packet whose destination is the
    /// pool6 form of an EAM-mapped IPv4 address (one IPv6 host reaching
    /// another through its IPv4 address) is translated back to IPv6 at once,
    /// its source mapped with pool6 (not the EAM) so that the reply comes back
    /// through the translator too; the inner packet of a hairpinned ICMP
    /// error gets the mirror treatment. A destination mapped by the EAM
    /// itself is never hairpinned. Default `true`.
    pub hairpinning: bool,
    /// RFC 6791: IPv4 addresses used as the source of ICMPv6 errors whose
    /// IPv6 source cannot be translated (a router on the IPv6 side with a
    /// plain address). One is picked per packet by a hash of the packet. When
    /// empty, `own_ipv4` is used; when that is unset too, such errors drop.
    pub rfc6791_v4: Vec<Ipv4Prefix>,
    /// The same for ICMPv4 errors whose IPv4 source has no IPv6 mapping
    /// (Jool's `pool6791v6`). When `None`, `own_ipv6` is used.
    pub rfc6791_v6: Option<Ipv6Prefix>,
    /// RFC 7915 §4 "lowest-ipv6-mtu": IPv4 packets with DF=0 that would
    /// exceed it once translated are fragmented to it. Default 1280.
    pub lowest_ipv6_mtu: u16,
    /// RFC 7915 §4.1: set the IPv6 Traffic Class to zero instead of copying
    /// the IPv4 TOS. Default `false` (copy).
    pub reset_traffic_class: bool,
    /// RFC 7915 §5.1: set the IPv4 TOS to `new_tos` instead of copying the
    /// IPv6 Traffic Class. Default `false` (copy).
    pub reset_tos: bool,
    /// The TOS written when `reset_tos` is set. Default 0.
    pub new_tos: u8,
    /// Source of the ICMPv4 errors the translator generates itself (Time
    /// Exceeded when a TTL hits zero, Source Route Failed).
    pub own_ipv4: Option<Ipv4Addr>,
    /// Source of the ICMPv6 errors the translator generates itself (Time
    /// Exceeded when a hop limit hits zero, Parameter Problem). When `None`,
    /// `own_ipv4` embedded in `pool6` is used if both exist.
    pub own_ipv6: Option<Ipv6Addr>,
    /// MTU plateaus (RFC 1191 §7) for PTB/Frag Needed with a zero MTU field.
    pub mtu_plateaus: Vec<u16>,
}

impl Default for SiitConfig {
    fn default() -> Self {
        Self {
            pool6: None,
            eam: Vec::new(),
            hairpinning: true,
            rfc6791_v4: Vec::new(),
            rfc6791_v6: None,
            lowest_ipv6_mtu: IPV6_MIN_MTU,
            reset_traffic_class: false,
            reset_tos: false,
            new_tos: 0,
            own_ipv4: None,
            own_ipv6: None,
            mtu_plateaus: RFC1191_PLATEAUS.to_vec(),
        }
    }
}

/// A configuration value that cannot work; `field` is the `SiitConfig` field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

impl SiitConfig {
    /// Checks what the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.pool6.is_none() && self.eam.is_empty() {
            return Err(ConfigError::new(
                "pool6",
                "neither pool6 nor any eam entry is set: nothing could be translated",
            ));
        }
        if self.lowest_ipv6_mtu < IPV6_MIN_MTU {
            return Err(ConfigError::new(
                "lowest_ipv6_mtu",
                format!(
                    "{} is below the IPv6 minimum MTU of 1280 (RFC 8200 §5)",
                    self.lowest_ipv6_mtu
                ),
            ));
        }
        for (i, a) in self.eam.iter().enumerate() {
            for b in &self.eam[..i] {
                if a.v4() == b.v4() {
                    return Err(ConfigError::new(
                        "eam",
                        format!("IPv4 prefix {} appears in two entries", a.v4()),
                    ));
                }
                if a.v6() == b.v6() {
                    return Err(ConfigError::new(
                        "eam",
                        format!("IPv6 prefix {} appears in two entries", a.v6()),
                    ));
                }
            }
        }
        if self.mtu_plateaus.is_empty() {
            return Err(ConfigError::new("mtu_plateaus", "must not be empty"));
        }
        if let Some(&bad) = self.mtu_plateaus.iter().find(|&&m| m < 68) {
            return Err(ConfigError::new(
                "mtu_plateaus",
                format!("{bad} is below the IPv4 minimum MTU of 68 (RFC 791)"),
            ));
        }
        Ok(())
    }
}

/// Why a packet was not translated. `as_str()` is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The first nibble is neither 4 nor 6 (or the packet is empty).
    UnknownVersion,
    /// IPv4 header too short, bad IHL or total length.
    MalformedIpv4,
    /// IPv4 header checksum wrong.
    BadIpv4Checksum,
    /// IPv6 header or extension header chain truncated or inconsistent.
    MalformedIpv6,
    /// TCP/UDP header truncated in a first fragment.
    MalformedTransport,
    /// ICMP header truncated or an ICMP error without a usable inner packet.
    MalformedIcmp,
    /// An ICMP error whose checksum is wrong (it would be rebuilt with a
    /// valid one, so it is checked first).
    BadIcmpChecksum,
    /// The source address matches neither the EAM table nor pool6.
    UntranslatableSource,
    /// The destination address matches neither the EAM table nor pool6.
    UntranslatableDestination,
    /// IPv4 TTL would reach zero (RFC 7915 §4.1 "Time to Live").
    TtlExpired,
    /// IPv6 hop limit would reach zero (RFC 7915 §5.1 "Hop Limit").
    HopLimitExpired,
    /// An ICMP type or code the §4.2/§5.2 tables say to drop silently.
    IcmpUntranslatable,
    /// The inner packet of an ICMP error cannot be translated.
    IcmpInnerUntranslatable,
    /// A fragmented ICMP message: its checksum cannot be adjusted.
    FragmentedIcmp,
    /// A fragmented IPv4 UDP packet with a zero checksum (RFC 7915 §4.5).
    UdpZeroChecksumFragment,
    /// IPv4 source route option not yet expired (RFC 7915 §4.1).
    SourceRoute,
    /// IPv6 Routing header with Segments Left non-zero (RFC 7915 §5.1).
    SegmentsLeft,
    /// What this translator does not implement.
    Unsupported,
}

impl DropReason {
    pub const ALL: &'static [DropReason] = &[
        DropReason::UnknownVersion,
        DropReason::MalformedIpv4,
        DropReason::BadIpv4Checksum,
        DropReason::MalformedIpv6,
        DropReason::MalformedTransport,
        DropReason::MalformedIcmp,
        DropReason::BadIcmpChecksum,
        DropReason::UntranslatableSource,
        DropReason::UntranslatableDestination,
        DropReason::TtlExpired,
        DropReason::HopLimitExpired,
        DropReason::IcmpUntranslatable,
        DropReason::IcmpInnerUntranslatable,
        DropReason::FragmentedIcmp,
        DropReason::UdpZeroChecksumFragment,
        DropReason::SourceRoute,
        DropReason::SegmentsLeft,
        DropReason::Unsupported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownVersion => "unknown_version",
            DropReason::MalformedIpv4 => "malformed_ipv4",
            DropReason::BadIpv4Checksum => "bad_ipv4_checksum",
            DropReason::MalformedIpv6 => "malformed_ipv6",
            DropReason::MalformedTransport => "malformed_transport",
            DropReason::MalformedIcmp => "malformed_icmp",
            DropReason::BadIcmpChecksum => "bad_icmp_checksum",
            DropReason::UntranslatableSource => "untranslatable_source",
            DropReason::UntranslatableDestination => "untranslatable_destination",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::HopLimitExpired => "hop_limit_expired",
            DropReason::IcmpUntranslatable => "icmp_untranslatable",
            DropReason::IcmpInnerUntranslatable => "icmp_inner_untranslatable",
            DropReason::FragmentedIcmp => "fragmented_icmp",
            DropReason::UdpZeroChecksumFragment => "udp_zero_checksum_fragment",
            DropReason::SourceRoute => "source_route",
            DropReason::SegmentsLeft => "segments_left",
            DropReason::Unsupported => "unsupported",
        }
    }
}

/// What `translate` did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// An IPv4 packet became one or more IPv6 packets in `out`.
    FourToSix,
    /// An IPv6 packet became an IPv4 packet in `out`.
    SixToFour,
    /// An IPv6 packet to an EAM-mapped IPv4 address went 6→4→6 (RFC 7757
    /// §4.2); `out` holds the IPv6 result.
    Hairpin,
    /// The packet was not forwarded for the given reason, and `out` holds the
    /// ICMP error sent back to its source (Time Exceeded, Parameter Problem,
    /// Source Route Failed).
    IcmpError(DropReason),
    /// The packet was dropped; `out` is empty.
    Drop(DropReason),
}

impl Verdict {
    /// Every value `as_str` can return.
    pub const LABELS: &'static [&'static str] = &["4to6", "6to4", "hairpin", "icmp_error", "drop"];

    /// The `direction` label of the packet counter.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::FourToSix => "4to6",
            Verdict::SixToFour => "6to4",
            Verdict::Hairpin => "hairpin",
            Verdict::IcmpError(_) => "icmp_error",
            Verdict::Drop(_) => "drop",
        }
    }

    /// The reason when the packet was not forwarded.
    pub fn drop_reason(self) -> Option<DropReason> {
        match self {
            Verdict::IcmpError(r) | Verdict::Drop(r) => Some(r),
            _ => None,
        }
    }
}

/// The caller-owned output buffer: zero or more packets, reused across calls.
#[derive(Debug, Clone)]
pub struct Output {
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// Room to build a payload before fragmenting it.
    pub(crate) scratch: Vec<u8>,
    /// Room for the intermediate IPv4 packet of a hairpin.
    pub(crate) hairpin: Vec<u8>,
}

impl Default for Output {
    fn default() -> Self {
        Self::new()
    }
}

impl Output {
    /// Room for the largest case: a 65535-byte IPv4 packet fragmented to 1280.
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(96 * 1024),
            ends: Vec::with_capacity(64),
            scratch: Vec::with_capacity(64 * 1024),
            hairpin: Vec::with_capacity(64 * 1024),
        }
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// Number of packets.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`-th packet.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.buf.get(start..end)
    }

    /// The packets, in the order they should be written.
    pub fn packets(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.ends.len()).filter_map(move |i| self.get(i))
    }

    /// Appends a zeroed packet of `len` bytes and returns it for writing.
    pub(crate) fn push(&mut self, len: usize) -> &mut [u8] {
        let start = self.buf.len();
        self.buf.resize(start + len, 0);
        self.ends.push(start + len);
        &mut self.buf[start..]
    }

    /// Shortens the last packet to `len` bytes (no-op if it is shorter).
    pub(crate) fn shrink_last(&mut self, len: usize) {
        let start = self.ends.len().checked_sub(2).map_or(0, |i| self.ends[i]);
        if let Some(end) = self.ends.last_mut() {
            if start + len < *end {
                *end = start + len;
                self.buf.truncate(start + len);
            }
        }
    }
}

/// The translator. See the module documentation for the contract.
#[derive(Debug)]
pub struct Siit {
    pub(crate) config: SiitConfig,
    pub(crate) eam: EamTable,
    /// RFC 7915 §5.1: Identification for 6→4 packets without a Fragment
    /// header ("set according to a Fragment Identification algorithm").
    pub(crate) next_id: AtomicU32,
}

impl Siit {
    /// Takes a configuration that passed [`SiitConfig::validate`]; values it
    /// would refuse are clamped (MTU to 1280, plateaus to the RFC 1191 list).
    pub fn new(mut config: SiitConfig) -> Self {
        config.lowest_ipv6_mtu = config.lowest_ipv6_mtu.max(IPV6_MIN_MTU);
        config.mtu_plateaus.retain(|&m| m >= 68);
        if config.mtu_plateaus.is_empty() {
            config.mtu_plateaus = RFC1191_PLATEAUS.to_vec();
        }
        config.mtu_plateaus.sort_unstable_by(|a, b| b.cmp(a));
        let eam = EamTable::new(config.eam.clone());
        Self {
            config,
            eam,
            next_id: AtomicU32::new(0),
        }
    }

    pub fn config(&self) -> &SiitConfig {
        &self.config
    }

    /// Translates one packet read from the TUN device; see the module docs.
    pub fn translate(&self, packet: &[u8], out: &mut Output) -> Verdict {
        out.clear();
        let verdict = match packet.first().map(|b| b >> 4) {
            Some(4) => self.four_to_six(packet, out, false),
            Some(6) => self.six_to_four(packet, out),
            _ => Verdict::Drop(DropReason::UnknownVersion),
        };
        if matches!(verdict, Verdict::Drop(_)) {
            out.clear();
        }
        verdict
    }

    /// The next Identification for a 6→4 packet without a Fragment header.
    pub(crate) fn next_ident(&self) -> u16 {
        let [_, _, hi, lo] = self.next_id.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        u16::from_be_bytes([hi, lo])
    }
}
