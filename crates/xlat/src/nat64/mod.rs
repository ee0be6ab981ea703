//! Stateful NAT64 (RFC 6146): pool4, the BIB and session tables, their
//! timers and the TCP state machine, as a sans-IO core.
//!
//! [`State`] is what a NAT64 remembers. The data path asks it, for each
//! packet, which IPv4 transport address an IPv6 flow goes out with
//! ([`State::outbound`]) or which IPv6 host an IPv4 packet goes to
//! ([`State::inbound`]); it answers with a [`Mapping`] or a [`Refusal`] that
//! says which ICMP error (if any) RFC 6146 asks for. Time goes in as
//! milliseconds of the caller's monotonic clock; expiry runs from
//! [`State::poll_timeout`] / [`State::handle_timeout`] (the quinn-proto
//! pattern), never by scanning the tables per packet.
//!
//! RFC 6146 behaviours implemented here: endpoint-independent mapping
//! (§3.5.1, RFC 4787 REQ-1), endpoint-independent filtering by default and
//! address-dependent filtering as an option (§3.5.1.2 / §3.5.2.2), "paired"
//! IPv4 address pooling, RFC 6056 random port selection that keeps the
//! source port's range class and parity (§3.5.1.1), static BIB entries,
//! hairpinning support ([`State::is_pool4_addr`]), the timers of §3.5 and
//! the TCP states of §3.5.2.2 with the probe of an idle ESTABLISHED session
//! ([`State::take_probes`], [`Translator::tcp_probe`]; see [`tcp`] for the
//! two documented departures).

mod fragments;
pub mod pool4;
pub mod random;
mod table;
pub mod tcp;
pub mod translate;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use hashbrown::HashTable;

pub use fragments::{
    FragmentKey, FRAGMENT_MIN_MS, MAX_HELD, MAX_HELD_BYTES, MAX_HELD_PER_DATAGRAM,
};
pub use pool4::{Pool4, Pool4Entry, Pool4Error, PortRange};
pub use random::{Random, SplitMix64};
pub use table::{shard_of_port, ENTRY_BYTES};
pub use tcp::{Side, TcpFlags, TcpState};
pub use translate::{Drop, Packets, Sharding, Translator, Verdict, TCP_PROBE_LEN};

use table::{Table, Timer, TIMERS};

/// The transport protocols a NAT64 keeps state for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    /// ICMP queries (echo), keyed by their identifier.
    Icmp,
}

impl Proto {
    pub const ALL: [Proto; 3] = [Proto::Tcp, Proto::Udp, Proto::Icmp];

    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Proto::Tcp => 0,
            Proto::Udp => 1,
            Proto::Icmp => 2,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "icmp" => Ok(Proto::Icmp),
            _ => Err(format!("{s:?} is not tcp, udp or icmp")),
        }
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Proto {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An IPv6 transport address: address and port (or ICMP identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Taddr6 {
    pub addr: Ipv6Addr,
    pub port: u16,
}

/// An IPv4 transport address: address and port (or ICMP identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Taddr4 {
    pub addr: Ipv4Addr,
    pub port: u16,
}

impl Taddr6 {
    pub fn new(addr: Ipv6Addr, port: u16) -> Self {
        Self { addr, port }
    }
}

impl Taddr4 {
    pub fn new(addr: Ipv4Addr, port: u16) -> Self {
        Self { addr, port }
    }
}

impl fmt::Display for Taddr6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]:{}", self.addr, self.port)
    }
}

impl fmt::Display for Taddr4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.addr, self.port)
    }
}

/// Session lifetimes (RFC 6146 §4 defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// UDP_DEFAULT: 5 min (RFC 6146 §3.5.1: never below UDP_MIN, 2 min).
    pub udp: Duration,
    /// ICMP_DEFAULT: 60 s.
    pub icmp: Duration,
    /// TCP_EST: 2 h 4 min (the RFC's minimum).
    pub tcp_est: Duration,
    /// TCP_TRANS: 4 min (the RFC's minimum).
    pub tcp_trans: Duration,
    /// TCP_INCOMING_SYN: 6 s.
    pub tcp_incoming_syn: Duration,
}

/// RFC 6146 §3.5.1: UDP_MIN.
pub const UDP_MIN: Duration = Duration::from_secs(120);
/// RFC 6146 §3.5.2.2: TCP_EST is at least 2 hours 4 minutes.
pub const TCP_EST_MIN: Duration = Duration::from_secs(2 * 3600 + 4 * 60);
/// RFC 6146 §3.5.2.2: TCP_TRANS is at least 4 minutes.
pub const TCP_TRANS_MIN: Duration = Duration::from_secs(240);
/// RFC 6146 §3.5.2.2: TCP_INCOMING_SYN is at least 6 seconds.
pub const TCP_INCOMING_SYN_MIN: Duration = Duration::from_secs(6);

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            udp: Duration::from_secs(300),
            icmp: Duration::from_secs(60),
            tcp_est: TCP_EST_MIN,
            tcp_trans: TCP_TRANS_MIN,
            tcp_incoming_syn: TCP_INCOMING_SYN_MIN,
        }
    }
}

impl Timeouts {
    /// The timeouts that are below what RFC 6146 allows, as (key, minimum).
    pub fn below_rfc_minimums(&self) -> Vec<(&'static str, Duration)> {
        let mut out = Vec::new();
        for (key, value, min) in [
            ("udp", self.udp, UDP_MIN),
            ("tcp_est", self.tcp_est, TCP_EST_MIN),
            ("tcp_trans", self.tcp_trans, TCP_TRANS_MIN),
            (
                "tcp_incoming_syn",
                self.tcp_incoming_syn,
                TCP_INCOMING_SYN_MIN,
            ),
        ] {
            if value < min {
                out.push((key, min));
            }
        }
        out
    }

    fn millis(&self) -> [u64; TIMERS] {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut out = [0; TIMERS];
        out[Timer::Udp as usize] = ms(self.udp);
        out[Timer::Icmp as usize] = ms(self.icmp);
        out[Timer::TcpEst as usize] = ms(self.tcp_est);
        out[Timer::TcpTrans as usize] = ms(self.tcp_trans);
        out[Timer::TcpIncomingSyn as usize] = ms(self.tcp_incoming_syn);
        out
    }
}

/// What happens to a packet refused for a limit or an exhausted pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitAction {
    /// Answer with the ICMP error RFC 6146 asks for.
    #[default]
    Icmp,
    /// Drop silently.
    Drop,
}

/// Table limits. Hitting one refuses the new flow only; existing sessions
/// keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sessions of all protocols together.
    pub max_sessions: u32,
    /// Sessions of one IPv6 source address (all protocols together).
    pub max_sessions_per_source: u32,
    pub on_limit: LimitAction,
    /// ICMP errors the NAT64 makes itself (refusals, hop limit, TTL), per
    /// second, with a burst of one second's worth; the others are not sent
    /// and are counted.
    pub icmp_errors_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: 1 << 20,
            max_sessions_per_source: 16_384,
            on_limit: LimitAction::Icmp,
            icmp_errors_per_second: 1000,
        }
    }
}

/// Which IPv4 packets may open a session on an existing BIB entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filtering {
    /// Any IPv4 host may reach a BIB entry (RFC 4787 REQ-8 "endpoint
    /// independent"; the RFC 6146 default).
    #[default]
    EndpointIndependent,
    /// Only IPv4 hosts the IPv6 host already has a session with.
    AddressDependent,
}

/// A static BIB entry: an IPv6 server reachable from IPv4 at a pool4
/// transport address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticBib {
    pub proto: Proto,
    pub v6: Taddr6,
    pub v4: Taddr4,
}

/// Everything the state needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub pool4: Pool4,
    pub timeouts: Timeouts,
    pub limits: Limits,
    pub filtering: Filtering,
    pub static_bib: Vec<StaticBib>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("static BIB entry {0} {1}: {2} is not a pool4 address for {0}")]
    StaticNotInPool(Proto, Taddr6, Ipv4Addr),
    #[error("static BIB entries conflict on {0} {1}")]
    StaticConflict(Proto, String),
}

/// The ICMP error a refused packet should be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// ICMPv6 Destination Unreachable, code 3 (address unreachable), to the
    /// IPv6 source: RFC 6146 §3.5.1.1 when no IPv4 transport address or
    /// session can be had.
    V6AddressUnreachable,
    /// ICMP Destination Unreachable, code 3 (port unreachable), to the IPv4
    /// source: a UDP packet toward a pool4 port nobody holds.
    V4PortUnreachable,
    /// ICMP Destination Unreachable, code 13 (communication administratively
    /// prohibited), to the IPv4 source: filtered, or over a limit.
    V4AdminProhibited,
}

/// Why the state refused a packet. `as_str` is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refuse {
    /// No free IPv4 transport address for a new BIB entry.
    PoolExhausted,
    /// `max_sessions` reached.
    SessionLimit,
    /// `max_sessions_per_source` reached for this IPv6 source.
    SourceLimit,
    /// An IPv4 packet toward a pool4 transport address no BIB entry holds.
    NoBinding,
    /// An IPv4 packet refused by address-dependent filtering.
    Filtered,
    /// A TCP segment other than a SYN for which no session exists.
    TcpNoSession,
}

impl Refuse {
    pub const ALL: [Refuse; 6] = [
        Refuse::PoolExhausted,
        Refuse::SessionLimit,
        Refuse::SourceLimit,
        Refuse::NoBinding,
        Refuse::Filtered,
        Refuse::TcpNoSession,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refuse::PoolExhausted => "pool4_exhausted",
            Refuse::SessionLimit => "session_limit",
            Refuse::SourceLimit => "source_session_limit",
            Refuse::NoBinding => "no_bib_entry",
            Refuse::Filtered => "filtered",
            Refuse::TcpNoSession => "tcp_no_session",
        }
    }

    fn index(self) -> usize {
        match self {
            Refuse::PoolExhausted => 0,
            Refuse::SessionLimit => 1,
            Refuse::SourceLimit => 2,
            Refuse::NoBinding => 3,
            Refuse::Filtered => 4,
            Refuse::TcpNoSession => 5,
        }
    }
}

/// A refused packet: why, and which ICMP error to answer with (`None`:
/// drop silently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Refuse,
    pub icmp: Option<IcmpError>,
}

/// The four transport addresses of a session (RFC 6146 §3.5 names):
/// (X', x) on the IPv6 side, (T, t) its pool4 mapping, (Z, z) the IPv4 peer
/// (whose IPv6 representation Y' is Z under the prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// (X', x)
    pub v6: Taddr6,
    /// (T, t)
    pub v4: Taddr4,
    /// (Z, z). For ICMP, z is the identifier t.
    pub remote: Taddr4,
}

/// A probe to send for an ESTABLISHED TCP session whose TCP_EST ran out
/// (RFC 6146 §3.5.2.2): a segment of the connection toward its IPv6
/// endpoint `v6`, from the IPv4 peer `remote` as the IPv6 side sees it.
/// [`Translator::tcp_probe`] builds the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpProbe {
    pub v6: Taddr6,
    pub remote: Taddr4,
}

/// At most this many probes wait in one [`State`] for
/// [`State::take_probes`]; sessions that expire past it move to TRANS
/// without a probe, and are counted in [`Stats::tcp_probes_skipped`].
pub const MAX_PENDING_PROBES: usize = 4096;

/// Counts for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Per protocol, in [`Proto::ALL`] order.
    pub sessions: [u32; 3],
    pub bib_entries: [u32; 3],
    pub ports_used: [u64; 3],
    pub ports_total: [u64; 3],
    pub sessions_created: [u64; 3],
    pub sessions_expired: [u64; 3],
    /// In [`Refuse::ALL`] order.
    pub refused: [u64; 6],
    /// ICMP errors not sent for `icmp_errors_per_second`.
    pub icmp_errors_suppressed: u64,
    /// Later fragments held now, waiting for their first fragment.
    pub fragments_held: u64,
    /// Their bytes.
    pub fragment_bytes_held: u64,
    /// Held fragments dropped because their first fragment did not come
    /// within FRAGMENT_MIN (`fragment_timeout`).
    pub fragments_timed_out: u64,
    /// Held fragments that did not translate once their first fragment came
    /// (`fragment_release_failed`).
    pub fragments_release_failed: u64,
    /// Sessions deleted because a reconfiguration took their pool4 address
    /// or static BIB entry away ([`State::purge_at_most`]).
    pub sessions_purged: [u64; 3],
    /// ESTABLISHED TCP sessions that reached TCP_EST and got a probe queued
    /// ([`State::take_probes`]).
    pub tcp_probes_queued: u64,
    /// Those that moved to TRANS without one, because
    /// [`MAX_PENDING_PROBES`] were waiting already.
    pub tcp_probes_skipped: u64,
}

/// What a reconfiguration of one shard did ([`State::reconfigure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reconfigured {
    /// BIB entries deleted at once (a static entry was removed, or a new
    /// static entry took their place). Those that lost their pool4 port are
    /// not counted here: they are swept by [`State::purge_at_most`].
    pub bib_doomed: u32,
    /// Sessions those entries had: [`State::purge_at_most`] deletes them.
    pub sessions_doomed: u32,
    pub static_added: u32,
    pub static_removed: u32,
    /// pool4 lost ports that BIB entries held: [`State::purge_at_most`]
    /// sweeps them (they are out of use already).
    pub pool4_sweep: bool,
}

/// One session, for display (`sixgate nat64 sessions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub proto: Proto,
    pub v6: Taddr6,
    pub v4: Taddr4,
    pub remote: Taddr4,
    pub tcp_state: Option<TcpState>,
    /// Milliseconds until the session expires (or changes state).
    pub expires_in_ms: u64,
}

/// One BIB entry, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BibInfo {
    pub proto: Proto,
    pub v6: Taddr6,
    pub v4: Taddr4,
    pub is_static: bool,
    pub sessions: u32,
}

/// The NAT64 state: pool4, BIB, sessions, timers, limits.
///
/// One `State` is one shard: a driver with several workers gives each worker
/// (or each lock) its own `State` over its own share of pool4.
#[derive(Debug)]
pub struct State<R: Random = SplitMix64> {
    tables: [Table; 3],
    pool4: Pool4,
    timeouts_ms: [u64; TIMERS],
    limits: Limits,
    /// Sessions per IPv6 source address.
    per_source: HashTable<([u8; 16], u32)>,
    seed: u64,
    total: u32,
    last_now: u64,
    rng: R,
    created: [u64; 3],
    expired: [u64; 3],
    refused: [u64; 6],
    /// Token bucket of ICMP errors, in thousandths of an error.
    icmp_tokens: u64,
    icmp_refilled_ms: u64,
    icmp_suppressed: u64,
    fragments: fragments::Fragments,
    purged: [u64; 3],
    /// Probes waiting for [`State::take_probes`], at most
    /// [`MAX_PENDING_PROBES`].
    probes: Vec<TcpProbe>,
    probes_queued: u64,
    probes_skipped: u64,
}

/// Whole seconds of `now_ms`, rounded up (see `Session::stamp`).
fn stamp(now_ms: u64) -> u32 {
    u32::try_from(now_ms.div_ceil(1000)).unwrap_or(u32::MAX)
}

impl<R: Random> State<R> {
    /// A state with no sessions; `rng` seeds the table hashes and chooses
    /// ports.
    pub fn new(config: Config, rng: R) -> Result<Self, StateError> {
        Self::new_shard(config, rng, 0, 1)
    }

    /// Shard `shard` of `shards`: it hands out only the pool4 ports
    /// [`shard_of_port`] gives it, and holds only the static BIB entries on
    /// those ports (a driver routes packets with [`Sharding`]). The limits
    /// apply to this shard alone.
    pub fn new_shard(
        config: Config,
        mut rng: R,
        shard: usize,
        shards: usize,
    ) -> Result<Self, StateError> {
        let shards = shards.max(1);
        let shard = shard.min(shards - 1);
        let seed = rng.next_u64();
        let adf = config.filtering == Filtering::AddressDependent;
        let tables = Proto::ALL.map(|p| {
            Table::new(
                p,
                config.pool4.proto(p),
                seed.rotate_left(u32::try_from(p.index()).unwrap_or(0) * 8),
                adf,
                (shard, shards),
            )
        });
        let mut state = Self {
            tables,
            pool4: config.pool4,
            timeouts_ms: config.timeouts.millis(),
            limits: config.limits,
            per_source: HashTable::new(),
            seed,
            total: 0,
            last_now: 0,
            rng,
            created: [0; 3],
            expired: [0; 3],
            refused: [0; 6],
            icmp_tokens: u64::from(config.limits.icmp_errors_per_second) * 1000,
            icmp_refilled_ms: 0,
            icmp_suppressed: 0,
            fragments: fragments::Fragments::new(seed ^ 0xf7a9),
            purged: [0; 3],
            probes: Vec::new(),
            probes_queued: 0,
            probes_skipped: 0,
        };
        for s in &config.static_bib {
            let table = &mut state.tables[s.proto.index()];
            let v4 = s.v4.addr.octets();
            if !table.has_address(v4) {
                return Err(StateError::StaticNotInPool(s.proto, s.v6, s.v4.addr));
            }
            if table.find_bib6(&s.v6.addr.octets(), s.v6.port).is_some() {
                return Err(StateError::StaticConflict(s.proto, s.v6.to_string()));
            }
            if table.find_bib4(v4, s.v4.port).is_some() {
                return Err(StateError::StaticConflict(s.proto, s.v4.to_string()));
            }
            if shard_of_port(s.v4.port, shards) != shard {
                continue;
            }
            table.insert_bib(s.v6.addr.octets(), s.v6.port, v4, s.v4.port, true);
        }
        Ok(state)
    }

    /// Pre-sizes the tables of `proto` for `n` sessions (benchmarks, and
    /// drivers that would rather not grow tables under load).
    pub fn reserve(&mut self, proto: Proto, n: usize) {
        self.tables[proto.index()].reserve(n);
    }

    /// Changes the timeouts; running sessions follow the new values at once
    /// (each expires at its last refresh plus the new timeout).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts_ms = timeouts.millis();
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Applies a new configuration to the running state (SIGHUP), as
    /// Jool's `pool4 add/remove` and `bib add/remove` do:
    /// - static BIB entries gone from `new` are deleted (with their
    ///   sessions);
    /// - pool4 becomes `new.pool4`: added addresses and ranges are usable at
    ///   once; the BIB entries on addresses or ports that left are deleted
    ///   and their ports stop being handed out;
    /// - static BIB entries new in `new` are added (a dynamic entry in their
    ///   way is deleted; one with the same mapping becomes static);
    /// - filtering, timeouts and limits are replaced.
    ///
    /// `old_static` is the static BIB list the state runs with. Deleted
    /// entries leave both indices at once (no packet finds them); their
    /// sessions are deleted by [`State::purge_at_most`] in bounded rounds.
    /// Nothing changes when `new` is refused (checked first, as
    /// [`State::new_shard`] checks it).
    pub fn reconfigure(
        &mut self,
        old_static: &[StaticBib],
        new: &Config,
    ) -> Result<Reconfigured, StateError> {
        // Checks first: a refused configuration leaves the state untouched.
        let (shard, shards) = self.tables[0].shard();
        State::<SplitMix64>::new_shard(new.clone(), SplitMix64::new(self.seed), shard, shards)?;
        let mut done = Reconfigured::default();
        for s in old_static.iter().filter(|s| !new.static_bib.contains(s)) {
            if let Some(n) = self.remove_static(s) {
                done.static_removed += 1;
                done.bib_doomed += 1;
                done.sessions_doomed += n;
            }
        }
        if self.pool4 != new.pool4 {
            done.pool4_sweep = self.set_pool4(new.pool4.clone());
        }
        for s in new.static_bib.iter().filter(|s| !old_static.contains(s)) {
            let (b, n) = self.add_static(s)?;
            done.bib_doomed += b;
            done.sessions_doomed += n;
            done.static_added += 1;
        }
        self.set_filtering(new.filtering);
        self.set_timeouts(new.timeouts);
        self.set_limits(new.limits);
        Ok(done)
    }

    /// Replaces pool4 (see [`State::reconfigure`]) in time independent of
    /// the table size. The BIB entries whose port left the pool (static
    /// ones too, when their address left) are out of use at once; returns
    /// whether there are any, for [`State::purge_at_most`] to sweep. A
    /// shard keeps handing out only the ports [`shard_of_port`] gives it.
    pub fn set_pool4(&mut self, pool4: Pool4) -> bool {
        let mut sweep = false;
        for proto in Proto::ALL {
            sweep |= self.tables[proto.index()].set_pool(pool4.proto(proto));
        }
        self.pool4 = pool4;
        sweep
    }

    /// Adds a static BIB entry to the running state (on every shard: the
    /// shard owning its port holds it; the others delete a dynamic entry of
    /// its IPv6 transport address, which now belongs to that shard). A
    /// dynamic entry holding its IPv6 or IPv4 transport address is deleted
    /// (its sessions go to the purge), unless it has the very mapping, and
    /// then it becomes static. Returns (BIB entries deleted, sessions).
    pub fn add_static(&mut self, s: &StaticBib) -> Result<(u32, u32), StateError> {
        let table = &mut self.tables[s.proto.index()];
        let (a6, a4) = (s.v6.addr.octets(), s.v4.addr.octets());
        if !table.has_address(a4) {
            return Err(StateError::StaticNotInPool(s.proto, s.v6, s.v4.addr));
        }
        let by6 = table.take_bib6(&a6, s.v6.port);
        let by4 = table.find_bib4(a4, s.v4.port);
        for idx in [by6, by4].into_iter().flatten() {
            if table.bib(idx).is_static() {
                return Err(StateError::StaticConflict(s.proto, s.v6.to_string()));
            }
        }
        if let (Some(i), Some(j)) = (by6, by4) {
            if i == j {
                table.make_static(i);
                return Ok((0, 0));
            }
        }
        let (mut bibs, mut sessions) = (0, 0);
        for idx in [by6, by4].into_iter().flatten() {
            bibs += 1;
            sessions += table.doom(idx);
        }
        if table.owns(s.v4.port) {
            table.insert_bib(a6, s.v6.port, a4, s.v4.port, true);
        }
        Ok((bibs, sessions))
    }

    /// Deletes a static BIB entry; returns how many sessions it had (they
    /// go to the purge), or `None` if this shard does not hold it.
    pub fn remove_static(&mut self, s: &StaticBib) -> Option<u32> {
        let table = &mut self.tables[s.proto.index()];
        let idx = table.take_bib6(&s.v6.addr.octets(), s.v6.port)?;
        let b = table.bib(idx);
        if !b.is_static() || b.v4() != (s.v4.addr, s.v4.port) {
            return None;
        }
        Some(table.doom(idx))
    }

    /// Switches filtering for the packets that come next (existing sessions
    /// stay). Switching to address-dependent indexes the live sessions in one
    /// pass.
    pub fn set_filtering(&mut self, filtering: Filtering) {
        for table in &mut self.tables {
            table.set_adf(filtering == Filtering::AddressDependent);
        }
    }

    /// After a reconfiguration: sweeps the BIB entries that lost their pool4
    /// port, then deletes the sessions of every deleted entry, looking at no
    /// more than `budget` slab slots in all (so that a caller holding a lock
    /// lets go between rounds, as with [`State::handle_timeout_at_most`]).
    /// Returns (sessions deleted, whether work remains). Their IPv6 sources
    /// get their share of the limits back.
    pub fn purge_at_most(&mut self, budget: usize) -> (u64, bool) {
        let mut left = budget;
        let mut deleted = 0;
        for pi in 0..3 {
            while let Some(idx) = self.tables[pi].next_stale(&mut left) {
                self.tables[pi].doom(idx);
            }
            if self.tables[pi].sweeping() {
                return (0, true);
            }
        }
        for pi in 0..3 {
            while let Some(idx) = self.tables[pi].next_doomed(&mut left) {
                let addr6 = self.tables[pi].remove_session(idx);
                self.source_remove(addr6);
                self.purged[pi] += 1;
                deleted += 1;
            }
            if self.tables[pi].purging() {
                return (deleted, true);
            }
        }
        (deleted, false)
    }

    /// Whether sessions of deleted BIB entries wait for
    /// [`State::purge_at_most`].
    pub fn purge_pending(&self) -> bool {
        self.tables.iter().any(|t| t.purging() || t.sweeping())
    }

    pub fn pool4(&self) -> &Pool4 {
        &self.pool4
    }

    /// Whether `addr` is a pool4 address: a 6→4 packet toward it is
    /// hairpinned (RFC 6146 §3.8) — the caller translates it to IPv4, then
    /// feeds the result to [`State::inbound`] instead of sending it out.
    pub fn is_pool4_addr(&self, addr: Ipv4Addr) -> bool {
        let a = addr.octets();
        self.tables.iter().any(|t| t.has_address(a))
    }

    fn clock(&mut self, now_ms: u64) -> u64 {
        // A clock that steps back would break the order of the expiry lists.
        self.last_now = self.last_now.max(now_ms);
        self.last_now
    }

    fn refuse(&mut self, reason: Refuse, icmp: Option<IcmpError>, now: u64) -> Refusal {
        self.refused[reason.index()] += 1;
        let limited = matches!(
            reason,
            Refuse::PoolExhausted | Refuse::SessionLimit | Refuse::SourceLimit
        );
        let icmp = if limited && self.limits.on_limit == LimitAction::Drop {
            None
        } else {
            icmp
        };
        let icmp = icmp.filter(|_| self.allow_icmp_error(now));
        Refusal { reason, icmp }
    }

    /// Whether the NAT64 may send one more ICMP error of its own now
    /// (`Limits::icmp_errors_per_second`, a token bucket with a burst of one
    /// second's worth). A `false` is counted in
    /// [`Stats::icmp_errors_suppressed`].
    pub fn allow_icmp_error(&mut self, now_ms: u64) -> bool {
        let rate = u64::from(self.limits.icmp_errors_per_second);
        let elapsed = now_ms.saturating_sub(self.icmp_refilled_ms);
        self.icmp_refilled_ms = self.icmp_refilled_ms.max(now_ms);
        self.icmp_tokens = self
            .icmp_tokens
            .saturating_add(elapsed.saturating_mul(rate))
            .min(rate.saturating_mul(1000));
        if self.icmp_tokens >= 1000 {
            self.icmp_tokens -= 1000;
            true
        } else {
            self.icmp_suppressed += 1;
            false
        }
    }

    fn source_count(&self, addr6: &[u8; 16]) -> u32 {
        let h = self.source_hash(addr6);
        self.per_source
            .find(h, |e| e.0 == *addr6)
            .map_or(0, |e| e.1)
    }

    fn source_hash(&self, addr6: &[u8; 16]) -> u64 {
        table::hash6(self.seed ^ 0x5eed, addr6, 0)
    }

    fn source_add(&mut self, addr6: [u8; 16]) {
        let h = self.source_hash(&addr6);
        match self.per_source.find_mut(h, |e| e.0 == addr6) {
            Some(e) => e.1 += 1,
            None => {
                let seed = self.seed ^ 0x5eed;
                self.per_source
                    .insert_unique(h, (addr6, 1), |e| table::hash6(seed, &e.0, 0));
            }
        }
        self.total += 1;
    }

    fn source_remove(&mut self, addr6: [u8; 16]) {
        let h = self.source_hash(&addr6);
        if let Ok(mut e) = self.per_source.find_entry(h, |e| e.0 == addr6) {
            if e.get().1 <= 1 {
                e.remove();
            } else {
                e.get_mut().1 -= 1;
            }
        }
        self.total = self.total.saturating_sub(1);
    }

    /// Limits for one more session of `addr6`.
    fn check_limits(&mut self, addr6: &[u8; 16], side: Side, now: u64) -> Result<(), Refusal> {
        let icmp = match side {
            Side::V6 => IcmpError::V6AddressUnreachable,
            Side::V4 => IcmpError::V4AdminProhibited,
        };
        if self.total >= self.limits.max_sessions {
            return Err(self.refuse(Refuse::SessionLimit, Some(icmp), now));
        }
        if self.source_count(addr6) >= self.limits.max_sessions_per_source {
            return Err(self.refuse(Refuse::SourceLimit, Some(icmp), now));
        }
        Ok(())
    }

    fn timer_for(proto: Proto, tcp: Option<tcp::TcpTimer>) -> Option<Timer> {
        Some(match proto {
            Proto::Udp => Timer::Udp,
            Proto::Icmp => Timer::Icmp,
            Proto::Tcp => match tcp? {
                tcp::TcpTimer::Est => Timer::TcpEst,
                tcp::TcpTimer::Trans => Timer::TcpTrans,
                tcp::TcpTimer::IncomingSyn => Timer::TcpIncomingSyn,
                tcp::TcpTimer::Keep => return None,
            },
        })
    }

    /// A packet of an existing session: TCP state, then refresh.
    fn update(&mut self, proto: Proto, idx: u32, side: Side, flags: TcpFlags, now: u64) {
        let table = &mut self.tables[proto.index()];
        let tcp_timer = if proto == Proto::Tcp {
            let current = TcpState::from_u8(table.session(idx).state);
            // Every TCP session has a valid state; a missing one can only
            // be a bug, and treating it as ESTABLISHED is the safe side.
            let current = current.unwrap_or(TcpState::Established);
            let (next, timer) = tcp::next(current, side, flags);
            table.set_state(idx, next as u8);
            Some(timer)
        } else {
            None
        };
        if let Some(timer) = Self::timer_for(proto, tcp_timer) {
            table.touch(idx, timer, stamp(now));
        }
    }

    /// RFC 6146 §3.5.1 (UDP), §3.5.2 (TCP), §3.5.3 (ICMP query): a packet
    /// from the IPv6 side, from `src` (X', x) to the IPv4 transport address
    /// `dst` (Z, z) its destination embeds. Finds or creates the BIB entry
    /// and session; returns the mapping to rewrite the packet with.
    pub fn outbound(
        &mut self,
        now_ms: u64,
        proto: Proto,
        src: Taddr6,
        dst: Taddr4,
        flags: TcpFlags,
    ) -> Result<Mapping, Refusal> {
        let now = self.clock(now_ms);
        let pi = proto.index();
        let addr6 = src.addr.octets();
        let remote4 = dst.addr.octets();
        let remote_port = if proto == Proto::Icmp { 0 } else { dst.port };
        let bib = self.tables[pi].take_bib6(&addr6, src.port);
        if let Some(bib) = bib {
            if let Some(idx) = self.tables[pi].find_session(bib, remote4, remote_port) {
                self.update(proto, idx, Side::V6, flags, now);
                return Ok(self.mapping(proto, bib, dst));
            }
        }
        // No session: only a SYN opens a TCP one.
        let opening = if proto == Proto::Tcp {
            match tcp::open(Side::V6, flags) {
                Some(o) => Some(o),
                None => return Err(self.refuse(Refuse::TcpNoSession, None, now)),
            }
        } else {
            None
        };
        self.check_limits(&addr6, Side::V6, now)?;
        let bib = match bib {
            Some(b) => b,
            None => {
                let Some((addr4, port4)) =
                    self.tables[pi].allocate(&addr6, src.port, &mut self.rng)
                else {
                    return Err(self.refuse(
                        Refuse::PoolExhausted,
                        Some(IcmpError::V6AddressUnreachable),
                        now,
                    ));
                };
                self.tables[pi].insert_bib(addr6, src.port, addr4, port4, false)
            }
        };
        let (state, timer) = match opening {
            Some((state, t)) => (state as u8, Self::timer_for(proto, Some(t))),
            None => (0, Self::timer_for(proto, None)),
        };
        let timer = timer.unwrap_or(Timer::TcpTrans);
        self.tables[pi].insert_session(bib, remote4, remote_port, state, timer, stamp(now));
        self.source_add(addr6);
        self.created[pi] += 1;
        Ok(self.mapping(proto, bib, dst))
    }

    /// RFC 6146 §3.5.1.2, §3.5.2.2, §3.5.3: a packet from the IPv4 side,
    /// from `src` (Z, z) to `dst` (T, t). Finds the BIB entry of (T, t),
    /// applies filtering, finds or creates the session.
    pub fn inbound(
        &mut self,
        now_ms: u64,
        proto: Proto,
        src: Taddr4,
        dst: Taddr4,
        flags: TcpFlags,
    ) -> Result<Mapping, Refusal> {
        let now = self.clock(now_ms);
        let pi = proto.index();
        let remote4 = src.addr.octets();
        let remote_port = if proto == Proto::Icmp { 0 } else { src.port };
        let Some(bib) = self.tables[pi].find_bib4(dst.addr.octets(), dst.port) else {
            // RFC 6146 §3.5.1.2: UDP to an unbound pool4 port gets a port
            // unreachable; TCP and ICMP are dropped silently (see `tcp`).
            let icmp = (proto == Proto::Udp).then_some(IcmpError::V4PortUnreachable);
            return Err(self.refuse(Refuse::NoBinding, icmp, now));
        };
        let remote = Taddr4::new(
            src.addr,
            if proto == Proto::Icmp {
                dst.port
            } else {
                src.port
            },
        );
        if let Some(idx) = self.tables[pi].find_session(bib, remote4, remote_port) {
            self.update(proto, idx, Side::V4, flags, now);
            return Ok(self.mapping(proto, bib, remote));
        }
        if !self.tables[pi].adf_allows(bib, remote4) {
            let icmp = (proto == Proto::Udp).then_some(IcmpError::V4AdminProhibited);
            return Err(self.refuse(Refuse::Filtered, icmp, now));
        }
        let opening = if proto == Proto::Tcp {
            match tcp::open(Side::V4, flags) {
                Some(o) => Some(o),
                None => return Err(self.refuse(Refuse::TcpNoSession, None, now)),
            }
        } else {
            None
        };
        let addr6 = self.tables[pi].bib(bib).addr6;
        self.check_limits(&addr6, Side::V4, now)?;
        let (state, timer) = match opening {
            Some((state, t)) => (state as u8, Self::timer_for(proto, Some(t))),
            None => (0, Self::timer_for(proto, None)),
        };
        let timer = timer.unwrap_or(Timer::TcpIncomingSyn);
        self.tables[pi].insert_session(bib, remote4, remote_port, state, timer, stamp(now));
        self.source_add(addr6);
        self.created[pi] += 1;
        Ok(self.mapping(proto, bib, remote))
    }

    fn mapping(&self, proto: Proto, bib: u32, remote: Taddr4) -> Mapping {
        let b = self.tables[proto.index()].bib(bib);
        let (a6, p6) = b.v6();
        let (a4, p4) = b.v4();
        let remote = if proto == Proto::Icmp {
            Taddr4::new(remote.addr, p4)
        } else {
            remote
        };
        Mapping {
            v6: Taddr6::new(a6, p6),
            v4: Taddr4::new(a4, p4),
            remote,
        }
    }

    /// 6→4: remembers for FRAGMENT_MIN that the datagram (`src`, `dst`,
    /// Fragment identification `id`) goes out from pool4 address `t`, for
    /// its later fragments.
    pub fn remember_fragment_v6(
        &mut self,
        now_ms: u64,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        id: u32,
        t: Ipv4Addr,
    ) {
        let now = self.clock(now_ms);
        let key = fragments::Key::V6(src.octets(), dst.octets(), id);
        self.fragments
            .remember(now, key, fragments::Mapped::V4(t.octets()));
    }

    /// 6→4: the pool4 address of a later fragment's datagram, if its first
    /// fragment went through within FRAGMENT_MIN.
    pub fn fragment_v6(
        &mut self,
        now_ms: u64,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        id: u32,
    ) -> Option<Ipv4Addr> {
        let now = self.clock(now_ms);
        let key = fragments::Key::V6(src.octets(), dst.octets(), id);
        match self.fragments.get(now, &key)? {
            fragments::Mapped::V4(t) => Some(Ipv4Addr::from(t)),
            fragments::Mapped::V6(_) => None,
        }
    }

    /// 4→6: remembers that the datagram (`src`, `dst`, `protocol`, `id`)
    /// goes to IPv6 host `x`, for its later fragments.
    pub fn remember_fragment_v4(
        &mut self,
        now_ms: u64,
        (src, dst): (Ipv4Addr, Ipv4Addr),
        protocol: u8,
        id: u16,
        x: Ipv6Addr,
    ) {
        let now = self.clock(now_ms);
        let key = fragments::Key::V4(src.octets(), dst.octets(), protocol, id);
        self.fragments
            .remember(now, key, fragments::Mapped::V6(x.octets()));
    }

    /// 4→6: the IPv6 host of a later fragment's datagram.
    pub fn fragment_v4(
        &mut self,
        now_ms: u64,
        (src, dst): (Ipv4Addr, Ipv4Addr),
        protocol: u8,
        id: u16,
    ) -> Option<Ipv6Addr> {
        let now = self.clock(now_ms);
        let key = fragments::Key::V4(src.octets(), dst.octets(), protocol, id);
        match self.fragments.get(now, &key)? {
            fragments::Mapped::V6(x) => Some(Ipv6Addr::from(x)),
            fragments::Mapped::V4(_) => None,
        }
    }

    /// Whether the mapping of the datagram `key` is known (its first
    /// fragment went through within FRAGMENT_MIN): a driver with several
    /// shards asks each before holding a later fragment in one.
    pub fn knows_fragment(&mut self, now_ms: u64, key: &FragmentKey) -> bool {
        let now = self.clock(now_ms);
        self.fragments.get(now, key).is_some()
    }

    /// Holds a later fragment of the datagram `key` whose first fragment has
    /// not come yet; `false` when a limit ([`MAX_HELD`], [`MAX_HELD_BYTES`],
    /// [`MAX_HELD_PER_DATAGRAM`]) is reached.
    pub(crate) fn hold_fragment(&mut self, now_ms: u64, key: FragmentKey, packet: &[u8]) -> bool {
        let now = self.clock(now_ms);
        self.fragments.hold(now, key, packet).is_ok()
    }

    /// Takes the later fragments held for the datagram `key`, in the order
    /// they came (for [`Translator::release_held`]).
    pub fn take_held_fragments(&mut self, now_ms: u64, key: &FragmentKey) -> Vec<Vec<u8>> {
        let now = self.clock(now_ms);
        if !self.fragments.holds(key) {
            return Vec::new();
        }
        self.fragments.take_held(now, key)
    }

    /// Counts a released fragment that did not translate.
    pub(crate) fn fragment_release_failed(&mut self) {
        self.fragments.release_failed += 1;
    }

    /// The pool4 transport address of the BIB entry of `v6`, without
    /// creating or refreshing anything (for the inner packet of an ICMPv6
    /// error, RFC 6146 §3.5 / RFC 7915 §5.3).
    pub fn lookup_v6(&self, proto: Proto, v6: Taddr6) -> Option<Taddr4> {
        let t = &self.tables[proto.index()];
        let bib = t.find_bib6(&v6.addr.octets(), v6.port)?;
        let (a, p) = t.bib(bib).v4();
        Some(Taddr4::new(a, p))
    }

    /// The IPv6 transport address of the BIB entry holding `v4`, without
    /// creating or refreshing anything (for the inner packet of an ICMP
    /// error).
    pub fn lookup_v4(&self, proto: Proto, v4: Taddr4) -> Option<Taddr6> {
        let t = &self.tables[proto.index()];
        let bib = t.find_bib4(v4.addr.octets(), v4.port)?;
        let (a, p) = t.bib(bib).v6();
        Some(Taddr6::new(a, p))
    }

    fn expiry_ms(&self, stamp: u32, timer: Timer) -> u64 {
        (u64::from(stamp) * 1000).saturating_add(self.timeouts_ms[timer as usize])
    }

    /// When [`State::handle_timeout`] next has work, in the caller's
    /// milliseconds; `None` when there are no sessions and no held
    /// fragments.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut soonest: Option<u64> = self.fragments.next_deadline();
        for table in &self.tables {
            for timer in ALL_TIMERS {
                if let Some(idx) = table.head(timer) {
                    let at = self.expiry_ms(table.session(idx).stamp, timer);
                    soonest = Some(soonest.map_or(at, |s| s.min(at)));
                }
            }
        }
        soonest
    }

    /// Expires every session whose lifetime ended at or before `now_ms`, and
    /// drops the held fragments that waited FRAGMENT_MIN; returns how many
    /// sessions were deleted. Costs O(sessions and fragments that expire).
    ///
    /// An ESTABLISHED TCP session that reaches TCP_EST moves to TRANS and
    /// queues a [`TcpProbe`] for the caller to send ([`State::take_probes`]).
    pub fn handle_timeout(&mut self, now_ms: u64) -> u64 {
        self.handle_timeout_at_most(now_ms, usize::MAX).0
    }

    /// Like [`State::handle_timeout`], but looks at no more than `budget`
    /// expired sessions, so that a caller holding a lock can let go between
    /// rounds. Returns (deleted, whether expired sessions remain).
    pub fn handle_timeout_at_most(&mut self, now_ms: u64, budget: usize) -> (u64, bool) {
        let now = self.clock(now_ms);
        self.fragments.expire_held(now);
        let mut deleted = 0;
        let mut seen = 0usize;
        for pi in 0..3 {
            for timer in ALL_TIMERS {
                while let Some(idx) = self.tables[pi].head(timer) {
                    let s = *self.tables[pi].session(idx);
                    if self.expiry_ms(s.stamp, timer) > now {
                        break;
                    }
                    if seen >= budget {
                        return (deleted, true);
                    }
                    seen += 1;
                    let keep = if pi == Proto::Tcp.index() {
                        TcpState::from_u8(s.state).and_then(tcp::expire)
                    } else {
                        None
                    };
                    match keep {
                        Some((state, _)) => {
                            let from = TcpState::from_u8(s.state);
                            if from.is_some_and(tcp::probes_on_expiry) {
                                self.queue_probe(pi, idx);
                            }
                            self.tables[pi].set_state(idx, state as u8);
                            self.tables[pi].touch(idx, Timer::TcpTrans, stamp(now));
                        }
                        None => {
                            let addr6 = self.tables[pi].remove_session(idx);
                            self.source_remove(addr6);
                            self.expired[pi] += 1;
                            deleted += 1;
                        }
                    }
                }
            }
        }
        (deleted, false)
    }

    /// Queues the probe of TCP session `idx` (table `pi`), unless its BIB
    /// entry is on its way out or the queue is full.
    fn queue_probe(&mut self, pi: usize, idx: u32) {
        let t = &self.tables[pi];
        let s = t.session(idx);
        let b = t.bib(s.bib);
        if b.is_doomed() || t.is_stale(s.bib) {
            return;
        }
        if self.probes.len() >= MAX_PENDING_PROBES {
            self.probes_skipped += 1;
            return;
        }
        let (a6, p6) = b.v6();
        self.probes.push(TcpProbe {
            v6: Taddr6::new(a6, p6),
            remote: Taddr4::new(Ipv4Addr::from(s.remote4), s.remote_port),
        });
        self.probes_queued += 1;
    }

    /// Moves the probes queued by [`State::handle_timeout`] (at most
    /// [`MAX_PENDING_PROBES`]) to the end of `out`, for the caller to build
    /// with [`Translator::tcp_probe`] and send.
    pub fn take_probes(&mut self, out: &mut Vec<TcpProbe>) {
        out.append(&mut self.probes);
    }

    /// Sessions of all protocols together.
    pub fn session_count(&self) -> u32 {
        self.total
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            sessions_created: self.created,
            sessions_expired: self.expired,
            refused: self.refused,
            icmp_errors_suppressed: self.icmp_suppressed,
            fragments_timed_out: self.fragments.timed_out,
            fragments_release_failed: self.fragments.release_failed,
            sessions_purged: self.purged,
            tcp_probes_queued: self.probes_queued,
            tcp_probes_skipped: self.probes_skipped,
            ..Stats::default()
        };
        let (held, bytes) = self.fragments.held();
        s.fragments_held = u64::try_from(held).unwrap_or(u64::MAX);
        s.fragment_bytes_held = u64::try_from(bytes).unwrap_or(u64::MAX);
        for (i, t) in self.tables.iter().enumerate() {
            s.sessions[i] = t.session_count();
            s.bib_entries[i] = t.bib_count();
            s.ports_used[i] = t.ports_used();
            s.ports_total[i] = t.pool_ports();
        }
        s
    }

    /// Bytes the tables hold on the heap (by capacity).
    pub fn heap_bytes(&self) -> usize {
        self.tables.iter().map(Table::heap_bytes).sum::<usize>()
            + self.per_source.capacity() * 21
            + self.probes.capacity() * std::mem::size_of::<TcpProbe>()
            + self.fragments.held().1
    }

    /// Every session, for display; O(table size).
    pub fn sessions(&self, now_ms: u64) -> Vec<SessionInfo> {
        self.sessions_at_most(now_ms, usize::MAX)
    }

    /// The first `max` sessions of each protocol, for display.
    pub fn sessions_at_most(&self, now_ms: u64, max: usize) -> Vec<SessionInfo> {
        let total = usize::try_from(self.total).unwrap_or(0);
        let mut out = Vec::with_capacity(total.min(max.saturating_mul(3)));
        for proto in Proto::ALL {
            let t = &self.tables[proto.index()];
            let live = t
                .live_sessions()
                .filter(|(_, s)| !t.bib(s.bib).is_doomed() && !t.is_stale(s.bib));
            for (_, s) in live.take(max) {
                let b = t.bib(s.bib);
                let (a6, p6) = b.v6();
                let (a4, p4) = b.v4();
                let timer = s.timer().unwrap_or(Timer::TcpTrans);
                let remote_port = if proto == Proto::Icmp {
                    p4
                } else {
                    s.remote_port
                };
                out.push(SessionInfo {
                    proto,
                    v6: Taddr6::new(a6, p6),
                    v4: Taddr4::new(a4, p4),
                    remote: Taddr4::new(Ipv4Addr::from(s.remote4), remote_port),
                    tcp_state: TcpState::from_u8(s.state),
                    expires_in_ms: self.expiry_ms(s.stamp, timer).saturating_sub(now_ms),
                });
            }
        }
        out
    }

    /// Every BIB entry, for display; O(table size).
    pub fn bib_entries(&self) -> Vec<BibInfo> {
        self.bib_entries_at_most(usize::MAX)
    }

    /// The first `max` BIB entries of each protocol, for display.
    pub fn bib_entries_at_most(&self, max: usize) -> Vec<BibInfo> {
        let mut out = Vec::new();
        for proto in Proto::ALL {
            for b in self.tables[proto.index()].live_bibs().take(max) {
                let (a6, p6) = b.v6();
                let (a4, p4) = b.v4();
                out.push(BibInfo {
                    proto,
                    v6: Taddr6::new(a6, p6),
                    v4: Taddr4::new(a4, p4),
                    is_static: b.is_static(),
                    sessions: b.sessions(),
                });
            }
        }
        out
    }
}

const ALL_TIMERS: [Timer; TIMERS] = [
    Timer::Udp,
    Timer::Icmp,
    Timer::TcpEst,
    Timer::TcpTrans,
    Timer::TcpIncomingSyn,
];

#[cfg(test)]
mod probe_tests;
#[cfg(test)]
mod reload_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod translate_tests;
