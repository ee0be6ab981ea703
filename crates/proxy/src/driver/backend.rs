//! Backend pools: addresses (resolved from names again and again), their
//! health from active TCP checks and failed connects, and connecting with a
//! timeout, then the next backend.
//!
//! DNS: `tokio::net::lookup_host` (the system resolver) does not report TTLs,
//! so names are resolved again every `resolve_interval_secs` (30 s by
//! default, the usual TTL of a Kubernetes Service record).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use super::metrics::{Metrics, Reason};
use crate::balance::{self, Candidate, Health, HealthPolicy};
use crate::config::{BackendAddr, Route};

/// One backend address.
#[derive(Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub spec: BackendAddr,
    /// `ADDR`, or `NAME:PORT (ADDR)` for resolved names: the metric label.
    pub label: String,
    pub active: AtomicU32,
    health: Mutex<Health>,
}

impl Endpoint {
    fn new(spec: BackendAddr, addr: SocketAddr) -> Self {
        let label = match &spec {
            BackendAddr::Socket(_) => addr.to_string(),
            BackendAddr::Name { .. } => format!("{spec} ({addr})"),
        };
        Self {
            addr,
            spec,
            label,
            active: AtomicU32::new(0),
            health: Mutex::new(Health::default()),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn is_available(&self, now: Instant) -> bool {
        self.health().is_available(now)
    }
}

/// A connection slot on an endpoint, released on drop.
pub struct Slot(pub Arc<Endpoint>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The backends of one route.
pub struct Pool {
    route: String,
    config: Route,
    policy: HealthPolicy,
    endpoints: RwLock<Arc<Vec<Arc<Endpoint>>>>,
    cursor: AtomicUsize,
    /// Cancelled when a reload replaces the pool: stops its tasks.
    pub stop: CancellationToken,
}

impl Pool {
    /// A pool for `config`, keeping the endpoints (health, counts) of `old`
    /// that it still lists.
    pub fn new(route: &str, config: &Route, old: Option<&Pool>) -> Arc<Self> {
        let previous = old.map(|p| p.endpoints()).unwrap_or_default();
        let mut endpoints = Vec::new();
        for spec in &config.backends {
            match spec {
                BackendAddr::Socket(addr) => endpoints.push(
                    previous
                        .iter()
                        .find(|e| &e.spec == spec && e.addr == *addr)
                        .cloned()
                        .unwrap_or_else(|| Arc::new(Endpoint::new(spec.clone(), *addr))),
                ),
                // Until the name is resolved, keep what it resolved to before.
                BackendAddr::Name { .. } => {
                    endpoints.extend(previous.iter().filter(|e| &e.spec == spec).cloned());
                }
            }
        }
        Arc::new(Self {
            route: route.to_owned(),
            config: config.clone(),
            policy: HealthPolicy {
                unhealthy_after: config.unhealthy_after,
                healthy_after: config.healthy_after,
                eject_after: config.eject_after,
                eject_for: Duration::from_secs(config.eject_secs),
            },
            endpoints: RwLock::new(Arc::new(endpoints)),
            cursor: AtomicUsize::new(0),
            stop: CancellationToken::new(),
        })
    }

    /// Whether a pool built from `config` would be this one (so a reload can
    /// keep it, tasks and all). Any change builds a new pool, which still
    /// keeps the state of the addresses it shares with this one.
    pub fn same_config(&self, config: &Route) -> bool {
        self.config == *config
    }

    pub fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        Arc::clone(
            &self
                .endpoints
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    fn has_names(&self) -> bool {
        self.config
            .backends
            .iter()
            .any(|b| matches!(b, BackendAddr::Name { .. }))
    }

    /// Resolves the names again; a name that fails keeps its old addresses.
    pub async fn resolve(&self, metrics: &Metrics) {
        if !self.has_names() {
            return;
        }
        let previous = self.endpoints();
        let mut endpoints = Vec::new();
        for spec in &self.config.backends {
            let addrs: Vec<SocketAddr> = match spec {
                BackendAddr::Socket(addr) => vec![*addr],
                BackendAddr::Name { host, port } => {
                    match tokio::net::lookup_host((host.as_str(), *port)).await {
                        Ok(found) => {
                            let mut found: Vec<SocketAddr> = found.collect();
                            found.sort_unstable();
                            found.dedup();
                            found
                        }
                        Err(err) => {
                            metrics.count(Reason::ResolveFailed);
                            tracing::warn!(route = %self.route, "proxy cannot resolve backend {spec}: {err}");
                            previous
                                .iter()
                                .filter(|e| &e.spec == spec)
                                .map(|e| e.addr)
                                .collect()
                        }
                    }
                }
            };
            for addr in addrs {
                endpoints.push(
                    previous
                        .iter()
                        .find(|e| &e.spec == spec && e.addr == addr)
                        .cloned()
                        .unwrap_or_else(|| Arc::new(Endpoint::new(spec.clone(), addr))),
                );
            }
        }
        let changed = endpoints.len() != previous.len()
            || endpoints
                .iter()
                .zip(previous.iter())
                .any(|(a, b)| !Arc::ptr_eq(a, b));
        if changed {
            let list: Vec<String> = endpoints.iter().map(|e| e.addr.to_string()).collect();
            tracing::info!(route = %self.route, "proxy backends of route {} now {}", self.route, list.join(", "));
            *self
                .endpoints
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Arc::new(endpoints);
        }
    }

    /// Starts re-resolution and active health checks until `stop`.
    pub fn spawn_tasks(self: &Arc<Self>, metrics: Arc<Metrics>, resolve_every: Duration) {
        if self.has_names() {
            let pool = Arc::clone(self);
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = pool.stop.cancelled() => return,
                        () = tokio::time::sleep(resolve_every) => {}
                    }
                    pool.resolve(&metrics).await;
                }
            });
        }
        if self.config.health_check_interval_ms > 0 {
            let pool = Arc::clone(self);
            tokio::spawn(async move {
                let every = Duration::from_millis(pool.config.health_check_interval_ms);
                let mut ticker = tokio::time::interval(every);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = pool.stop.cancelled() => return,
                        _ = ticker.tick() => {}
                    }
                    pool.check_all(&metrics).await;
                }
            });
        }
    }

    /// One round of active checks: a TCP connect to every address, together.
    async fn check_all(&self, metrics: &Metrics) {
        let timeout = Duration::from_millis(self.config.health_check_timeout_ms);
        let mut checks = tokio::task::JoinSet::new();
        for ep in self.endpoints().iter() {
            let ep = Arc::clone(ep);
            checks.spawn(async move {
                let passed = matches!(
                    tokio::time::timeout(timeout, TcpStream::connect(ep.addr)).await,
                    Ok(Ok(_))
                );
                (ep, passed)
            });
        }
        while let Some(done) = checks.join_next().await {
            let Ok((ep, passed)) = done else { continue };
            let change = ep.health().on_check(passed, &self.policy);
            if let Some(up) = change {
                metrics.health_changes.inc();
                if up {
                    tracing::info!(route = %self.route, backend = %ep.label, "proxy backend is up");
                } else {
                    tracing::warn!(route = %self.route, backend = %ep.label, "proxy backend is down: health checks fail");
                }
            }
        }
    }

    /// Connects to a backend: picks one, tries it with the connect timeout,
    /// then the next, up to `connect_attempts`.
    ///
    /// # Errors
    ///
    /// The reason when no attempt succeeded.
    pub async fn connect(&self, metrics: &Metrics) -> Result<(TcpStream, Slot), Reason> {
        let endpoints = self.endpoints();
        if endpoints.is_empty() {
            return Err(Reason::NoBackend);
        }
        let timeout = Duration::from_millis(self.config.connect_timeout_ms);
        let max = self.config.max_connections_per_backend;
        let mut tried = [usize::MAX; 16];
        let mut last = Reason::NoBackend;
        let attempts = usize::try_from(self.config.connect_attempts)
            .unwrap_or(1)
            .min(tried.len());
        for attempt in 0..attempts {
            let now = Instant::now();
            let cursor = self.cursor.fetch_add(1, Ordering::Relaxed);
            let candidates = |i: usize| {
                let ep: &Endpoint = &endpoints[i];
                let active = ep.active.load(Ordering::Relaxed);
                Candidate {
                    available: ep.is_available(now),
                    active,
                    full: max != 0 && active >= max,
                }
            };
            let Some(i) = balance::pick(
                self.config.balance,
                endpoints.len(),
                candidates,
                cursor,
                &tried[..attempt],
            ) else {
                if attempt == 0 {
                    return Err(Reason::BackendLimit);
                }
                break;
            };
            tried[attempt] = i;
            let ep = Arc::clone(&endpoints[i]);
            ep.active.fetch_add(1, Ordering::Relaxed);
            let slot = Slot(ep);
            let outcome = tokio::time::timeout(timeout, connect(slot.0.addr)).await;
            let ok = matches!(outcome, Ok(Ok(_)));
            let ejected = slot.0.health().on_connect(ok, Instant::now(), &self.policy);
            if ejected {
                metrics.health_changes.inc();
                tracing::warn!(route = %self.route, backend = %slot.0.label, "proxy backend ejected after failed connects");
            }
            match outcome {
                Ok(Ok(stream)) => return Ok((stream, slot)),
                Ok(Err(err)) => {
                    tracing::debug!(route = %self.route, backend = %slot.0.label, "proxy connect failed: {err}");
                    last = Reason::ConnectFailed;
                }
                Err(_) => last = Reason::ConnectTimeout,
            }
            metrics.count(last);
        }
        Err(if last == Reason::NoBackend {
            Reason::BackendLimit
        } else {
            Reason::NoBackend
        })
    }
}

async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_nodelay(true)?;
    socket.connect(addr).await
}
