//! The tokio driver: listeners with `SO_REUSEPORT` and one accept loop per
//! worker, connections, backend pools, reload and drain.

mod backend;
mod conn;
mod copy;
mod metrics;
#[cfg(target_os = "linux")]
mod splice;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

pub use metrics::{Collector, Metrics, Reason};

use crate::config::{self, Config};
use crate::limits::SourceCounts;
use crate::route::RouteMatch;

/// A listener's settings and routes, as of the last (re)load.
pub(crate) struct ListenerRt {
    config: config::Listener,
    routes: Vec<Arc<RouteRt>>,
    matches: Vec<RouteMatch>,
    needs_hello: bool,
}

/// A route with its backend pool and counters.
pub(crate) struct RouteRt {
    name: String,
    config: config::Route,
    pool: Arc<backend::Pool>,
    stats: Arc<metrics::RouteStats>,
}

/// Everything a connection needs to know, swapped whole on reload; a
/// connection keeps the table it was accepted with.
pub(crate) struct Table {
    config: Config,
    listeners: HashMap<String, ListenerRt>,
}

/// State shared by every task of the proxy.
pub(crate) struct Shared {
    table: RwLock<Arc<Table>>,
    metrics: Arc<Metrics>,
    /// Connections open (accepted and not closed).
    conns: AtomicU32,
    /// Notified when `conns` drops to zero.
    idle: Notify,
    sources: Mutex<SourceCounts>,
    /// Cancelled at the drain deadline: every connection ends.
    kill: CancellationToken,
    #[cfg(target_os = "linux")]
    pipes: splice::PipePool,
    bufs: copy::BufPool,
    use_splice: bool,
}

impl Shared {
    fn table(&self) -> Arc<Table> {
        Arc::clone(&self.table.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn sources(&self) -> MutexGuard<'_, SourceCounts> {
        self.sources.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Options that are not part of the config file.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Use `splice(2)` where the platform has it (tests turn it off to
    /// exercise the userspace copy).
    pub splice: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { splice: true }
    }
}

/// A proxy: create it, register its [`Proxy::collector`], then [`Proxy::run`].
pub struct Proxy {
    shared: Arc<Shared>,
}

impl Proxy {
    pub fn new(options: Options) -> Self {
        let empty = Table {
            config: Config {
                workers: None,
                drain_timeout_secs: 0,
                max_connections: 0,
                access_log: false,
                splice: false,
                resolve_interval_secs: 1,
                listeners: Vec::new(),
                routes: Vec::new(),
            },
            listeners: HashMap::new(),
        };
        Self {
            shared: Arc::new(Shared {
                table: RwLock::new(Arc::new(empty)),
                metrics: Arc::new(Metrics::default()),
                conns: AtomicU32::new(0),
                idle: Notify::new(),
                sources: Mutex::new(SourceCounts::new()),
                kill: CancellationToken::new(),
                #[cfg(target_os = "linux")]
                pipes: splice::PipePool::default(),
                bufs: copy::BufPool::default(),
                use_splice: options.splice && cfg!(target_os = "linux"),
            }),
        }
    }

    /// The `/metrics` collector of this proxy.
    pub fn collector(&self) -> Arc<Collector> {
        Arc::new(Collector(Arc::clone(&self.shared)))
    }

    /// Runs until `shutdown`, then stops accepting, lets connections finish
    /// until `drain_timeout_secs` and closes what is left. `ready` is told
    /// when the proxy starts and stops taking connections; each config on
    /// `updates` replaces the routes and backends.
    ///
    /// # Errors
    ///
    /// When a listener cannot be opened.
    pub async fn run(
        &self,
        config: Config,
        mut updates: mpsc::Receiver<Config>,
        shutdown: CancellationToken,
        ready: impl Fn(bool) + Send + Sync,
    ) -> Result<(), StartError> {
        let shared = &self.shared;
        let table = build_table(&config, None, &shared.metrics);
        // Resolve backend names once before taking clients.
        for listener in table.listeners.values() {
            for route in &listener.routes {
                let resolving = route.pool.resolve(&shared.metrics);
                let _ = tokio::time::timeout(Duration::from_secs(5), resolving).await;
            }
        }
        *shared.table.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&table);

        let workers = config
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let stop = CancellationToken::new();
        let mut accepting = tokio::task::JoinSet::new();
        let mut sockets = Vec::new();
        for listener in &config.listeners {
            for &addr in &listener.listen {
                let bound = bind(addr, workers, listener.backlog)
                    .map_err(|source| StartError::Listen { addr, source })?;
                sockets.push((Arc::<str>::from(listener.name.as_str()), bound));
            }
        }
        for (name, bound) in sockets {
            if let Some(first) = bound.first() {
                match first.local_addr() {
                    Ok(addr) => tracing::info!("proxy listening on {addr} (listener {name})"),
                    Err(err) => tracing::warn!("proxy listener has no address: {err}"),
                }
            }
            for listener in bound {
                accepting.spawn(accept_loop(
                    Arc::clone(shared),
                    listener,
                    Arc::clone(&name),
                    stop.clone(),
                ));
            }
        }
        ready(true);

        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                update = updates.recv() => match update {
                    Some(new) => self.reload(&new),
                    // The sender went away: keep running the config we have.
                    None => {
                        shutdown.cancelled().await;
                        break;
                    }
                },
            }
        }

        // Drain: no new connections, then wait for the open ones.
        ready(false);
        stop.cancel();
        // The accept loops drop their sockets as they end: once they all
        // have, new clients are refused.
        while accepting.join_next().await.is_some() {}
        let table = shared.table();
        let drain = Duration::from_secs(table.config.drain_timeout_secs);
        let open = shared.conns.load(Ordering::Relaxed);
        tracing::info!("proxy draining {open} connections for up to {drain:?}");
        if !wait_idle(shared, drain).await {
            let open = shared.conns.load(Ordering::Relaxed);
            tracing::warn!("proxy drain deadline passed: closing {open} connections");
            shared.kill.cancel();
            wait_idle(shared, Duration::from_secs(2)).await;
        }
        for listener in table.listeners.values() {
            for route in &listener.routes {
                route.pool.stop.cancel();
            }
        }
        tracing::info!("proxy stopped");
        Ok(())
    }

    /// Applies a new config: routes, backends and listener settings. Listen
    /// addresses themselves change only on restart.
    fn reload(&self, new: &Config) {
        let shared = &self.shared;
        let old = shared.table();
        for listener in &new.listeners {
            let bound = old.listeners.get(&listener.name).map(|l| &l.config.listen);
            if bound != Some(&listener.listen) {
                tracing::warn!(
                    listener = %listener.name,
                    "proxy reload: listen addresses of listener {:?} change only on restart", listener.name
                );
            }
        }
        let table = build_table(new, Some(&old), &shared.metrics);
        // Names of new pools are resolved in the background; until then they
        // keep the addresses the old pool had.
        for listener in table.listeners.values() {
            for route in &listener.routes {
                let reused = old
                    .listeners
                    .values()
                    .flat_map(|l| &l.routes)
                    .any(|r| Arc::ptr_eq(&r.pool, &route.pool));
                if !reused {
                    let pool = Arc::clone(&route.pool);
                    let metrics = Arc::clone(&shared.metrics);
                    tokio::spawn(async move { pool.resolve(&metrics).await });
                }
            }
        }
        // Pools no longer used stop their checks; open connections keep them.
        for route in old.listeners.values().flat_map(|l| &l.routes) {
            let kept = table
                .listeners
                .values()
                .flat_map(|l| &l.routes)
                .any(|r| Arc::ptr_eq(&r.pool, &route.pool));
            if !kept {
                route.pool.stop.cancel();
            }
        }
        *shared.table.write().unwrap_or_else(PoisonError::into_inner) = table;
        shared.metrics.reloads.inc();
        let n = shared.metrics.reloads.get();
        tracing::info!("proxy reloaded routes and backends (reload {n})");
    }
}

/// Builds the routing table, reusing pools (health, counts, tasks) of `old`
/// where a route's backends did not change.
fn build_table(config: &Config, old: Option<&Table>, metrics: &Arc<Metrics>) -> Arc<Table> {
    let old_routes: HashMap<&str, &Arc<RouteRt>> = old
        .map(|t| {
            t.listeners
                .values()
                .flat_map(|l| &l.routes)
                .map(|r| (r.name.as_str(), r))
                .collect()
        })
        .unwrap_or_default();
    let mut listeners: HashMap<String, ListenerRt> = config
        .listeners
        .iter()
        .map(|l| {
            (
                l.name.clone(),
                ListenerRt {
                    config: l.clone(),
                    routes: Vec::new(),
                    matches: Vec::new(),
                    needs_hello: false,
                },
            )
        })
        .collect();
    for route in &config.routes {
        // `validate` made sure the listener exists.
        let Ok(listener) = config.route_listener(route) else {
            continue;
        };
        let Some(rt) = listeners.get_mut(listener) else {
            continue;
        };
        let previous = old_routes.get(route.name.as_str());
        let pool = match previous {
            Some(prev) if prev.pool.same_config(route) => Arc::clone(&prev.pool),
            _ => {
                let pool = backend::Pool::new(&route.name, route, previous.map(|p| &*p.pool));
                pool.spawn_tasks(
                    Arc::clone(metrics),
                    Duration::from_secs(config.resolve_interval_secs),
                );
                pool
            }
        };
        let matcher = RouteMatch {
            sni: route.sni.clone(),
            alpn: route.alpn.iter().map(|a| a.as_bytes().to_vec()).collect(),
        };
        rt.needs_hello |= matcher.needs_hello();
        rt.matches.push(matcher);
        rt.routes.push(Arc::new(RouteRt {
            name: route.name.clone(),
            config: route.clone(),
            pool,
            stats: metrics.route(&route.name),
        }));
    }
    Arc::new(Table {
        config: config.clone(),
        listeners,
    })
}

/// Waits until no connection is open, or `limit` passes; true when idle.
async fn wait_idle(shared: &Shared, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if shared.conns.load(Ordering::Relaxed) == 0 {
            return true;
        }
        tokio::select! {
            () = shared.idle.notified() => {}
            // Also poll: a wake-up between the check and the wait is not lost for long.
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            () = tokio::time::sleep_until(deadline) => return shared.conns.load(Ordering::Relaxed) == 0,
        }
    }
}

/// `count` sockets bound to `addr` with `SO_REUSEPORT`; the kernel spreads
/// new connections over them. With port 0 the others take the first's port.
fn bind(addr: SocketAddr, count: usize, backlog: u32) -> std::io::Result<Vec<TcpListener>> {
    let mut out = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        let listener = TcpListener::from_std(socket.into())?;
        addr = listener.local_addr()?;
        out.push(listener);
    }
    Ok(out)
}

/// Counts a connection as open while it lives.
struct ConnGuard(Arc<Shared>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if self.0.conns.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    name: Arc<str>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // EMFILE and friends: count, back off a little, go on.
                shared.metrics.count(Reason::Accept);
                tracing::debug!("proxy accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        shared.metrics.accepted.inc();
        let table = shared.table();
        if shared.conns.fetch_add(1, Ordering::Relaxed) >= table.config.max_connections {
            shared.conns.fetch_sub(1, Ordering::Relaxed);
            shared.metrics.count(Reason::MaxConnections);
            continue; // dropping the stream closes it
        }
        let guard = ConnGuard(Arc::clone(&shared));
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let name = Arc::clone(&name);
        tokio::spawn(async move {
            conn::handle(Arc::clone(&shared), table, name, stream, peer).await;
            drop(guard);
        });
    }
}
