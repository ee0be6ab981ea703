//! `sixgate nat64` and the `[nat64]` section of `sixgate run`: stateful
//! NAT64 (RFC 6146) over a TUN device.
//!
//! The driver is thin. A TUN device, the routes (and optionally an nftables
//! masquerade) into and out of it, one packet thread that reads a batch of
//! packets, hands each to [`Translator::translate`] with the shared
//! [`State`], and writes what comes out; a timer task that expires sessions
//! ([`State::poll_timeout`] / [`State::handle_timeout`]) and writes the
//! probes of idle ESTABLISHED TCP sessions ([`send_probes`]); metrics; and the
//! `/nat64/sessions` admin endpoint that `sixgate nat64 sessions` prints.
//! SIGHUP applies pool4, static BIB entries, filtering, timeouts, limits and
//! the own addresses to the running state ([`reload`], then [`purge`] in
//! rounds); the prefix and the device need a restart.

use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args as ClapArgs, Subcommand};
use serde::{Deserialize, Deserializer};
use sixgate_telemetry::{Collect, Counter, Encoder};
use sixgate_xlat::nat64::{
    self, Filtering, LimitAction, Packets, Pool4, Pool4Entry, Proto, Sharding, SplitMix64, State,
    StaticBib, Stats, Taddr4, Taddr6, TcpProbe, Timeouts, Translator, Verdict,
};
use sixgate_xlat::prefix64::{is_global_v4, WELL_KNOWN};
use sixgate_xlat::{Prefix64, SiitConfig};

use crate::cli::{ConfigArgs, RunArgs};
use crate::cmd::siit::TunName;
use crate::config::{Config, Invalid};
use crate::context::Context;
use crate::offload::udp::{UdpOffload, WriteCounters};
use crate::offload::{self, write_tcp_super_packet, OffloadCounters, Read, TcpPartial};
use crate::routes::{warn_if_not_forwarding, RoutePrefix, Routes};
use crate::tun::{self, Ready, Tun, VnetHdr, Waker};

pub const DEFAULT_TUN: &str = "nat64";
pub const DEFAULT_MTU: u32 = 1500;
/// Packets handled per lock of the state.
const BATCH: usize = 64;
/// More workers than this buys nothing but threads.
pub const MAX_WORKERS: usize = 16;
/// BIB entries and sessions listed per protocol by `/nat64/sessions` (the
/// counts in its header lines are always whole).
const LIST_MAX: usize = 100_000;
/// Expired sessions handled per lock of the state.
const EXPIRY_ROUND: usize = 4096;
/// Session slots a reload's purge looks at per lock of the state.
const PURGE_ROUND: usize = 4096;

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------

/// `sixgate nat64`: run the translator, or look at a running one.
#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// The TOML config file (needed to run).
    #[arg(short, long, env = "SIXGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Admin HTTP address (`/healthz`, `/readyz`, `/metrics`,
    /// `/nat64/sessions`); overrides `[admin] listen`.
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// Reload when the config file's content changes (see `sixgate run`).
    #[arg(long, env = "SIXGATE_WATCH_CONFIG")]
    watch_config: bool,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// List the BIB entries and sessions of a running `sixgate nat64` (like
    /// `jool session display`), read from its admin port.
    Sessions {
        /// The admin address of the running sixgate.
        #[arg(long, conflicts_with = "config")]
        admin: Option<SocketAddr>,
        /// Or: its config file (its `[admin] listen` is used).
        #[arg(short, long, env = "SIXGATE_CONFIG")]
        config: Option<PathBuf>,
    },
}

pub fn command(args: &Args) -> anyhow::Result<()> {
    let run = args.config.clone().map(|config| RunArgs {
        config: ConfigArgs { config },
        admin: args.admin,
        watch_config: args.watch_config,
    });
    match (&args.action, &run) {
        (Some(Action::Sessions { admin, config }), _) => {
            let addr = match (admin, config) {
                (Some(addr), _) => *addr,
                (None, Some(path)) => Config::load(path)?.admin.listen,
                (None, None) => crate::config::AdminConfig::default().listen,
            };
            let body = admin_get(addr, "/nat64/sessions")?;
            print!("{body}");
            Ok(())
        }
        (None, Some(run)) => crate::cmd::run::command(run, Some(crate::cmd::run::Part::Nat64)),
        (None, None) => {
            anyhow::bail!("sixgate nat64 needs --config FILE (or the sessions subcommand)")
        }
    }
}

/// A plain HTTP/1.0 GET to the admin port.
fn admin_get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| {
            format!("cannot reach the admin port {addr} (is sixgate nat64 running?)")
        })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("the admin port sent no HTTP response")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        anyhow::bail!("{addr}{path}: HTTP {status}: {}", body.trim());
    }
    Ok(body.to_owned())
}

// ---------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------

/// The `[nat64]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// TUN device to create.
    #[serde(default = "default_tun")]
    pub tun: TunName,
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    /// Worker threads, each on its own TUN queue with its own shard of the
    /// state.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// TUN offloads (`IFF_VNET_HDR`, TSO and checksum offload): TCP
    /// super-packets of up to 64 KiB are translated whole and cut into
    /// segments by the kernel on the way out. On by default, as DESIGN's
    /// hot-path rule and the siit part have it: ten times the TCP throughput.
    #[serde(default = "default_offload")]
    pub offload: bool,
    /// RFC 6052 prefix the IPv4 Internet is seen under.
    #[serde(default = "default_prefix")]
    pub prefix: Prefix64,
    /// pool4 entries: `ADDR[/LEN] [tcp|udp|icmp] [FIRST-LAST]`.
    pub pool4: Vec<Pool4Entry>,
    /// Add routes for the prefix and pool4 into the TUN device (and the
    /// masquerade below) at start, remove them at exit.
    #[serde(default)]
    pub manage_routes: bool,
    /// With `manage_routes`: masquerade traffic from pool4 leaving through
    /// any other interface (an nftables table owned by sixgate), for hosts
    /// whose IPv4 network does not route pool4 to them.
    #[serde(default)]
    pub masquerade: bool,
    #[serde(default)]
    pub filtering: FilteringName,
    #[serde(default)]
    pub on_limit: LimitName,
    #[serde(default = "default_max_sessions")]
    pub max_sessions: u32,
    #[serde(default = "default_max_per_source")]
    pub max_sessions_per_source: u32,
    /// ICMP errors the NAT64 makes itself, per second (burst: one second's
    /// worth); the rest are not sent, and counted.
    #[serde(default = "default_icmp_rate")]
    pub icmp_errors_per_second: u32,
    #[serde(default)]
    pub timeouts: TimeoutsSection,
    /// Accept timeouts below RFC 6146's minimums (for tests and labs).
    #[serde(default)]
    pub allow_short_timeouts: bool,
    #[serde(default)]
    pub static_bib: Vec<StaticEntry>,
    /// Source of the ICMPv4 errors the translator makes itself (TTL
    /// exceeded); default: the first pool4 address.
    #[serde(default)]
    pub own_ipv4: Option<Ipv4Addr>,
    /// Source of the ICMPv6 errors the translator makes itself (hop limit
    /// exceeded); default: `own_ipv4` under the prefix.
    #[serde(default)]
    pub own_ipv6: Option<Ipv6Addr>,
    /// RFC 7915 lowest-ipv6-mtu.
    #[serde(default = "default_lowest_ipv6_mtu")]
    pub lowest_ipv6_mtu: u16,
}

fn default_tun() -> TunName {
    DEFAULT_TUN.parse().expect("the default tun name is valid")
}
fn default_mtu() -> u32 {
    DEFAULT_MTU
}
fn default_offload() -> bool {
    true
}
fn default_workers() -> usize {
    1
}
fn default_prefix() -> Prefix64 {
    WELL_KNOWN
}
fn default_max_sessions() -> u32 {
    nat64::Limits::default().max_sessions
}
fn default_max_per_source() -> u32 {
    nat64::Limits::default().max_sessions_per_source
}
fn default_icmp_rate() -> u32 {
    nat64::Limits::default().icmp_errors_per_second
}
fn default_lowest_ipv6_mtu() -> u16 {
    SiitConfig::default().lowest_ipv6_mtu
}

/// `filtering = "endpoint-independent" | "address-dependent"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilteringName {
    #[default]
    EndpointIndependent,
    AddressDependent,
}

impl FilteringName {
    pub fn as_str(self) -> &'static str {
        match self {
            FilteringName::EndpointIndependent => "endpoint-independent",
            FilteringName::AddressDependent => "address-dependent",
        }
    }
}

/// `on_limit = "icmp" | "drop"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitName {
    #[default]
    Icmp,
    Drop,
}

/// `[nat64.timeouts]`, each a duration like `"5m"`, `"2h4m"`, `"6s"`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSection {
    #[serde(default = "d_udp", deserialize_with = "duration")]
    pub udp: Duration,
    #[serde(default = "d_icmp", deserialize_with = "duration")]
    pub icmp: Duration,
    #[serde(default = "d_est", deserialize_with = "duration")]
    pub tcp_est: Duration,
    #[serde(default = "d_trans", deserialize_with = "duration")]
    pub tcp_trans: Duration,
    #[serde(default = "d_syn", deserialize_with = "duration")]
    pub tcp_incoming_syn: Duration,
}

fn d_udp() -> Duration {
    Timeouts::default().udp
}
fn d_icmp() -> Duration {
    Timeouts::default().icmp
}
fn d_est() -> Duration {
    Timeouts::default().tcp_est
}
fn d_trans() -> Duration {
    Timeouts::default().tcp_trans
}
fn d_syn() -> Duration {
    Timeouts::default().tcp_incoming_syn
}

impl Default for TimeoutsSection {
    fn default() -> Self {
        let t = Timeouts::default();
        Self {
            udp: t.udp,
            icmp: t.icmp,
            tcp_est: t.tcp_est,
            tcp_trans: t.tcp_trans,
            tcp_incoming_syn: t.tcp_incoming_syn,
        }
    }
}

impl TimeoutsSection {
    fn core(&self) -> Timeouts {
        Timeouts {
            udp: self.udp,
            icmp: self.icmp,
            tcp_est: self.tcp_est,
            tcp_trans: self.tcp_trans,
            tcp_incoming_syn: self.tcp_incoming_syn,
        }
    }
}

/// Parses `"2h4m"`, `"90s"`, `"500ms"`, `"5m"` (units h, m, s, ms; at least
/// one; no sign, no fractions).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like \"5m\", \"2h4m\", \"90s\" or \"500ms\"");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else {
            return Err(bad());
        };
        let part = unit
            .checked_mul(u32::try_from(n).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = &rest[len..];
    }
    Ok(total)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// One `[[nat64.static_bib]]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticEntry {
    pub proto: Proto,
    /// `"[2001:db8::10]:80"`: the IPv6 server (for ICMP the port is the
    /// echo identifier).
    pub ipv6: SocketAddrV6,
    /// `"192.0.2.1:80"`: where IPv4 clients reach it (a pool4 address).
    pub ipv4: SocketAddrV4,
}

impl Section {
    /// The core's configuration. `Err` names the key.
    pub fn state_config(&self) -> Result<nat64::Config, Invalid> {
        let pool4 = Pool4::new(&self.pool4).map_err(|e| Invalid::new("nat64.pool4", e))?;
        Ok(nat64::Config {
            pool4,
            timeouts: self.timeouts.core(),
            limits: nat64::Limits {
                max_sessions: self.max_sessions,
                max_sessions_per_source: self.max_sessions_per_source,
                on_limit: match self.on_limit {
                    LimitName::Icmp => LimitAction::Icmp,
                    LimitName::Drop => LimitAction::Drop,
                },
                icmp_errors_per_second: self.icmp_errors_per_second,
            },
            filtering: match self.filtering {
                FilteringName::EndpointIndependent => Filtering::EndpointIndependent,
                FilteringName::AddressDependent => Filtering::AddressDependent,
            },
            static_bib: self
                .static_bib
                .iter()
                .map(|s| StaticBib {
                    proto: s.proto,
                    v6: Taddr6::new(*s.ipv6.ip(), s.ipv6.port()),
                    v4: Taddr4::new(*s.ipv4.ip(), s.ipv4.port()),
                })
                .collect(),
        })
    }

    /// The RFC 7915 knobs of the stateless translator underneath.
    pub fn siit_template(&self) -> SiitConfig {
        let own_ipv4 = self.own_ipv4.or_else(|| self.pool4.first().map(|e| e.addr));
        SiitConfig {
            own_ipv4,
            own_ipv6: self.own_ipv6,
            lowest_ipv6_mtu: self.lowest_ipv6_mtu,
            ..SiitConfig::default()
        }
    }

    /// Routes `manage_routes = true` adds: the prefix, every pool4 address,
    /// and the translator's own addresses.
    pub fn routes(&self) -> Vec<RoutePrefix> {
        let mut routes = vec![RoutePrefix::new(
            self.prefix.addr(),
            self.prefix.prefix_len(),
        )];
        for entry in &self.pool4 {
            let r = RoutePrefix::new(entry.addr, entry.prefix_len);
            if !routes.contains(&r) {
                routes.push(r);
            }
        }
        if let Some(own) = self.own_ipv6 {
            routes.push(RoutePrefix::new(own, 128));
        }
        routes
    }
}

/// Checks of the section that need more than one value at a time.
pub fn validate(section: &Section) -> Result<(), Invalid> {
    tun::check_mtu("nat64.mtu", section.mtu)?;
    if !(1..=MAX_WORKERS).contains(&section.workers) {
        return Err(Invalid::new(
            "nat64.workers",
            format!("{} is outside 1..={MAX_WORKERS}", section.workers),
        ));
    }
    if section.pool4.is_empty() {
        return Err(Invalid::new(
            "nat64.pool4",
            "is empty: give at least one IPv4 address, for example [\"192.0.2.1\"]",
        ));
    }
    // RFC 6052 §3.1 keeps non-global IPv4 out of 64:ff9b::/96. A pool4 address
    // is embedded only when a client hairpins to it; a masqueraded pool4 is a
    // private staging address nobody outside ever sees, so it may be private.
    if section.prefix.is_well_known() && !section.masquerade {
        for entry in &section.pool4 {
            if let Some(bad) = entry.addresses().find(|a| !is_global_v4(*a)) {
                return Err(Invalid::new(
                    "nat64.pool4",
                    format!(
                        "{bad} is not a global IPv4 address, and the well-known prefix 64:ff9b::/96 must not carry it (RFC 6052 §3.1); \
                         use a network-specific prefix or the local-use 64:ff9b:1::/96 (RFC 8215)"
                    ),
                ));
            }
        }
    }
    if section.masquerade && !section.manage_routes {
        return Err(Invalid::new(
            "nat64.masquerade",
            "needs manage_routes = true (the masquerade table is managed with the routes)",
        ));
    }
    if section.max_sessions == 0
        || section.max_sessions_per_source == 0
        || section.icmp_errors_per_second == 0
    {
        return Err(Invalid::new(
            "nat64.max_sessions",
            "limits must be at least 1",
        ));
    }
    if section.timeouts.icmp.is_zero() || section.timeouts.udp.is_zero() {
        return Err(Invalid::new(
            "nat64.timeouts",
            "timeouts must be above zero",
        ));
    }
    if !section.allow_short_timeouts {
        if let Some((key, min)) = section.timeouts.core().below_rfc_minimums().first() {
            return Err(Invalid::new(
                format!("nat64.timeouts.{key}"),
                format!(
                    "is below RFC 6146's minimum of {}s (set allow_short_timeouts = true for a lab)",
                    min.as_secs()
                ),
            ));
        }
    }
    let config = section.state_config()?;
    State::new(config, SplitMix64::new(0))
        .map(|_| ())
        .map_err(|e| Invalid::new("nat64.static_bib", e))
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

/// The state shared by the packet threads, the timer task, metrics and the
/// admin endpoint: one shard per worker, each behind its own lock.
struct Shared {
    shards: Vec<Mutex<State>>,
    path: Swap,
    start: Instant,
}

/// What a packet thread translates and routes packets with; a reload
/// replaces it (new pool4, static BIB entries, own addresses).
struct DataPath {
    translator: Translator,
    sharding: Sharding,
}

/// The [`DataPath`] in use, replaceable while packets flow: each packet
/// thread keeps its own `Arc` and compares a generation number once per
/// batch (one atomic load); only when it changed does it take the lock to
/// pick up the new one. The siit driver does the same with its translator.
struct Swap {
    generation: AtomicU64,
    current: Mutex<Arc<DataPath>>,
}

impl Swap {
    fn new(path: DataPath) -> Self {
        Self {
            generation: AtomicU64::new(0),
            current: Mutex::new(Arc::new(path)),
        }
    }

    fn get(&self) -> (Arc<DataPath>, u64) {
        let generation = self.generation.load(Ordering::Acquire);
        let path = Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner));
        (path, generation)
    }

    fn replace(&self, path: DataPath) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(path);
        self.generation.fetch_add(1, Ordering::Release);
    }

    #[inline]
    fn refresh(&self, local: &mut Arc<DataPath>, seen: &mut u64) {
        if self.generation.load(Ordering::Acquire) != *seen {
            (*local, *seen) = self.get();
        }
    }
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug in the core; the
        // tables are still consistent between packets, so keep going.
        self.shards[shard.min(self.shards.len() - 1)]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The counts of all shards added up.
    fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for i in 0..self.shards.len() {
            let s = self.lock(i).stats();
            for p in 0..3 {
                total.sessions[p] += s.sessions[p];
                total.bib_entries[p] += s.bib_entries[p];
                total.ports_used[p] += s.ports_used[p];
                total.ports_total[p] += s.ports_total[p];
                total.sessions_created[p] += s.sessions_created[p];
                total.sessions_expired[p] += s.sessions_expired[p];
                total.sessions_purged[p] += s.sessions_purged[p];
            }
            total.icmp_errors_suppressed += s.icmp_errors_suppressed;
            total.fragments_held += s.fragments_held;
            total.fragment_bytes_held += s.fragment_bytes_held;
            total.fragments_timed_out += s.fragments_timed_out;
            total.fragments_release_failed += s.fragments_release_failed;
            total.tcp_probes_queued += s.tcp_probes_queued;
            total.tcp_probes_skipped += s.tcp_probes_skipped;
            for (t, v) in total.refused.iter_mut().zip(s.refused) {
                *t += v;
            }
        }
        total
    }
}

/// The limits of one shard: the total and the ICMP error rate are split
/// evenly, the per-source limit stays whole (a source's flows live in one
/// shard).
fn shard_limits(mut limits: nat64::Limits, shards: usize) -> nat64::Limits {
    let n = u32::try_from(shards.max(1)).unwrap_or(1);
    limits.max_sessions = limits.max_sessions.div_ceil(n);
    limits.icmp_errors_per_second = limits.icmp_errors_per_second.div_ceil(n);
    limits
}

/// Runs the part until `ctx.shutdown` is cancelled.
pub async fn serve(section: Section, ctx: Context) -> anyhow::Result<()> {
    let ready = ctx.health.part("nat64");
    let config = section
        .state_config()
        .map_err(|e| anyhow::anyhow!("{}: {}", e.key, e.reason))?;
    let workers = section.workers.max(1);
    let sharding = Sharding::new(workers, section.prefix, &config, os_seed());
    let mut shards = Vec::with_capacity(workers);
    for i in 0..workers {
        let mut shard_config = config.clone();
        shard_config.limits = shard_limits(config.limits, workers);
        shards.push(Mutex::new(State::new_shard(
            shard_config,
            SplitMix64::new(os_seed()),
            i,
            workers,
        )?));
    }
    let translator = Translator::new(section.prefix, section.siit_template());
    let shared = Arc::new(Shared {
        shards,
        path: Swap::new(DataPath {
            translator,
            sharding,
        }),
        start: Instant::now(),
    });
    let metrics = Arc::new(Metrics::new(Arc::clone(&shared)));
    ctx.registry.register(metrics.clone());
    {
        let shared = Arc::clone(&shared);
        ctx.endpoints
            .add("/nat64/sessions", move || render_sessions(&shared));
    }

    let queues = Tun::open_queues(section.tun.as_str(), workers, section.offload)?;
    let Some(tun) = queues.first() else {
        anyhow::bail!("no TUN queue was opened");
    };
    tun.set_mtu(section.mtu)?;
    tun.set_up()?;
    let queues: Vec<Arc<Tun>> = queues.into_iter().map(Arc::new).collect();
    let tun = Arc::clone(&queues[0]);
    warn_if_not_forwarding();

    // Dropped before `tun`: routes and the nft table go while the device
    // still exists, on every path out of this function.
    let mut routes = Routes::new(tun.name());
    let mut masquerade = None;
    if section.manage_routes {
        for route in section.routes() {
            routes.add(route)?;
        }
        if section.masquerade {
            masquerade = Some(Masquerade::add(tun.name(), &section.pool4)?);
        }
    }

    let waker =
        Arc::new(Waker::new().context("cannot create the eventfd that stops the packet thread")?);
    // The first thread to end (an error, or the waker) reports; the others
    // are joined at shutdown.
    let (done_tx, done_rx) = tokio::sync::mpsc::channel(workers);
    let mut threads = Vec::with_capacity(workers);
    let offload = section.offload;
    for (i, queue) in queues.iter().enumerate() {
        let (queue, waker, metrics, shared, done_tx) = (
            Arc::clone(queue),
            Arc::clone(&waker),
            Arc::clone(&metrics),
            Arc::clone(&shared),
            done_tx.clone(),
        );
        threads.push(
            std::thread::Builder::new()
                .name(format!("nat64-tun{i}"))
                .spawn(move || {
                    let result = packet_loop(&queue, &waker, &shared, &metrics, offload);
                    let _ = done_tx.try_send(result);
                })
                .context("cannot start a packet thread")?,
        );
    }
    drop(done_tx);

    ready.set(true);
    tracing::info!(
        "nat64 running on tun {} (mtu {}, {} worker{}{}, prefix {}, pool4 {}, {} routes{})",
        tun.name(),
        section.mtu,
        workers,
        if workers == 1 { "" } else { "s" },
        if section.offload { ", offloads" } else { "" },
        section.prefix,
        section
            .pool4
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        routes.added().len(),
        if masquerade.is_some() {
            ", masquerade"
        } else {
            ""
        }
    );

    let mut done_rx = done_rx;
    let mut probes: Vec<TcpProbe> = Vec::new();
    let mut config_rx = ctx.config.clone();
    let mut running = section.clone();
    let result = loop {
        // Expiry: sleep until the state's next deadline (at most 1 s, so new
        // sessions are seen), then expire.
        let wait = {
            let now = shared.now_ms();
            (0..workers)
                .filter_map(|i| shared.lock(i).poll_timeout())
                .min()
                .map_or(1000, |at| at.saturating_sub(now).clamp(10, 1000))
        };
        tokio::select! {
            () = ctx.shutdown.cancelled() => {
                waker.wake();
                break done_rx.recv().await;
            }
            result = done_rx.recv() => break result,
            changed = config_rx.changed() => {
                if changed.is_err() {
                    continue;
                }
                let new = config_rx.borrow_and_update().nat64.clone();
                if let Some(new) = new {
                    let mut host = Host { tun: tun.name(), routes: &mut routes, masquerade: masquerade.as_ref() };
                    if reload(&shared, &mut running, new, &mut host) {
                        purge(&shared).await;
                    }
                }
            }
            () = tokio::time::sleep(Duration::from_millis(wait)) => {
                // In rounds, letting go of the lock in between so that a
                // mass expiry never stalls the packet thread for long. The
                // probes a round queued (at most one per session it looked
                // at) are written after the lock is let go.
                let now = shared.now_ms();
                let mut expired = 0;
                let mut probed = 0;
                for i in 0..workers {
                    loop {
                        let (n, more) = {
                            let mut state = shared.lock(i);
                            let round = state.handle_timeout_at_most(now, EXPIRY_ROUND);
                            state.take_probes(&mut probes);
                            round
                        };
                        expired += n;
                        if !probes.is_empty() {
                            let (path, _) = shared.path.get();
                            probed += send_probes(&tun, &path.translator, &mut probes, offload, &metrics);
                        }
                        if !more {
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                }
                if expired > 0 || probed > 0 {
                    tracing::debug!(expired, probed, "sessions expired, idle TCP sessions probed");
                }
            }
        }
    };
    ready.set(false);
    waker.wake();
    for thread in threads {
        let _ = thread.join();
    }
    drop(masquerade);
    routes.remove_all();
    drop(tun);
    drop(queues);
    match result {
        Some(Ok(())) => {
            tracing::info!("nat64 stopped");
            Ok(())
        }
        Some(Err(err)) => Err(err).context("the packet loop failed"),
        None => anyhow::bail!("the packet threads ended without a word"),
    }
}

/// Writes to the TUN device the probes of RFC 6146 §3.5.2.2 that expiry
/// queued (at most [`EXPIRY_ROUND`] per call), each built by
/// [`Translator::tcp_probe`]: an IPv6 segment toward the session's IPv6
/// endpoint, which the kernel routes out like a translated packet. With
/// offloads, a zero [`VnetHdr`] goes in front (the checksum is complete, no
/// segmentation). A write to a TUN device does not block (the kernel takes
/// the packet or refuses it), so this runs on the timer task. Returns how
/// many were written; failed writes count as TUN write errors.
fn send_probes(
    tun: &Tun,
    translator: &Translator,
    probes: &mut Vec<TcpProbe>,
    offload: bool,
    metrics: &Metrics,
) -> u64 {
    let vnet = VnetHdr::default().to_bytes();
    let mut written = 0;
    for probe in probes.drain(..) {
        let packet = translator.tcp_probe(&probe);
        let sent = if offload {
            tun.send_parts(&[io::IoSlice::new(&vnet), io::IoSlice::new(&packet)])
        } else {
            tun.send(&packet)
        };
        match sent {
            Ok(()) => {
                metrics.tcp_probes.inc();
                written += 1;
            }
            Err(err) => {
                metrics.tun_write_errors.inc();
                tracing::trace!("tun write of a TCP probe failed: {err}");
            }
        }
    }
    written
}

/// What a reload may change on the host: the routes and the masquerade
/// table (with `manage_routes`).
struct Host<'a> {
    tun: &'a str,
    routes: &'a mut Routes,
    masquerade: Option<&'a Masquerade>,
}

/// SIGHUP (or `--watch-config`): applies a new `[nat64]` section to the
/// running translator, as `jool pool4 add/remove` and `jool bib add/remove`
/// do. pool4, static BIB entries, filtering, timeouts, limits and the own
/// addresses take effect at once (BIB entries and sessions on removed pool4
/// addresses or ports, and on removed static entries, are deleted: they
/// leave the tables' indices here, and [`purge`] frees them in rounds);
/// routes and the masquerade follow pool4. The keys that shape the device,
/// the prefix and whether routes are managed at all need a restart: they
/// are kept, and the log says so. A section that is not valid with the
/// kept keys is refused whole. Returns whether sessions wait for [`purge`].
fn reload(shared: &Shared, running: &mut Section, new: Section, host: &mut Host<'_>) -> bool {
    let mut needs_restart = Vec::new();
    for (key, changed) in [
        ("tun", new.tun != running.tun),
        ("mtu", new.mtu != running.mtu),
        ("workers", new.workers != running.workers),
        ("offload", new.offload != running.offload),
        ("prefix", new.prefix != running.prefix),
        ("manage_routes", new.manage_routes != running.manage_routes),
        ("masquerade", new.masquerade != running.masquerade),
    ] {
        if changed {
            needs_restart.push(key);
        }
    }
    if let [key] = needs_restart[..] {
        tracing::warn!(
            "nat64: a new nat64.{key} takes effect only after a restart; the running value is kept"
        );
    } else if !needs_restart.is_empty() {
        tracing::warn!(
            "nat64: new nat64.{} take effect only after a restart; the running values are kept",
            needs_restart.join(", nat64.")
        );
    }
    let new = Section {
        tun: running.tun.clone(),
        mtu: running.mtu,
        workers: running.workers,
        offload: running.offload,
        prefix: running.prefix,
        manage_routes: running.manage_routes,
        masquerade: running.masquerade,
        ..new
    };
    let checked = validate(&new).and_then(|()| Ok((new.state_config()?, running.state_config()?)));
    let (config, old) = match checked {
        Ok(configs) => configs,
        Err(invalid) => {
            tracing::error!(
                "nat64: reload refused, the running configuration stays: {}: {}",
                invalid.key,
                invalid.reason
            );
            return false;
        }
    };
    let n = shared.shards.len();
    let mut done = nat64::Reconfigured::default();
    for i in 0..n {
        let mut shard_config = config.clone();
        shard_config.limits = shard_limits(config.limits, n);
        match shared.lock(i).reconfigure(&old.static_bib, &shard_config) {
            Ok(d) => {
                done.bib_doomed += d.bib_doomed;
                done.sessions_doomed += d.sessions_doomed;
                done.pool4_sweep |= d.pool4_sweep;
                // Every shard adds every new static entry (one holds it);
                // only the shard holding a removed one counts it.
                done.static_added = d.static_added;
                done.static_removed += d.static_removed;
            }
            // `validate` built a state from the same config: not expected.
            Err(err) => tracing::error!("nat64: shard {i} refused the new configuration: {err}"),
        }
    }
    let (path, _) = shared.path.get();
    shared.path.replace(DataPath {
        translator: Translator::new(new.prefix, new.siit_template()),
        sharding: path.sharding.reconfigured(&config),
    });
    let mut route_note = String::new();
    if new.manage_routes {
        let failed = host.routes.reconcile(&new.routes());
        let _ = write!(route_note, ", {} routes", host.routes.added().len());
        if failed > 0 {
            let _ = write!(route_note, " ({failed} route changes failed, see above)");
        }
        if let Some(masquerade) = host.masquerade {
            if new.pool4 != running.pool4 {
                if let Err(err) = masquerade.replace(host.tun, &new.pool4) {
                    tracing::error!("nat64: {err:#}");
                }
            }
        }
    }
    tracing::info!(
        "nat64 reloaded: pool4 {}, {} static BIB entries ({} added, {} removed), filtering {}{}; \
         timeouts and limits reloaded; deleted at once: {} BIB entries ({} sessions){}",
        new.pool4
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        new.static_bib.len(),
        done.static_added,
        done.static_removed,
        new.filtering.as_str(),
        route_note,
        done.bib_doomed,
        done.sessions_doomed,
        if done.pool4_sweep {
            "; BIB entries on removed pool4 ports: out of use now, freed in rounds"
        } else {
            ""
        },
    );
    *running = new;
    done.sessions_doomed > 0 || (0..n).any(|i| shared.lock(i).purge_pending())
}

/// Sweeps the BIB entries a reload took the pool4 ports of and frees the
/// sessions of every deleted entry, in rounds, letting go of each shard's
/// lock in between so that a large table never stalls the packet threads
/// for long (as the expiry does).
async fn purge(shared: &Shared) {
    let (mut purged, mut rounds) = (0, 0);
    let start = Instant::now();
    for i in 0..shared.shards.len() {
        loop {
            let (n, more) = shared.lock(i).purge_at_most(PURGE_ROUND);
            purged += n;
            rounds += 1;
            if !more {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    tracing::info!(
        "nat64: sessions of deleted BIB entries freed: {purged} in {rounds} rounds, {} ms",
        start.elapsed().as_millis()
    );
}

/// A seed for port randomisation and table hashing, from the OS.
fn os_seed() -> u64 {
    use std::io::Read as _;
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok()
    {
        return u64::from_le_bytes(bytes);
    }
    // No /dev/urandom: the clock and the pid are a poor but working seed.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
    t ^ u64::from(std::process::id()).rotate_left(32)
}

/// Reads, translates and writes packets until `waker` is woken. With one
/// shard the state is locked once per batch of up to [`BATCH`] packets; with
/// several, each packet locks the shard (or, for a hairpin, the two shards,
/// in index order) that [`Sharding::route`] names, and writes after letting
/// go. With `offload`, each packet read and written starts with a
/// [`VnetHdr`] (see [`offloaded`]), and the datagrams of one flow written
/// in a batch leave as one UDP super-packet ([`UdpOffload`]).
fn packet_loop(
    tun: &Tun,
    waker: &Waker,
    shared: &Shared,
    metrics: &Metrics,
    offload: bool,
) -> io::Result<()> {
    let mut buf = vec![0u8; tun::MAX_PACKET + VnetHdr::LEN];
    let mut out = Packets::new();
    let mut writer = UdpOffload::new();
    let single = shared.shards.len() == 1;
    let (mut path, mut seen) = shared.path.get();
    while !waker.is_woken() {
        shared.path.refresh(&mut path, &mut seen);
        let DataPath {
            translator,
            sharding,
        } = &*path;
        let mut batch_lock = single.then(|| shared.lock(0));
        let now = shared.now_ms();
        let mut idle = false;
        for _ in 0..BATCH {
            let len = match tun.recv(&mut buf) {
                Ok(len) => len,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    idle = true;
                    break;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    metrics.tun_read_errors.inc();
                    return Err(io::Error::new(
                        err.kind(),
                        format!("reading tun {}: {err}", tun.name()),
                    ));
                }
            };
            let Some(packet) = buf.get_mut(..len) else {
                continue;
            };
            let mut xlate = |packet: &mut [u8], out: &mut Packets| match batch_lock.as_mut() {
                Some(state) => translator.translate(state, now, packet, out),
                None => translate_sharded(translator, sharding, shared, now, packet, out),
            };
            if offload {
                offloaded(tun, metrics, packet, &mut out, &mut writer, &mut xlate);
                continue;
            }
            let verdict = xlate(packet, &mut out);
            metrics.count(verdict);
            tracing::trace!(len, verdict = verdict.as_str(), out = out.len(), "packet");
            for packet in out.packets() {
                if let Err(err) = tun.send(packet) {
                    metrics.tun_write_errors.inc();
                    tracing::trace!("tun write failed: {err}");
                }
            }
        }
        drop(batch_lock);
        writer.coalescer.flush(tun, metrics.write_counters());
        if idle && tun.wait(waker)? == Ready::Woken {
            break;
        }
    }
    Ok(())
}

/// One packet read from a device with offloads: `raw` is a [`VnetHdr`] and
/// the packet (see [`offload::read`]; the same scheme as the siit
/// driver's).
///
/// A TCP super-packet (GSO) keeps its partial checksum: the NAT64 rewrites
/// and translates its headers (the incremental updates of the partial field
/// are then overwritten), and the driver writes the new pseudo-header sum
/// into the checksum field and a header with the other family's GSO type in
/// front; the kernel cuts the segments on the way out. A UDP super-packet
/// is cut into its datagrams, each translated on its own (the writer joins
/// them again). Anything else with a partial checksum gets it completed
/// here first and goes through as a plain packet.
fn offloaded(
    tun: &Tun,
    metrics: &Metrics,
    raw: &mut [u8],
    out: &mut Packets,
    writer: &mut UdpOffload,
    xlate: &mut impl FnMut(&mut [u8], &mut Packets) -> Verdict,
) {
    let counters = metrics.offload_counters();
    match offload::read(raw, &metrics.vnet_errors) {
        None => {}
        Some(Read::Plain(packet)) => {
            let verdict = xlate(packet, out);
            metrics.count(verdict);
            writer.write_all(tun, out.packets(), counters.write);
        }
        Some(Read::UdpSuper(hdr, packet)) => {
            writer.for_each_datagram(packet, &hdr, counters, |datagram, coalescer| {
                let verdict = xlate(datagram, out);
                metrics.count(verdict);
                for packet in out.packets() {
                    coalescer.write(tun, packet, counters.write);
                }
            });
        }
        Some(Read::TcpSuper(hdr, packet)) => {
            let verdict = xlate(packet, out);
            metrics.count(verdict);
            let translated = matches!(
                verdict,
                Verdict::FourToSix | Verdict::SixToFour | Verdict::Hairpin
            );
            if !translated {
                // Refused or dropped: an ICMP error (already complete) or
                // nothing goes out.
                writer.write_all(tun, out.packets(), counters.write);
                return;
            }
            if let (1, Some(segment)) = (out.len(), out.get(0)) {
                if let Some(tcp) = TcpPartial::of(segment) {
                    write_tcp_super_packet(tun, writer, &hdr, segment, &tcp, counters);
                    return;
                }
            }
            // Translated but not one TCP packet: nothing sane to send with a
            // partial checksum the core has rewritten.
            metrics.offload_fallbacks.inc();
        }
    }
}

/// One packet through the shard(s) its flow lives in.
fn translate_sharded(
    translator: &Translator,
    sharding: &Sharding,
    shared: &Shared,
    now: u64,
    packet: &mut [u8],
    out: &mut Packets,
) -> Verdict {
    let fragment = sharding.fragment(packet);
    if let Some((key, true)) = fragment {
        // A later fragment: no port to name its shard for sure. The shard
        // that knows the datagram (the holding shard first: usually the
        // first fragment's), else the holding shard holds it.
        let h = sharding.holding_shard(&key);
        let others = (0..shared.shards.len()).filter(|i| *i != h);
        for i in std::iter::once(h).chain(others.clone()) {
            let mut state = shared.lock(i);
            if state.knows_fragment(now, &key) {
                return translator.translate(&mut state, now, packet, out);
            }
        }
        let verdict = translator.translate(&mut shared.lock(h), now, packet, out);
        if verdict == Verdict::Held {
            // The first fragment may have gone through another shard since
            // that shard was asked: it took what was held before; take
            // what was held after.
            for i in others {
                let mut state = shared.lock(i);
                if state.knows_fragment(now, &key) {
                    drop(state);
                    let held = shared.lock(h).take_held_fragments(now, &key);
                    translator.release_held(&mut shared.lock(i), now, held, out);
                    break;
                }
            }
        }
        return verdict;
    }
    let (a, b) = sharding.route(packet);
    let verdict = match b {
        None => translator.translate(&mut shared.lock(a), now, packet, out),
        Some(b) => {
            // Two locks, always taken in index order: no deadlock between
            // two hairpins crossing in opposite directions.
            let (lo, hi) = (a.min(b), a.max(b));
            let mut first = shared.lock(lo);
            let mut second = shared.lock(hi);
            let (sa, sb) = if a == lo {
                (&mut *first, &mut *second)
            } else {
                (&mut *second, &mut *first)
            };
            translator.translate_pair(sa, Some(sb), now, packet, out)
        }
    };
    if let Some((key, false)) = fragment {
        // A first fragment: its shard released what it held itself; the
        // early fragments held by another (holding) shard follow it here.
        let h = sharding.holding_shard(&key);
        if h != a && matches!(verdict, Verdict::FourToSix | Verdict::SixToFour) {
            let held = shared.lock(h).take_held_fragments(now, &key);
            translator.release_held(&mut shared.lock(a), now, held, out);
        }
    }
    verdict
}

/// An nftables table owned by sixgate that masquerades pool4 traffic leaving
/// through any interface but the TUN device; deleted on drop.
struct Masquerade {
    table: String,
}

impl Masquerade {
    fn table_name(tun: &str) -> String {
        let clean: String = tun
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("sixgate_nat64_{clean}")
    }

    fn ruleset(table: &str, tun: &str, pool4: &[Pool4Entry]) -> String {
        let mut set: Vec<String> = pool4
            .iter()
            .map(|e| format!("{}/{}", e.addr, e.prefix_len))
            .collect();
        set.sort();
        set.dedup();
        format!(
            "table ip {table} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
             ip saddr {{ {} }} oifname != \"{tun}\" masquerade\n  }}\n}}\n",
            set.join(", ")
        )
    }

    fn add(tun: &str, pool4: &[Pool4Entry]) -> anyhow::Result<Self> {
        let table = Self::table_name(tun);
        let ruleset = Self::ruleset(&table, tun, pool4);
        // Start from a clean table of ours (a crashed run may have left one).
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &table])
            .output();
        nft_stdin(&ruleset).with_context(|| format!("cannot add nftables table ip {table}"))?;
        tracing::info!("nftables table ip {table} added (masquerade of pool4)");
        Ok(Self { table })
    }

    /// The table for a new pool4, in one nft transaction (no moment without
    /// it).
    fn replace(&self, tun: &str, pool4: &[Pool4Entry]) -> anyhow::Result<()> {
        let table = &self.table;
        let ruleset = format!(
            "delete table ip {table}\n{}",
            Self::ruleset(table, tun, pool4)
        );
        nft_stdin(&ruleset).with_context(|| format!("cannot replace nftables table ip {table}"))?;
        tracing::info!("nftables table ip {table} replaced (masquerade of the new pool4)");
        Ok(())
    }
}

impl Drop for Masquerade {
    fn drop(&mut self) {
        match Command::new("nft")
            .args(["delete", "table", "ip", &self.table])
            .output()
        {
            Ok(out) if out.status.success() => {
                tracing::info!("nftables table ip {} removed", self.table);
            }
            Ok(out) => tracing::warn!(
                "cannot remove nftables table ip {}: {}",
                self.table,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(err) => tracing::warn!("cannot run nft: {err}"),
        }
    }
}

fn nft_stdin(ruleset: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run nft (is nftables installed?)")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(ruleset.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        anyhow::bail!("nft: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Seeing the state
// ---------------------------------------------------------------------------

/// The `/nat64/sessions` text: BIB entries, then sessions, per protocol.
fn render_sessions(shared: &Shared) -> String {
    let now = shared.now_ms();
    let mut bibs = Vec::new();
    let mut sessions = Vec::new();
    for i in 0..shared.shards.len() {
        let state = shared.lock(i);
        bibs.extend(state.bib_entries_at_most(LIST_MAX));
        sessions.extend(state.sessions_at_most(now, LIST_MAX));
    }
    let stats = shared.stats();
    let mut out = String::new();
    for proto in Proto::ALL {
        let i = Proto::ALL.iter().position(|p| *p == proto).unwrap_or(0);
        let _ = writeln!(
            out,
            "{} BIB entries: {}  sessions: {}  pool4 ports used: {}/{}",
            proto.as_str().to_uppercase(),
            stats.bib_entries[i],
            stats.sessions[i],
            stats.ports_used[i],
            stats.ports_total[i]
        );
        for b in bibs.iter().filter(|b| b.proto == proto).take(LIST_MAX) {
            let _ = writeln!(
                out,
                "  bib {} {} <-> {} sessions={}{}",
                proto,
                b.v6,
                b.v4,
                b.sessions,
                if b.is_static { " static" } else { "" }
            );
        }
        for s in sessions.iter().filter(|s| s.proto == proto).take(LIST_MAX) {
            let _ = writeln!(
                out,
                "  session {} {} {} -> {} {} expires_in={}s",
                proto,
                s.v6,
                s.v4,
                s.remote,
                s.tcp_state.map_or("-", |t| t.as_str()),
                s.expires_in_ms.div_ceil(1000)
            );
        }
        let listed = sessions
            .iter()
            .filter(|s| s.proto == proto)
            .count()
            .min(LIST_MAX);
        let all = usize::try_from(stats.sessions[i]).unwrap_or(usize::MAX);
        if all > listed {
            let _ = writeln!(out, "  ... {} more sessions not listed", all - listed);
        }
    }
    out
}

/// `sixgate_nat64_*`: counters bumped by the packet thread, gauges read from
/// the state at scrape time.
struct Metrics {
    shared: Arc<Shared>,
    packets: [Counter; 6],
    drops: Box<[Counter]>,
    drop_labels: Vec<&'static str>,
    tun_read_errors: Counter,
    tun_write_errors: Counter,
    vnet_errors: Counter,
    gso_packets: Counter,
    udp_gso_read: Counter,
    udp_coalesced: Counter,
    offload_fallbacks: Counter,
    tcp_probes: Counter,
}

impl Metrics {
    fn new(shared: Arc<Shared>) -> Self {
        let drop_labels = nat64::Drop::labels();
        Self {
            shared,
            packets: Default::default(),
            drops: drop_labels.iter().map(|_| Counter::new()).collect(),
            drop_labels,
            tun_read_errors: Counter::new(),
            tun_write_errors: Counter::new(),
            vnet_errors: Counter::new(),
            gso_packets: Counter::new(),
            udp_gso_read: Counter::new(),
            udp_coalesced: Counter::new(),
            offload_fallbacks: Counter::new(),
            tcp_probes: Counter::new(),
        }
    }

    fn write_counters(&self) -> WriteCounters<'_> {
        WriteCounters {
            write_errors: &self.tun_write_errors,
            coalesced: &self.udp_coalesced,
        }
    }

    fn offload_counters(&self) -> OffloadCounters<'_> {
        OffloadCounters {
            vnet_errors: &self.vnet_errors,
            gso_packets: &self.gso_packets,
            udp_gso_read: &self.udp_gso_read,
            write: self.write_counters(),
        }
    }

    #[inline]
    fn count(&self, verdict: Verdict) {
        let label = verdict.as_str();
        if let Some(i) = Verdict::LABELS.iter().position(|l| *l == label) {
            self.packets[i].inc();
        }
        if let Some(reason) = verdict.drop_reason() {
            let label = reason.as_str();
            if let Some(i) = self.drop_labels.iter().position(|l| *l == label) {
                self.drops[i].inc();
            }
        }
    }
}

impl Collect for Metrics {
    fn collect(&self, out: &mut Encoder) {
        for (label, counter) in Verdict::LABELS.iter().zip(&self.packets) {
            out.counter(
                "sixgate_nat64_packets_total",
                "Packets read from the TUN device, by what became of them (6to4, 4to6, hairpin, held, icmp_error, drop).",
                &[("direction", label)],
                counter.get(),
            );
        }
        let stats = self.shared.stats();
        for (label, counter) in self.drop_labels.iter().zip(self.drops.iter()) {
            // Held fragments that time out or fail on release are dropped
            // by the state, not by a packet's verdict.
            let by_state = match *label {
                l if l == nat64::Drop::FragmentTimeout.as_str() => stats.fragments_timed_out,
                l if l == nat64::Drop::FragmentReleaseFailed.as_str() => {
                    stats.fragments_release_failed
                }
                _ => 0,
            };
            out.counter(
                "sixgate_nat64_drops_total",
                "Packets not translated, by reason (an ICMP error may have been sent back).",
                &[("reason", label)],
                counter.get() + by_state,
            );
        }
        out.gauge(
            "sixgate_nat64_held_fragments",
            "Later fragments held until the first fragment of their datagram comes (at most 2 s).",
            &[],
            stats.fragments_held,
        );
        out.gauge(
            "sixgate_nat64_held_fragment_bytes",
            "Bytes of the later fragments held.",
            &[],
            stats.fragment_bytes_held,
        );
        // One family at a time: the text format wants each family's samples
        // together, under one HELP/TYPE.
        let per_proto: [(&str, &str, bool, [u64; 3]); 7] = [
            (
                "sixgate_nat64_sessions",
                "Sessions in the table, by protocol.",
                false,
                stats.sessions.map(u64::from),
            ),
            (
                "sixgate_nat64_bib_entries",
                "BIB entries (IPv6 transport address <-> pool4 transport address), by protocol.",
                false,
                stats.bib_entries.map(u64::from),
            ),
            (
                "sixgate_nat64_pool4_ports_used",
                "pool4 ports (ICMP identifiers) held by BIB entries, by protocol.",
                false,
                stats.ports_used,
            ),
            (
                "sixgate_nat64_pool4_ports",
                "pool4 ports (ICMP identifiers) configured, by protocol.",
                false,
                stats.ports_total,
            ),
            (
                "sixgate_nat64_sessions_created_total",
                "Sessions created, by protocol.",
                true,
                stats.sessions_created,
            ),
            (
                "sixgate_nat64_sessions_expired_total",
                "Sessions deleted when their lifetime ended, by protocol.",
                true,
                stats.sessions_expired,
            ),
            (
                "sixgate_nat64_sessions_purged_total",
                "Sessions deleted by a reload that removed their pool4 address or port or their static BIB entry, by protocol.",
                true,
                stats.sessions_purged,
            ),
        ];
        for (name, help, counter, values) in per_proto {
            for (proto, value) in Proto::ALL.iter().zip(values) {
                let labels = [("proto", proto.as_str())];
                if counter {
                    out.counter(name, help, &labels, value);
                } else {
                    out.gauge(name, help, &labels, value);
                }
            }
        }
        out.counter(
            "sixgate_nat64_gso_packets_total",
            "With offloads: TCP super-packets translated whole.",
            &[],
            self.gso_packets.get(),
        );
        out.counter(
            "sixgate_nat64_udp_gso_read_total",
            "With offloads: UDP super-packets read and cut into datagrams.",
            &[],
            self.udp_gso_read.get(),
        );
        out.counter(
            "sixgate_nat64_udp_coalesced_total",
            "With offloads: translated UDP datagrams written inside a UDP super-packet.",
            &[],
            self.udp_coalesced.get(),
        );
        out.counter(
            "sixgate_nat64_offload_fallbacks_total",
            "With offloads: super-packets whose translation was not one TCP packet (dropped).",
            &[],
            self.offload_fallbacks.get(),
        );
        out.counter(
            "sixgate_nat64_tcp_probes_total",
            "Probes written for ESTABLISHED TCP sessions idle for TCP_EST (RFC 6146 3.5.2.2), toward the IPv6 endpoint.",
            &[],
            self.tcp_probes.get(),
        );
        out.counter(
            "sixgate_nat64_tcp_probes_skipped_total",
            "ESTABLISHED TCP sessions idle for TCP_EST moved to TRANS without a probe because 4096 probes were waiting already.",
            &[],
            stats.tcp_probes_skipped,
        );
        out.counter(
            "sixgate_nat64_icmp_errors_suppressed_total",
            "ICMP errors not sent because of icmp_errors_per_second.",
            &[],
            stats.icmp_errors_suppressed,
        );
        for (op, counter) in [
            ("read", &self.tun_read_errors),
            ("write", &self.tun_write_errors),
            ("vnet_header", &self.vnet_errors),
        ] {
            out.counter(
                "sixgate_nat64_tun_errors_total",
                "Failed reads and writes on the TUN device.",
                &[("op", op)],
                counter.get(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("nat64.toml"), text).map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
[nat64]
tun = "sg-nat64"
prefix = "64:ff9b:1::/96"
pool4 = ["192.0.2.1", "192.0.2.8/30 tcp 1024-65535"]
manage_routes = true
masquerade = true
filtering = "address-dependent"
on_limit = "drop"
max_sessions = 1000
max_sessions_per_source = 10

[nat64.timeouts]
udp = "10m"
tcp_est = "3h"

[[nat64.static_bib]]
proto = "tcp"
ipv6 = "[2001:db8::80]:80"
ipv4 = "192.0.2.1:80"
"#;

    #[test]
    fn a_full_section_becomes_domain_types() {
        let config = parse(GOOD).unwrap();
        let section = config.nat64.unwrap();
        let core = section.state_config().unwrap();
        assert_eq!(core.pool4.proto(Proto::Tcp).ports(), 4535 + 4 * 64512);
        assert_eq!(core.pool4.proto(Proto::Udp).ports(), 4535);
        assert_eq!(core.timeouts.udp, Duration::from_secs(600));
        assert_eq!(core.timeouts.tcp_est, Duration::from_secs(3 * 3600));
        assert_eq!(core.timeouts.icmp, Duration::from_secs(60));
        assert_eq!(core.filtering, Filtering::AddressDependent);
        assert_eq!(core.limits.on_limit, LimitAction::Drop);
        assert_eq!(core.static_bib.len(), 1);
        let routes: Vec<String> = section.routes().iter().map(ToString::to_string).collect();
        assert_eq!(routes, ["64:ff9b:1::/96", "192.0.2.1/32", "192.0.2.8/30"]);
        assert_eq!(
            section.siit_template().own_ipv4,
            Some("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn defaults_follow_rfc_6146() {
        let config =
            parse("[nat64]\npool4 = [\"203.0.113.1\"]\nprefix = \"64:ff9b:1::/96\"\n").unwrap();
        let section = config.nat64.unwrap();
        let core = section.state_config().unwrap();
        assert_eq!(core.timeouts, Timeouts::default());
        assert_eq!(core.filtering, Filtering::EndpointIndependent);
        assert_eq!(section.tun.as_str(), DEFAULT_TUN);
        assert!(!section.manage_routes);
    }

    #[test]
    fn short_timeouts_are_refused_unless_allowed() {
        let text = "[nat64]\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"192.0.2.1\"]\n[nat64.timeouts]\nudp = \"30s\"\n";
        let err = parse(text).unwrap_err();
        assert!(err.contains("nat64.timeouts.udp"), "{err}");
        assert!(err.contains("120s"), "{err}");
        let allowed = text.replace(
            "[nat64.timeouts]",
            "allow_short_timeouts = true\n[nat64.timeouts]",
        );
        assert!(parse(&allowed).is_ok());
    }

    #[test]
    fn documentation_pool4_under_the_well_known_prefix_is_refused() {
        let err = parse("[nat64]\npool4 = [\"192.0.2.1\"]\n").unwrap_err();
        assert!(err.contains("nat64.pool4"), "{err}");
        assert!(err.contains("RFC 6052"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = parse("[nat64]\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"192.0.2.1 tcp 9-1\"]\n")
            .unwrap_err();
        assert!(err.contains("nat64.pool4"), "{err}");
        let err = parse(
            "[nat64]\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"192.0.2.1\"]\n[nat64.timeouts]\nudp = \"five\"\n",
        )
        .unwrap_err();
        assert!(err.contains("nat64.timeouts.udp"), "{err}");
        let err = parse(
            "[nat64]\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"192.0.2.1\"]\n[[nat64.static_bib]]\nproto = \"udp\"\nipv6 = \"[2001:db8::1]:53\"\nipv4 = \"198.51.100.1:53\"\n",
        )
        .unwrap_err();
        assert!(err.contains("nat64.static_bib"), "{err}");
        assert!(err.contains("not a pool4 address"), "{err}");
        let err = parse(
            "[nat64]\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"192.0.2.1\"]\nmasquerade = true\n",
        )
        .unwrap_err();
        assert!(err.contains("nat64.masquerade"), "{err}");
        let err =
            parse("[nat64]\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"192.0.2.1\"]\nworkers = 0\n")
                .unwrap_err();
        assert!(err.contains("nat64.workers"), "{err}");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("2h4m"), Ok(Duration::from_secs(7440)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        for bad in ["", "5", "m", "-5s", "1.5s", "5x", "99999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_split_the_total_limit_and_keep_the_per_source_one() {
        let limits = shard_limits(nat64::Limits::default(), 3);
        assert_eq!(limits.max_sessions, (1 << 20) / 3 + 1);
        assert_eq!(
            limits.max_sessions_per_source,
            nat64::Limits::default().max_sessions_per_source
        );
    }

    #[test]
    fn every_metric_family_is_declared_once() {
        let config =
            parse("[nat64]\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"192.0.2.1\"]\n").unwrap();
        let core = config.nat64.unwrap().state_config().unwrap();
        let prefix: Prefix64 = "64:ff9b:1::/96".parse().unwrap();
        let shared = Arc::new(Shared {
            shards: vec![Mutex::new(
                State::new(core.clone(), SplitMix64::new(1)).unwrap(),
            )],
            path: Swap::new(DataPath {
                translator: Translator::new(prefix, SiitConfig::default()),
                sharding: Sharding::new(1, prefix, &core, 1),
            }),
            start: Instant::now(),
        });
        let metrics = Metrics::new(shared);
        metrics.count(Verdict::SixToFour);
        metrics.count(Verdict::Drop(nat64::Drop::Fragment));
        let mut out = Encoder::new();
        metrics.collect(&mut out);
        let text = out.finish();
        let mut seen = std::collections::HashSet::new();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            assert!(seen.insert(line.to_owned()), "twice: {line}\n{text}");
        }
        assert!(
            text.contains("sixgate_nat64_packets_total{direction=\"6to4\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("sixgate_nat64_drops_total{reason=\"fragment\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("sixgate_nat64_pool4_ports{proto=\"udp\"} 4535\n"),
            "{text}"
        );
        assert!(
            text.contains("sixgate_nat64_icmp_errors_suppressed_total 0\n"),
            "{text}"
        );
    }

    /// One packet through `shared`'s shards with its current sharding.
    fn sharded(
        translator: &Translator,
        shared: &Shared,
        now: u64,
        packet: &mut [u8],
        out: &mut Packets,
    ) -> Verdict {
        translate_sharded(
            translator,
            &shared.path.get().0.sharding,
            shared,
            now,
            packet,
            out,
        )
    }

    fn sharded_shared(shards: usize) -> Shared {
        sharded_shared_with(shards, "", 5)
    }

    fn sharded_shared_with(shards: usize, extra: &str, seed: u64) -> Shared {
        let config = parse(&format!(
            "[nat64]\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"192.0.2.1\"]\n{extra}"
        ))
        .unwrap();
        let core = config.nat64.unwrap().state_config().unwrap();
        let prefix: Prefix64 = "64:ff9b:1::/96".parse().unwrap();
        Shared {
            shards: (0..shards)
                .map(|i| {
                    let rng = SplitMix64::new(u64::try_from(i).unwrap());
                    Mutex::new(State::new_shard(core.clone(), rng, i, shards).unwrap())
                })
                .collect(),
            path: Swap::new(DataPath {
                translator: Translator::new(prefix, SiitConfig::default()),
                sharding: Sharding::new(shards, prefix, &core, seed),
            }),
            start: Instant::now(),
        }
    }

    /// An IPv4 UDP datagram from 198.51.100.7:53 to 192.0.2.1:`port`, cut
    /// into fragments of 64 bytes of upper layer.
    fn reply_fragments(port: u16, ident: u16) -> Vec<Vec<u8>> {
        let mut whole = Vec::new();
        etherparse::PacketBuilder::ipv4([198, 51, 100, 7], [192, 0, 2, 1], 64)
            .udp(53, port)
            .write(&mut whole, &[0x5a; 200])
            .unwrap();
        let upper = &whole[20..];
        let n = upper.len().div_ceil(64);
        (0..n)
            .map(|i| {
                let data = &upper[i * 64..((i + 1) * 64).min(upper.len())];
                let mut header = etherparse::Ipv4Header::new(
                    u16::try_from(data.len()).unwrap(),
                    64,
                    etherparse::IpNumber::UDP,
                    [198, 51, 100, 7],
                    [192, 0, 2, 1],
                )
                .unwrap();
                header.identification = ident;
                header.more_fragments = i + 1 < n;
                header.fragment_offset =
                    etherparse::IpFragOffset::try_new(u16::try_from(i * 8).unwrap()).unwrap();
                header.header_checksum = header.calc_header_checksum();
                let mut p = header.to_bytes().to_vec();
                p.extend_from_slice(data);
                p
            })
            .collect()
    }

    #[test]
    fn sharded_reversed_ipv4_fragments_follow_their_first_fragment() {
        let shared = sharded_shared(4);
        let translator = Translator::new("64:ff9b:1::/96".parse().unwrap(), SiitConfig::default());
        let mut out = Packets::new();
        let mut query = Vec::new();
        etherparse::PacketBuilder::ipv6(
            "2001:db8::10".parse::<Ipv6Addr>().unwrap().octets(),
            "64:ff9b:1::c633:6407".parse::<Ipv6Addr>().unwrap().octets(),
            64,
        )
        .udp(40000, 53)
        .write(&mut query, b"query")
        .unwrap();
        let v = sharded(&translator, &shared, 0, &mut query, &mut out);
        assert_eq!(v, Verdict::SixToFour);
        let out4 = out.get(0).unwrap();
        let port = u16::from_be_bytes([out4[20], out4[21]]);
        let port_shard = nat64::shard_of_port(port, 4);
        let mut elsewhere = 0;
        for ident in 0..12u16 {
            let mut frags = reply_fragments(port, ident);
            assert_eq!(frags.len(), 4);
            let (key, _) = shared.path.get().0.sharding.fragment(&frags[1]).unwrap();
            if shared.path.get().0.sharding.holding_shard(&key) != port_shard {
                elsewhere += 1;
            }
            for f in frags[1..].iter_mut().rev() {
                let v = sharded(&translator, &shared, 10, f, &mut out);
                assert_eq!(v, Verdict::Held, "datagram {ident}");
            }
            let v = sharded(&translator, &shared, 10, &mut frags[0], &mut out);
            assert_eq!(v, Verdict::FourToSix);
            assert_eq!(
                out.len(),
                4,
                "datagram {ident}: the first and the three held"
            );
            for p in out.packets() {
                assert_eq!(
                    p[24..40],
                    "2001:db8::10".parse::<Ipv6Addr>().unwrap().octets()
                );
            }
        }
        assert!(elsewhere > 0, "some datagrams were held by another shard");
        assert_eq!(shared.stats().fragments_held, 0);
    }

    #[test]
    fn sharded_reversed_ipv6_fragments_of_a_static_entry_follow_their_first_fragment() {
        // A static entry's datagrams are routed by its pool4 port, their
        // later fragments (no port) by the source: pick a seed where the
        // two shards differ.
        let server: Ipv6Addr = "2001:db8::80".parse().unwrap();
        let statics = "[[nat64.static_bib]]\nproto = \"udp\"\nipv6 = \"[2001:db8::80]:9000\"\nipv4 = \"192.0.2.1:9000\"\n";
        let mut whole = Vec::new();
        etherparse::PacketBuilder::ipv6(
            server.octets(),
            "64:ff9b:1::c633:6407".parse::<Ipv6Addr>().unwrap().octets(),
            64,
        )
        .udp(9000, 5353)
        .write(&mut whole, &[0x33; 300])
        .unwrap();
        let upper = whole[40..].to_vec();
        let fragment = |i: usize, n: usize| {
            let data = &upper[i * 104..((i + 1) * 104).min(upper.len())];
            let mut p = whole[..40].to_vec();
            p[6] = 44;
            let word = (u16::try_from(i * 13).unwrap() << 3) | u16::from(i + 1 < n);
            p.extend_from_slice(&[17, 0]);
            p.extend_from_slice(&word.to_be_bytes());
            p.extend_from_slice(&0x0abc_def0u32.to_be_bytes());
            p.extend_from_slice(data);
            let len = u16::try_from(p.len() - 40).unwrap();
            p[4..6].copy_from_slice(&len.to_be_bytes());
            p
        };
        let n = upper.len().div_ceil(104);
        let mut frags: Vec<Vec<u8>> = (0..n).map(|i| fragment(i, n)).collect();
        let shared = (0..64)
            .map(|seed| sharded_shared_with(4, statics, seed))
            .find(|sh| {
                let (key, _) = sh.path.get().0.sharding.fragment(&frags[0]).unwrap();
                sh.path.get().0.sharding.holding_shard(&key)
                    != sh.path.get().0.sharding.route(&frags[0]).0
            })
            .expect("a seed that splits the static entry from its source's shard");
        let translator = Translator::new("64:ff9b:1::/96".parse().unwrap(), SiitConfig::default());
        let mut out = Packets::new();
        for f in frags[1..].iter_mut().rev() {
            let v = sharded(&translator, &shared, 0, f, &mut out);
            assert_eq!(v, Verdict::Held);
        }
        let v = sharded(&translator, &shared, 0, &mut frags[0], &mut out);
        assert_eq!(v, Verdict::SixToFour);
        assert_eq!(out.len(), n, "the first and the held ones");
        for p in out.packets() {
            assert_eq!(p[12..16], [192, 0, 2, 1], "from the static entry's address");
        }
        assert_eq!(shared.stats().fragments_held, 0);
    }

    #[test]
    fn held_fragments_that_time_out_are_counted_as_drops() {
        let shared = Arc::new(sharded_shared(2));
        let translator = Translator::new("64:ff9b:1::/96".parse().unwrap(), SiitConfig::default());
        let mut out = Packets::new();
        let mut later = reply_fragments(61001, 7).swap_remove(2);
        let v = sharded(&translator, &shared, 0, &mut later, &mut out);
        assert_eq!(v, Verdict::Held);
        let metrics = Metrics::new(Arc::clone(&shared));
        metrics.count(v);
        let mut text = Encoder::new();
        metrics.collect(&mut text);
        let text = text.finish();
        assert!(text.contains("sixgate_nat64_held_fragments 1\n"), "{text}");
        assert!(
            text.contains("sixgate_nat64_packets_total{direction=\"held\"} 1\n"),
            "{text}"
        );
        for i in 0..2 {
            shared.lock(i).handle_timeout(nat64::FRAGMENT_MIN_MS);
        }
        let mut text = Encoder::new();
        metrics.collect(&mut text);
        let text = text.finish();
        assert!(text.contains("sixgate_nat64_held_fragments 0\n"), "{text}");
        assert!(
            text.contains("sixgate_nat64_drops_total{reason=\"fragment_timeout\"} 1\n"),
            "{text}"
        );
    }

    fn running(text: &str) -> (Arc<Shared>, Section) {
        let section = parse(text).unwrap().nat64.unwrap();
        let core = section.state_config().unwrap();
        let shared = Arc::new(Shared {
            shards: vec![Mutex::new(
                State::new(core.clone(), SplitMix64::new(1)).unwrap(),
            )],
            path: Swap::new(DataPath {
                translator: Translator::new(section.prefix, section.siit_template()),
                sharding: Sharding::new(1, section.prefix, &core, 1),
            }),
            start: Instant::now(),
        });
        (shared, section)
    }

    #[test]
    fn reload_applies_pool4_and_static_bib_to_the_running_state() {
        let (shared, mut section) =
            running("[nat64]\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"192.0.2.1\"]\n");
        let new = parse(
            "[nat64]\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"192.0.2.9\"]\nfiltering = \"address-dependent\"\n\
             [[nat64.static_bib]]\nproto = \"tcp\"\nipv6 = \"[2001:db8::80]:80\"\nipv4 = \"192.0.2.9:80\"\n",
        )
        .unwrap()
        .nat64
        .unwrap();
        let mut routes = Routes::new("sg-none");
        let mut host = Host {
            tun: "sg-none",
            routes: &mut routes,
            masquerade: None,
        };
        let before = shared.path.generation.load(Ordering::Acquire);
        reload(&shared, &mut section, new, &mut host);
        assert_eq!(section.pool4, vec!["192.0.2.9".parse().unwrap()]);
        assert_eq!(section.filtering, FilteringName::AddressDependent);
        let state = shared.lock(0);
        assert!(state.is_pool4_addr("192.0.2.9".parse().unwrap()));
        assert!(!state.is_pool4_addr("192.0.2.1".parse().unwrap()));
        assert_eq!(
            state.lookup_v4(Proto::Tcp, Taddr4::new("192.0.2.9".parse().unwrap(), 80)),
            Some(Taddr6::new("2001:db8::80".parse().unwrap(), 80))
        );
        assert_ne!(shared.path.generation.load(Ordering::Acquire), before);
    }

    #[test]
    fn a_reload_invalid_with_the_kept_prefix_is_refused_whole() {
        // The prefix needs a restart, so the new pool4 is checked against the
        // running well-known prefix, which may not carry 192.0.2.0/24.
        let (shared, mut section) = running("[nat64]\npool4 = [\"8.8.8.8\"]\n");
        let new = parse("[nat64]\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"192.0.2.1\"]\n")
            .unwrap()
            .nat64
            .unwrap();
        let old_pool = section.pool4.clone();
        let mut routes = Routes::new("sg-none");
        let mut host = Host {
            tun: "sg-none",
            routes: &mut routes,
            masquerade: None,
        };
        let before = shared.path.generation.load(Ordering::Acquire);
        assert!(!reload(&shared, &mut section, new, &mut host));
        assert_eq!(section.pool4, old_pool);
        assert_eq!(section.prefix, WELL_KNOWN);
        let state = shared.lock(0);
        assert!(state.is_pool4_addr("8.8.8.8".parse().unwrap()));
        assert!(!state.is_pool4_addr("192.0.2.1".parse().unwrap()));
        assert_eq!(shared.path.generation.load(Ordering::Acquire), before);
    }

    #[test]
    fn masquerade_table_names_are_nft_identifiers() {
        assert_eq!(
            Masquerade::table_name("sg-nat64.0"),
            "sixgate_nat64_sg_nat64_0"
        );
    }
}
