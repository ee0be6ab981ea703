//! `sixgate siit` and the `[siit]` section of `sixgate run`: stateless
//! IP/ICMP translation (RFC 7915) with explicit address mappings (RFC 7757)
//! over a TUN device.
//!
//! The driver is thin: a TUN device, the routes into it, and one thread per
//! queue that reads a packet, hands it to [`sixgate_xlat::Siit::translate`],
//! writes what comes out back to the device and counts the verdict. With
//! offloads it also carries the virtio-net header of TCP super-packets across
//! the translation. Everything RFC 7915 says happens in `sixgate-xlat`.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use serde::{Deserialize, Deserializer};
use sixgate_telemetry::{Collect, Counter, Encoder};
use sixgate_xlat::{
    DropReason, EamEntry, Ipv4Prefix, Ipv6Prefix, Output, Prefix64, Siit, SiitConfig, Verdict,
};

use crate::config::Invalid;
use crate::context::Context;
use crate::offload::udp::{UdpOffload, WriteCounters};
use crate::offload::{
    self, complete_checksum, write_tcp_super_packet, OffloadCounters, Read, TcpPartial,
};
use crate::routes::{warn_if_not_forwarding, RoutePrefix, Routes};
use crate::tun::{self, Ready, Tun, VnetHdr, Waker};

/// The TUN device name when `tun` is not set.
pub const DEFAULT_TUN: &str = "siit0";
/// The TUN device MTU when `mtu` is not set.
pub const DEFAULT_MTU: u32 = 1500;
/// More queues than this buys nothing but threads.
const MAX_QUEUES: usize = 64;

/// The `[siit]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Name of the TUN device to create (`%d` lets the kernel number it).
    #[serde(default = "default_tun")]
    pub tun: TunName,
    /// MTU of the TUN device.
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    /// TUN queues, one translating thread each.
    #[serde(default = "default_queues")]
    pub queues: usize,
    /// TUN offloads: TCP super-packets and partial checksums (`IFF_VNET_HDR`).
    #[serde(default = "yes")]
    pub offload: bool,
    /// Add the routes into the TUN device at start and remove them at exit.
    #[serde(default)]
    pub manage_routes: bool,
    /// RFC 6052 prefix for addresses the EAM table does not cover.
    #[serde(default)]
    pub pool6: Option<Prefix64>,
    /// RFC 7757 explicit address mappings.
    #[serde(default)]
    pub eam: Vec<Eam>,
    /// RFC 7757 §4.2 hairpinning.
    #[serde(default = "yes")]
    pub hairpinning: bool,
    /// RFC 6791: IPv4 sources for ICMPv6 errors from untranslatable addresses.
    #[serde(default, deserialize_with = "from_str_list")]
    pub rfc6791_v4: Vec<Ipv4Prefix>,
    /// The same for ICMPv4 errors from IPv4 addresses without a mapping.
    #[serde(default, deserialize_with = "from_str_option")]
    pub rfc6791_v6: Option<Ipv6Prefix>,
    /// RFC 7915 lowest-ipv6-mtu.
    #[serde(default = "default_lowest_ipv6_mtu")]
    pub lowest_ipv6_mtu: u16,
    /// RFC 7915 §4.1: zero the IPv6 Traffic Class instead of copying the TOS.
    #[serde(default)]
    pub reset_traffic_class: bool,
    /// RFC 7915 §5.1: write `new_tos` instead of copying the Traffic Class.
    #[serde(default)]
    pub reset_tos: bool,
    /// The TOS written when `reset_tos` is set.
    #[serde(default)]
    pub new_tos: u8,
    /// Source of the ICMPv4 errors the translator sends itself.
    #[serde(default)]
    pub own_ipv4: Option<Ipv4Addr>,
    /// Source of the ICMPv6 errors the translator sends itself.
    #[serde(default)]
    pub own_ipv6: Option<Ipv6Addr>,
    /// RFC 1191 MTU plateaus for PTB / Frag Needed with an MTU of zero.
    #[serde(default)]
    pub mtu_plateaus: Option<Vec<u16>>,
}

impl Default for Section {
    fn default() -> Self {
        let core = SiitConfig::default();
        Self {
            tun: default_tun(),
            mtu: DEFAULT_MTU,
            queues: 1,
            offload: true,
            manage_routes: false,
            pool6: core.pool6,
            eam: Vec::new(),
            hairpinning: core.hairpinning,
            rfc6791_v4: core.rfc6791_v4,
            rfc6791_v6: core.rfc6791_v6,
            lowest_ipv6_mtu: core.lowest_ipv6_mtu,
            reset_traffic_class: core.reset_traffic_class,
            reset_tos: core.reset_tos,
            new_tos: core.new_tos,
            own_ipv4: core.own_ipv4,
            own_ipv6: core.own_ipv6,
            mtu_plateaus: None,
        }
    }
}

fn default_tun() -> TunName {
    TunName(DEFAULT_TUN.to_owned())
}
fn default_mtu() -> u32 {
    DEFAULT_MTU
}
fn default_queues() -> usize {
    1
}
fn default_lowest_ipv6_mtu() -> u16 {
    SiitConfig::default().lowest_ipv6_mtu
}
fn yes() -> bool {
    true
}

/// A valid interface name (1 to 15 bytes, nothing the kernel refuses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunName(String);

impl TunName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TunName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        tun::check_name(s)
            .map(|()| Self(s.to_owned()))
            .map_err(|reason| format!("invalid interface name {s:?}: {reason}"))
    }
}

impl<'de> Deserialize<'de> for TunName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One `[[siit.eam]]` entry (or `{ ipv4 = "...", ipv6 = "..." }` in a list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawEam")]
pub struct Eam {
    pub entry: EamEntry,
    /// Which of the two prefixes `manage_routes` sends into the TUN device.
    pub route: Option<RouteSide>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEam {
    #[serde(deserialize_with = "from_str")]
    ipv4: Ipv4Prefix,
    #[serde(deserialize_with = "from_str")]
    ipv6: Ipv6Prefix,
    #[serde(default)]
    route: Option<RouteSide>,
}

impl TryFrom<RawEam> for Eam {
    type Error = String;
    fn try_from(raw: RawEam) -> Result<Self, Self::Error> {
        let entry = EamEntry::new(raw.ipv4, raw.ipv6).map_err(|err| err.to_string())?;
        Ok(Self {
            entry,
            route: raw.route,
        })
    }
}

/// Which prefix of an EAM entry lives behind the translator, that is, which
/// one gets a route into the TUN device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteSide {
    /// Route the IPv4 prefix into the TUN device: the host is an IPv6 host
    /// that IPv4 clients reach at this IPv4 address.
    Ipv4,
    /// Route the IPv6 prefix into the TUN device: the host is an IPv4 host
    /// that IPv6 clients reach at this IPv6 address.
    Ipv6,
    /// No route: the operator routes this entry.
    None,
}

fn from_str<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let text = String::deserialize(d)?;
    text.parse()
        .map_err(|err| serde::de::Error::custom(format!("{text:?}: {err}")))
}

fn from_str_option<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    from_str(d).map(Some)
}

fn from_str_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    Vec::<String>::deserialize(d)?
        .into_iter()
        .map(|text| {
            text.parse()
                .map_err(|err| serde::de::Error::custom(format!("{text:?}: {err}")))
        })
        .collect()
}

impl Section {
    /// The translator's configuration.
    pub fn siit_config(&self) -> SiitConfig {
        let default = SiitConfig::default();
        SiitConfig {
            pool6: self.pool6,
            eam: self.eam.iter().map(|eam| eam.entry).collect(),
            hairpinning: self.hairpinning,
            rfc6791_v4: self.rfc6791_v4.clone(),
            rfc6791_v6: self.rfc6791_v6,
            lowest_ipv6_mtu: self.lowest_ipv6_mtu,
            reset_traffic_class: self.reset_traffic_class,
            reset_tos: self.reset_tos,
            new_tos: self.new_tos,
            own_ipv4: self.own_ipv4,
            own_ipv6: self.own_ipv6,
            mtu_plateaus: self.mtu_plateaus.clone().unwrap_or(default.mtu_plateaus),
        }
    }

    /// The routes `manage_routes = true` adds into the TUN device: pool6,
    /// the routed side of each EAM entry, and the addresses the translator
    /// uses as sources (its own and the RFC 6791 pools), so that the kernel
    /// takes packets from them as coming from the TUN side.
    pub fn routes(&self) -> Vec<RoutePrefix> {
        let mut routes = Vec::new();
        if let Some(pool6) = self.pool6 {
            routes.push(RoutePrefix::new(pool6.addr(), pool6.prefix_len()));
        }
        for eam in &self.eam {
            match eam.route {
                Some(RouteSide::Ipv4) => {
                    let v4 = eam.entry.v4();
                    routes.push(RoutePrefix::new(v4.addr(), v4.len()));
                }
                Some(RouteSide::Ipv6) => {
                    let v6 = eam.entry.v6();
                    routes.push(RoutePrefix::new(v6.addr(), v6.len()));
                }
                Some(RouteSide::None) | None => {}
            }
        }
        for pool in &self.rfc6791_v4 {
            routes.push(RoutePrefix::new(pool.addr(), pool.len()));
        }
        if let Some(pool) = self.rfc6791_v6 {
            routes.push(RoutePrefix::new(pool.addr(), pool.len()));
        }
        if let Some(own) = self.own_ipv4 {
            routes.push(RoutePrefix::new(own, 32));
        }
        if let Some(own) = self.own_ipv6 {
            routes.push(RoutePrefix::new(own, 128));
        }
        // Two keys may name the same prefix (an own address inside the RFC
        // 6791 pool, say): add each route once.
        let mut unique: Vec<RoutePrefix> = Vec::with_capacity(routes.len());
        for route in routes {
            if !unique.contains(&route) {
                unique.push(route);
            }
        }
        unique
    }
}

/// Checks of the section that need more than one value at a time.
pub fn validate(section: &Section) -> Result<(), Invalid> {
    tun::check_mtu("siit.mtu", section.mtu)?;
    if !(1..=MAX_QUEUES).contains(&section.queues) {
        return Err(Invalid::new(
            "siit.queues",
            format!("{} is outside 1..={MAX_QUEUES}", section.queues),
        ));
    }
    if section.manage_routes {
        for (i, eam) in section.eam.iter().enumerate() {
            if eam.route.is_none() {
                return Err(Invalid::new(
                    format!("siit.eam[{i}].route"),
                    format!(
                        "manage_routes = true needs to know which side of {} <-> {} to route into the tun: \
                         \"ipv6\" (an IPv4 host reached from IPv6), \"ipv4\" (an IPv6 host reached from IPv4) or \"none\"",
                        eam.entry.v4(),
                        eam.entry.v6()
                    ),
                ));
            }
        }
    }
    section
        .siit_config()
        .validate()
        .map_err(|err| Invalid::new(format!("siit.{}", err.field), err.reason))
}

/// Runs the part until `ctx.shutdown` is cancelled.
pub async fn serve(section: Section, ctx: Context) -> anyhow::Result<()> {
    let ready = ctx.health.part("siit");
    let siit = Siit::new(section.siit_config());
    let metrics = Arc::new(Metrics::new());
    ctx.registry.register(metrics.clone());

    let queues = Tun::open_queues(section.tun.as_str(), section.queues, section.offload)?;
    let Some(tun) = queues.first() else {
        anyhow::bail!("no TUN queue was opened");
    };
    tun.set_mtu(section.mtu)?;
    tun.set_up()?;
    let name = tun.name().to_owned();
    tracing::info!(
        "siit opened tun {name} (mtu {}, {} queue{}, offload {})",
        section.mtu,
        queues.len(),
        if queues.len() == 1 { "" } else { "s" },
        if section.offload { "on" } else { "off" }
    );
    let queues: Vec<Arc<Tun>> = queues.into_iter().map(Arc::new).collect();
    warn_if_not_forwarding();

    // Declared after `queues`, so dropped before them: the routes are
    // deleted while the device still exists, on every path out of here.
    let mut routes = Routes::new(&name);
    if section.manage_routes {
        for route in section.routes() {
            routes.add(route)?;
        }
    }

    let translator = Arc::new(Translator::new(siit));
    let waker =
        Arc::new(Waker::new().context("cannot create the eventfd that stops the packet threads")?);
    let mut threads = Vec::with_capacity(queues.len());
    let mut done = tokio::task::JoinSet::new();
    for (i, queue) in queues.iter().enumerate() {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let (queue, stop, translator, metrics) = (
            Arc::clone(queue),
            Arc::clone(&waker),
            Arc::clone(&translator),
            Arc::clone(&metrics),
        );
        let offload = section.offload;
        let spawned = std::thread::Builder::new()
            .name(format!("siit-tun-{i}"))
            .spawn(move || {
                let result = packet_loop(&queue, &stop, &translator, &metrics, offload);
                let _ = done_tx.send(result);
            });
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(err) => {
                waker.wake();
                for thread in threads {
                    let _ = thread.join();
                }
                return Err(err).context("cannot start a packet thread");
            }
        }
        done.spawn(async move {
            done_rx
                .await
                .unwrap_or_else(|_| Err(io::Error::other("the packet thread ended without a word")))
        });
    }

    let status = Arc::new(Mutex::new(describe(&name, &section, &routes)));
    {
        let status = Arc::clone(&status);
        ctx.endpoints.add("/siit", move || {
            status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        });
    }

    ready.set(true);
    tracing::info!(
        "siit running on tun {name} (mtu {}, pool6 {}, {} eam entries, {} routes)",
        section.mtu,
        section
            .pool6
            .map_or_else(|| "none".to_owned(), |p| p.to_string()),
        section.eam.len(),
        routes.added().len()
    );

    // Run until shutdown, or until a packet thread fails (then stop them
    // all); apply each reloaded config (SIGHUP) on the way.
    let mut failure = None;
    let mut running = section;
    let mut config_rx = ctx.config.clone();
    config_rx.mark_unchanged();
    let mut watching = true;
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            Some(joined) = done.join_next() => {
                if let Ok(Err(err)) = joined {
                    failure = Some(err);
                }
                break;
            }
            changed = config_rx.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    continue;
                }
                let new = config_rx.borrow_and_update().siit.clone();
                match new {
                    Some(new) => {
                        reload(&mut running, new, &translator, &mut routes);
                        *status.lock().unwrap_or_else(PoisonError::into_inner) =
                            describe(&name, &running, &routes);
                    }
                    None => tracing::warn!(
                        "siit: the reloaded config has no [siit] section; still running (restart to stop it)"
                    ),
                }
            }
        }
    }
    ready.set(false);
    waker.wake();
    while let Some(joined) = done.join_next().await {
        if let Ok(Err(err)) = joined {
            failure.get_or_insert(err);
        }
    }
    for thread in threads {
        let _ = thread.join();
    }
    routes.remove_all();
    drop(queues);
    match failure {
        None => {
            tracing::info!("siit stopped");
            Ok(())
        }
        Some(err) => Err(err).context("the packet loop failed"),
    }
}

/// The text of the admin port's `/siit`: the device, the translation
/// settings in force, the EAM table and the routes sixgate added.
fn describe(tun: &str, section: &Section, routes: &Routes) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "tun {tun} mtu {} queues {}",
        section.mtu, section.queues
    );
    let _ = writeln!(
        text,
        "pool6 {}",
        section
            .pool6
            .map_or_else(|| "none".to_owned(), |p| p.to_string())
    );
    let _ = writeln!(text, "hairpinning {}", section.hairpinning);
    let _ = writeln!(text, "lowest_ipv6_mtu {}", section.lowest_ipv6_mtu);
    let _ = writeln!(text, "eam entries {}", section.eam.len());
    for eam in &section.eam {
        let _ = writeln!(text, "  eam {} <-> {}", eam.entry.v4(), eam.entry.v6());
    }
    let _ = writeln!(text, "routes {}", routes.added().len());
    for route in routes.added() {
        let _ = writeln!(text, "  route {route} dev {tun}");
    }
    text
}

/// Applies a reloaded `[siit]` section: a new translator (EAM table, pool6,
/// every translation option) and the routes it implies. The device itself
/// (`tun`, `mtu`, `queues`) stays as it is until a restart.
fn reload(running: &mut Section, new: Section, translator: &Translator, routes: &mut Routes) {
    for (key, changed) in [
        ("tun", new.tun != running.tun),
        ("mtu", new.mtu != running.mtu),
        ("queues", new.queues != running.queues),
        ("offload", new.offload != running.offload),
    ] {
        if changed {
            tracing::warn!("siit: a new siit.{key} takes effect only after a restart");
        }
    }
    let config = new.siit_config();
    if config != running.siit_config() {
        translator.replace(Siit::new(config));
    }
    let wanted = if new.manage_routes {
        new.routes()
    } else {
        Vec::new()
    };
    let failed = routes.reconcile(&wanted);
    tracing::info!(
        "siit reloaded: pool6 {}, {} eam entries, {} routes{}",
        new.pool6
            .map_or_else(|| "none".to_owned(), |p| p.to_string()),
        new.eam.len(),
        routes.added().len(),
        if failed == 0 {
            String::new()
        } else {
            format!(" ({failed} route changes failed, see above)")
        }
    );
    let (tun, mtu, queues, offload) = (
        running.tun.clone(),
        running.mtu,
        running.queues,
        running.offload,
    );
    *running = Section {
        tun,
        mtu,
        queues,
        offload,
        ..new
    };
}

/// The translator in use, replaceable while packets flow.
///
/// Each packet thread keeps its own `Arc<Siit>` and compares a generation
/// number before each packet (one relaxed-cost atomic load); only when it
/// changed does it take the lock to pick up the new translator. No lock and
/// no reference-count traffic per packet in the steady state.
struct Translator {
    generation: AtomicU64,
    current: Mutex<Arc<Siit>>,
}

impl Translator {
    fn new(siit: Siit) -> Self {
        Self {
            generation: AtomicU64::new(0),
            current: Mutex::new(Arc::new(siit)),
        }
    }

    fn replace(&self, siit: Siit) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(siit);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Refreshes `local` if a new translator was installed since `seen`.
    #[inline]
    fn refresh(&self, local: &mut Arc<Siit>, seen: &mut u64) {
        let generation = self.generation.load(Ordering::Acquire);
        if generation != *seen {
            *local = Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner));
            *seen = generation;
        }
    }

    fn load(&self) -> (Arc<Siit>, u64) {
        let generation = self.generation.load(Ordering::Acquire);
        let current = Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner));
        (current, generation)
    }
}

/// Reads, translates and writes packets until `waker` is woken. Nothing is
/// allocated here per packet: one receive buffer and one [`Output`] are
/// reused for the life of the loop. With `offload`, the datagrams of one
/// flow translated between two waits leave as one UDP super-packet
/// ([`UdpOffload`]).
fn packet_loop(
    tun: &Tun,
    waker: &Waker,
    translator: &Translator,
    metrics: &Metrics,
    offload: bool,
) -> io::Result<()> {
    let mut buf = vec![0u8; tun::MAX_PACKET + VnetHdr::LEN];
    let mut out = Output::new();
    let mut writer = UdpOffload::new();
    let (mut siit, mut seen) = translator.load();
    while !waker.is_woken() {
        let len = match tun.recv(&mut buf) {
            Ok(len) => len,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                writer.coalescer.flush(tun, metrics.write_counters());
                if tun.wait(waker)? == Ready::Woken {
                    break;
                }
                continue;
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
        translator.refresh(&mut siit, &mut seen);
        if offload {
            offloaded(tun, &siit, metrics, packet, &mut out, &mut writer);
            continue;
        }
        let verdict = siit.translate(packet, &mut out);
        metrics.count(verdict);
        tracing::trace!(len, verdict = verdict.as_str(), out = out.len(), "packet");
        for packet in out.packets() {
            if let Err(err) = tun.send(packet) {
                metrics.tun_write_errors.inc();
                tracing::trace!("tun write failed: {err}");
            }
        }
    }
    Ok(())
}

/// One packet read from a device with offloads: `raw` is a [`VnetHdr`]
/// and the packet (see [`offload::read`]).
///
/// A TCP super-packet (GSO) keeps its partial checksum: the core translates
/// its headers (its incremental checksum update on the partial field is
/// then overwritten), the driver writes the new pseudo-header sum into the
/// checksum field and a header with the other family's GSO type in front,
/// and the kernel cuts the segments on the way out. A UDP super-packet is
/// cut into its datagrams, each translated on its own (the writer joins
/// them again). Anything else with a partial checksum gets it completed
/// here first and goes through the core as a plain packet; so does a
/// super-packet whose translation is not one TCP packet (fragments, say).
fn offloaded(
    tun: &Tun,
    siit: &Siit,
    metrics: &Metrics,
    raw: &mut [u8],
    out: &mut Output,
    writer: &mut UdpOffload,
) {
    let counters = metrics.offload_counters();
    let packet = match offload::read(raw, &metrics.vnet_errors) {
        None => return,
        Some(Read::Plain(packet)) => packet,
        Some(Read::UdpSuper(hdr, packet)) => {
            writer.for_each_datagram(packet, &hdr, counters, |datagram, coalescer| {
                let verdict = siit.translate(datagram, out);
                metrics.count(verdict);
                for packet in out.packets() {
                    coalescer.write(tun, packet, counters.write);
                }
            });
            return;
        }
        Some(Read::TcpSuper(hdr, packet)) => {
            let verdict = siit.translate(packet, out);
            let translated = matches!(
                verdict,
                Verdict::FourToSix | Verdict::SixToFour | Verdict::Hairpin
            );
            if !translated {
                metrics.count(verdict);
                writer.write_all(tun, out.packets(), counters.write);
                return;
            }
            if let (1, Some(segment)) = (out.len(), out.get(0)) {
                if let Some(tcp) = TcpPartial::of(segment) {
                    metrics.count(verdict);
                    write_tcp_super_packet(tun, writer, &hdr, segment, &tcp, counters);
                    return;
                }
            }
            // Not one TCP packet: complete the checksum and start again plain.
            metrics.offload_fallbacks.inc();
            if !complete_checksum(packet, hdr.csum_start, hdr.csum_offset) {
                metrics.vnet_errors.inc();
                return;
            }
            packet
        }
    };
    let verdict = siit.translate(packet, out);
    metrics.count(verdict);
    writer.write_all(tun, out.packets(), counters.write);
}

/// The packet verdicts, in the order of [`Verdict::LABELS`].
fn verdict_slot(verdict: Verdict) -> usize {
    match verdict {
        Verdict::FourToSix => 0,
        Verdict::SixToFour => 1,
        Verdict::Hairpin => 2,
        Verdict::IcmpError(_) => 3,
        Verdict::Drop(_) => 4,
    }
}

/// `sixgate_siit_*` counters: relaxed atomics bumped by the packet thread.
struct Metrics {
    packets: [Counter; 5],
    drops: Box<[Counter]>,
    tun_read_errors: Counter,
    tun_write_errors: Counter,
    vnet_errors: Counter,
    offload_fallbacks: Counter,
    gso_packets: Counter,
    udp_gso_read: Counter,
    udp_coalesced: Counter,
}

impl Metrics {
    fn new() -> Self {
        Self {
            packets: Default::default(),
            drops: DropReason::ALL.iter().map(|_| Counter::new()).collect(),
            tun_read_errors: Counter::new(),
            tun_write_errors: Counter::new(),
            vnet_errors: Counter::new(),
            offload_fallbacks: Counter::new(),
            gso_packets: Counter::new(),
            udp_gso_read: Counter::new(),
            udp_coalesced: Counter::new(),
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
        if let Some(counter) = self.packets.get(verdict_slot(verdict)) {
            counter.inc();
        }
        if let Some(reason) = verdict.drop_reason() {
            if let Some(counter) = DropReason::ALL
                .iter()
                .position(|&r| r == reason)
                .and_then(|i| self.drops.get(i))
            {
                counter.inc();
            }
        }
    }
}

impl Collect for Metrics {
    fn collect(&self, out: &mut Encoder) {
        for (label, counter) in Verdict::LABELS.iter().zip(&self.packets) {
            out.counter(
                "sixgate_siit_packets_total",
                "Packets read from the TUN device, by what became of them (4to6, 6to4, hairpin, icmp_error, drop).",
                &[("direction", label)],
                counter.get(),
            );
        }
        for (reason, counter) in DropReason::ALL.iter().zip(self.drops.iter()) {
            out.counter(
                "sixgate_siit_drops_total",
                "Packets not translated, by reason (an ICMP error may have been sent back).",
                &[("reason", reason.as_str())],
                counter.get(),
            );
        }
        out.counter(
            "sixgate_siit_tun_errors_total",
            "Failed reads and writes on the TUN device.",
            &[("op", "read")],
            self.tun_read_errors.get(),
        );
        out.counter(
            "sixgate_siit_tun_errors_total",
            "Failed reads and writes on the TUN device.",
            &[("op", "write")],
            self.tun_write_errors.get(),
        );
        out.counter(
            "sixgate_siit_tun_errors_total",
            "Failed reads and writes on the TUN device.",
            &[("op", "vnet_header")],
            self.vnet_errors.get(),
        );
        out.counter(
            "sixgate_siit_gso_packets_total",
            "TCP super-packets translated whole and left to the kernel to segment (offload = true).",
            &[],
            self.gso_packets.get(),
        );
        out.counter(
            "sixgate_siit_udp_gso_read_total",
            "UDP super-packets read and cut into datagrams (offload = true).",
            &[],
            self.udp_gso_read.get(),
        );
        out.counter(
            "sixgate_siit_udp_coalesced_total",
            "Translated UDP datagrams written inside a UDP super-packet (offload = true).",
            &[],
            self.udp_coalesced.get(),
        );
        out.counter(
            "sixgate_siit_offload_fallbacks_total",
            "TCP super-packets whose checksum was completed in user space because their translation was not one TCP packet.",
            &[],
            self.offload_fallbacks.get(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("siit.toml"), text).map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
[siit]
tun = "sg-siit"
mtu = 1500
manage_routes = true
pool6 = "64:ff9b:1::/96"
own_ipv4 = "192.0.2.1"
own_ipv6 = "2001:db8:ff::1"
rfc6791_v4 = ["192.0.2.128/25"]
eam = [
  { ipv4 = "198.51.100.2", ipv6 = "2001:db8:46::2", route = "ipv6" },
  { ipv4 = "192.0.2.6", ipv6 = "2001:db8:6::2", route = "ipv4" },
]
"#;

    #[test]
    fn a_full_section_becomes_domain_types() {
        let config = parse(GOOD).unwrap();
        let section = config.siit.unwrap();
        assert_eq!(section.tun.as_str(), "sg-siit");
        assert_eq!(section.eam.len(), 2);
        assert_eq!(section.eam[0].entry.v6().len(), 128);
        let core = section.siit_config();
        assert_eq!(core.lowest_ipv6_mtu, 1280);
        assert!(core.hairpinning);
        assert_eq!(core.pool6.unwrap().to_string(), "64:ff9b:1::/96");
        let routes: Vec<String> = section.routes().iter().map(ToString::to_string).collect();
        assert_eq!(
            routes,
            [
                "64:ff9b:1::/96",
                "2001:db8:46::2/128",
                "192.0.2.6/32",
                "192.0.2.128/25",
                "192.0.2.1/32",
                "2001:db8:ff::1/128"
            ]
        );
    }

    #[test]
    fn defaults_apply_to_a_minimal_section() {
        let config = parse("[siit]\npool6 = \"64:ff9b:1::/96\"\n").unwrap();
        let section = config.siit.unwrap();
        assert_eq!(section.tun.as_str(), DEFAULT_TUN);
        assert_eq!(section.mtu, DEFAULT_MTU);
        assert_eq!(section.queues, 1);
        assert!(section.offload);
        assert!(!section.manage_routes);
        assert_eq!(
            section.siit_config().mtu_plateaus,
            SiitConfig::default().mtu_plateaus
        );
    }

    #[test]
    fn bad_eam_prefix_names_the_entry_and_the_reason() {
        let err =
            parse("[siit]\neam = [ { ipv4 = \"192.0.2.0/24\", ipv6 = \"2001:db8::/64\" } ]\n")
                .unwrap_err();
        assert!(err.starts_with("siit.toml:2:"), "{err}");
        assert!(err.contains("siit.eam[0]"), "{err}");
        assert!(err.contains("suffix lengths differ"), "{err}");
    }

    #[test]
    fn bad_address_names_the_key() {
        let err = parse("[siit]\npool6 = \"64:ff9b:1::/96\"\nrfc6791_v4 = [\"192.0.2.300/24\"]\n")
            .unwrap_err();
        assert!(err.starts_with("siit.toml:3:"), "{err}");
        assert!(err.contains("siit.rfc6791_v4"), "{err}");
        assert!(err.contains("192.0.2.300/24"), "{err}");
    }

    #[test]
    fn long_tun_name_is_refused() {
        let err = parse("[siit]\ntun = \"much-too-long-name\"\npool6 = \"64:ff9b:1::/96\"\n")
            .unwrap_err();
        assert!(err.contains("siit.tun"), "{err}");
        assert!(err.contains("longer than 15 bytes"), "{err}");
    }

    #[test]
    fn managed_routes_need_a_side_for_each_eam_entry() {
        let err = parse(
            "[siit]\nmanage_routes = true\neam = [\n { ipv4 = \"192.0.2.1\", ipv6 = \"2001:db8::1\" },\n]\n",
        )
        .unwrap_err();
        assert!(err.contains("siit.eam[0].route"), "{err}");
        assert!(err.starts_with("siit.toml:4:"), "{err}");
    }

    #[test]
    fn nothing_to_translate_is_refused() {
        let err = parse("[siit]\ntun = \"x\"\n").unwrap_err();
        assert!(err.contains("siit.pool6"), "{err}");
    }

    #[test]
    fn zero_queues_are_refused() {
        let err = parse("[siit]\nqueues = 0\npool6 = \"64:ff9b:1::/96\"\n").unwrap_err();
        assert!(err.starts_with("siit.toml:2:"), "{err}");
        assert!(err.contains("siit.queues"), "{err}");
    }

    #[test]
    fn small_mtu_is_refused() {
        let err = parse("[siit]\nmtu = 1000\npool6 = \"64:ff9b:1::/96\"\n").unwrap_err();
        assert!(err.starts_with("siit.toml:2:"), "{err}");
        assert!(err.contains("siit.mtu"), "{err}");
    }

    #[test]
    fn verdict_slots_follow_the_core_labels() {
        for verdict in [
            Verdict::FourToSix,
            Verdict::SixToFour,
            Verdict::Hairpin,
            Verdict::IcmpError(DropReason::TtlExpired),
            Verdict::Drop(DropReason::Unsupported),
        ] {
            assert_eq!(Verdict::LABELS[verdict_slot(verdict)], verdict.as_str());
        }
    }

    #[test]
    fn drops_are_counted_by_reason() {
        let metrics = Metrics::new();
        metrics.count(Verdict::Drop(DropReason::MalformedIpv4));
        metrics.count(Verdict::IcmpError(DropReason::HopLimitExpired));
        metrics.count(Verdict::SixToFour);
        let mut out = Encoder::new();
        metrics.collect(&mut out);
        let text = out.finish();
        assert!(
            text.contains("sixgate_siit_drops_total{reason=\"malformed_ipv4\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("sixgate_siit_drops_total{reason=\"hop_limit_expired\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("sixgate_siit_packets_total{direction=\"6to4\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("sixgate_siit_packets_total{direction=\"drop\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("sixgate_siit_packets_total{direction=\"4to6\"} 0\n"),
            "{text}"
        );
    }
}
