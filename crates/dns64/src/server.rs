//! The DNS64 server: UDP and TCP listeners, the allow list, the cache, and
//! the upstream queries a question needs (the AAAA and A queries at once).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::RecordType;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::cache::{Cache, Lookup};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::synth::{self, Answer, Plan, Policy};
use crate::upstream::Forwarders;
use crate::wire::{self, DropReason, QueryInfo, Reject, Stored};

/// Answers with a shorter TTL are not prefetched.
const PREFETCH_MIN_TTL: u32 = 10;
/// RFC 8767 §4: the TTL of a stale answer.
const STALE_TTL: u32 = 30;
/// Queries answered at once on one TCP connection (RFC 7766 §6.2.1.1 pipelining).
const TCP_PIPELINE: usize = 64;
const TCP_LIMIT: usize = 65_535;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr} ({proto}): {source}")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        source: io::Error,
    },
}

/// Bound sockets, ready to serve.
pub struct Listeners {
    pub udp: Vec<UdpSocket>,
    pub tcp: Vec<TcpListener>,
}

impl Listeners {
    /// The bound addresses, UDP then TCP.
    pub fn addrs(&self) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
        (
            self.udp
                .iter()
                .filter_map(|s| s.local_addr().ok())
                .collect(),
            self.tcp
                .iter()
                .filter_map(|s| s.local_addr().ok())
                .collect(),
        )
    }
}

fn socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        // `[::]` and `0.0.0.0` are two listeners, not one dual-stack socket.
        socket.set_only_v6(true)?;
    }
    if ty == Type::STREAM {
        socket.set_reuse_address(true)?;
    } else {
        // A deeper queue absorbs bursts; the kernel caps it at rmem_max.
        let _ = socket.set_recv_buffer_size(4 << 20);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Binds UDP and TCP on every address. With port 0, TCP gets the port the
/// kernel chose for UDP, so one address serves both.
pub fn bind(addrs: &[SocketAddr]) -> Result<Listeners, ServerError> {
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for &addr in addrs {
        let tries = if addr.port() == 0 { 20 } else { 1 };
        let mut last_err = None;
        for _ in 0..tries {
            let u =
                socket(addr, Type::DGRAM, Protocol::UDP).map_err(|source| ServerError::Bind {
                    addr,
                    proto: "udp",
                    source,
                })?;
            let bound = u
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .ok_or_else(|| ServerError::Bind {
                    addr,
                    proto: "udp",
                    source: io::Error::other("no local address"),
                })?;
            match socket(bound, Type::STREAM, Protocol::TCP).and_then(|t| {
                t.listen(1024)?;
                Ok(t)
            }) {
                Ok(t) => {
                    let u = UdpSocket::from_std(u.into()).map_err(|source| ServerError::Bind {
                        addr,
                        proto: "udp",
                        source,
                    })?;
                    let t =
                        TcpListener::from_std(t.into()).map_err(|source| ServerError::Bind {
                            addr,
                            proto: "tcp",
                            source,
                        })?;
                    tracing::info!("dns64 listening on {bound} (udp)");
                    tracing::info!("dns64 listening on {bound} (tcp)");
                    udp.push(u);
                    tcp.push(t);
                    last_err = None;
                    break;
                }
                Err(source) => {
                    last_err = Some(ServerError::Bind {
                        addr: bound,
                        proto: "tcp",
                        source,
                    })
                }
            }
        }
        if let Some(err) = last_err {
            return Err(err);
        }
    }
    Ok(Listeners { udp, tcp })
}

/// What the receive loop does with a message.
enum Fast {
    Reply(Vec<u8>),
    Drop,
    Resolve(QueryInfo, Box<[u8]>, Option<Arc<Stored>>),
}

/// What a reload (SIGHUP) can change.
struct State {
    config: Config,
    policy: Policy,
    forwarders: Forwarders,
}

impl State {
    fn new(config: Config, forwarders: Vec<SocketAddr>, metrics: &Arc<Metrics>) -> Self {
        Self {
            policy: config.policy(),
            forwarders: Forwarders {
                addrs: forwarders,
                timeout: Duration::from_millis(config.upstream_timeout_ms),
                attempts: config.upstream_attempts,
                metrics: Arc::clone(metrics),
            },
            config,
        }
    }
}

/// An answer shared between coalesced queries, and the TTL override of a
/// stale one.
type Shared = (Arc<Stored>, Option<u32>);

/// Keys being resolved, each with the queries waiting for its answer.
type PendingMap = HashMap<Box<[u8]>, Vec<oneshot::Sender<Shared>>>;

/// The first query of a key; removes the key when done, or when dropped
/// (the waiters then see a closed channel and ask themselves).
struct Pending<'a> {
    server: &'a Server,
    key: Option<Box<[u8]>>,
}

impl Pending<'_> {
    fn finish(&mut self) -> Vec<oneshot::Sender<Shared>> {
        let Some(key) = self.key.take() else {
            return Vec::new();
        };
        let mut pending = self
            .server
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pending.remove(&key).unwrap_or_default()
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        drop(self.finish());
    }
}

pub struct Server {
    state: RwLock<Arc<State>>,
    pending: Mutex<PendingMap>,
    /// Settings fixed at start (sockets, cache, limits).
    fixed: Config,
    cache: Option<Arc<Cache>>,
    metrics: Arc<Metrics>,
    inflight: Arc<Semaphore>,
}

impl Server {
    /// A server for `config`; `forwarders` already resolved (see
    /// [`Config::forwarders_or`]).
    pub fn new(config: Config, forwarders: Vec<SocketAddr>, metrics: Arc<Metrics>) -> Arc<Self> {
        let cache_bytes =
            usize::try_from(config.cache_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        let cache = (cache_bytes > 0).then(|| {
            let window = if config.serve_stale {
                Duration::from_secs(u64::from(config.stale_window))
            } else {
                Duration::ZERO
            };
            Arc::new(Cache::new(cache_bytes, window))
        });
        if let Some(cache) = &cache {
            metrics.watch_cache(Arc::clone(cache));
        }
        Arc::new(Self {
            state: RwLock::new(Arc::new(State::new(config.clone(), forwarders, &metrics))),
            pending: Mutex::new(HashMap::new()),
            inflight: Arc::new(Semaphore::new(config.max_inflight)),
            fixed: config,
            cache,
            metrics,
        })
    }

    fn state(&self) -> Arc<State> {
        Arc::clone(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Applies a reloaded config: prefixes, policy, allow list, forwarders,
    /// timeouts and TTL caps take effect at once, and the cache is emptied
    /// (its answers were made under the old policy). Returns the keys that
    /// changed but take effect only after a restart.
    pub fn reload(&self, config: Config, forwarders: Vec<SocketAddr>) -> Vec<&'static str> {
        let f = &self.fixed;
        let mut restart = Vec::new();
        if config.listen != f.listen {
            restart.push("listen");
        }
        if config.cache_mib != f.cache_mib {
            restart.push("cache_mib");
        }
        if config.serve_stale != f.serve_stale || config.stale_window != f.stale_window {
            restart.push("serve_stale/stale_window");
        }
        if config.max_inflight != f.max_inflight {
            restart.push("max_inflight");
        }
        if config.max_tcp_connections != f.max_tcp_connections {
            restart.push("max_tcp_connections");
        }
        if config.udp_payload != f.udp_payload {
            restart.push("udp_payload");
        }
        let state = Arc::new(State::new(config, forwarders, &self.metrics));
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = state;
        if let Some(cache) = &self.cache {
            cache.clear();
        }
        restart
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run(self: Arc<Self>, listeners: Listeners, shutdown: CancellationToken) {
        let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let mut tasks = tokio::task::JoinSet::new();
        for socket in listeners.udp {
            let socket = Arc::new(socket);
            for _ in 0..workers {
                tasks.spawn(Arc::clone(&self).udp_loop(Arc::clone(&socket), shutdown.clone()));
            }
        }
        let connections = Arc::new(Semaphore::new(self.fixed.max_tcp_connections));
        for listener in listeners.tcp {
            tasks.spawn(Arc::clone(&self).tcp_accept(
                listener,
                Arc::clone(&connections),
                shutdown.clone(),
            ));
        }
        while tasks.join_next().await.is_some() {}
    }

    /// The synchronous part: parse, allow list, cache.
    fn fast(
        self: &Arc<Self>,
        buf: &[u8],
        peer: IpAddr,
        limit: Option<usize>,
        now: Instant,
    ) -> Fast {
        let query = match wire::parse_query(buf) {
            Ok(q) => q,
            Err(Reject::Drop(reason)) => {
                self.metrics.dropped(reason);
                return Fast::Drop;
            }
            Err(Reject::Respond(bytes, rcode)) => {
                self.metrics.query(0, rcode);
                return Fast::Reply(bytes);
            }
        };
        let state = self.state();
        if !crate::net::client_in(&state.config.allow, peer) {
            return self.error_reply(&query, ResponseCode::Refused, limit);
        }
        let (prefix_index, _) = state.config.prefix_for(peer);
        let key = query.cache_key(prefix_index);
        let stale = match self.cache.as_ref().map(|c| c.get(&key, now)) {
            Some(Lookup::Fresh(stored)) => {
                self.metrics.cache_hits.inc();
                if state.config.prefetch {
                    self.maybe_prefetch(&stored, &query, &key, peer, now);
                }
                return Fast::Reply(self.finish(&stored, &query, now, None, limit));
            }
            Some(Lookup::Stale(stored)) => Some(stored),
            Some(Lookup::Miss) | None => None,
        };
        self.metrics.cache_misses.inc();
        Fast::Resolve(query, key, stale)
    }

    fn finish(
        &self,
        stored: &Stored,
        query: &QueryInfo,
        now: Instant,
        ttl_override: Option<u32>,
        limit: Option<usize>,
    ) -> Vec<u8> {
        self.metrics.query(query.qtype, stored.rcode);
        let payload = self.fixed.udp_payload;
        let limit = limit.unwrap_or_else(|| query.udp_limit(payload));
        stored.finish(query, now, ttl_override, limit, payload)
    }

    /// A popular answer in the last tenth of its TTL is refreshed in the
    /// background (like Unbound's `prefetch`), so that its next asker does not
    /// wait for the forwarders when it expires.
    fn maybe_prefetch(
        self: &Arc<Self>,
        stored: &Stored,
        query: &QueryInfo,
        key: &[u8],
        peer: IpAddr,
        now: Instant,
    ) {
        let Some(ttl) = stored.ttl.filter(|t| *t >= PREFETCH_MIN_TTL) else {
            return;
        };
        let Some(expires) = stored.expires() else {
            return;
        };
        if expires.saturating_duration_since(now) * 10 > Duration::from_secs(u64::from(ttl)) {
            return;
        }
        let key: Box<[u8]> = key.into();
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.contains_key(&key) {
                return;
            }
            let Ok(permit) = Arc::clone(&self.inflight).try_acquire_owned() else {
                return;
            };
            pending.insert(key.clone(), Vec::new());
            self.metrics.prefetches.inc();
            let me = Arc::clone(self);
            let query = query.clone();
            tokio::spawn(async move {
                // The guard first: the key leaves `pending` whatever happens.
                let mut leader = Pending {
                    server: &me,
                    key: Some(key.clone()),
                };
                let shared = match wire::question(&query) {
                    Some(question) => me.compute(&query, &question, key, None, peer).await,
                    None => None,
                };
                let waiters = leader.finish();
                if let Some(shared) = shared {
                    for tx in waiters {
                        let _ = tx.send(shared.clone());
                    }
                }
                drop(permit);
            });
        }
    }

    fn error_reply(&self, query: &QueryInfo, rcode: ResponseCode, limit: Option<usize>) -> Fast {
        let now = Instant::now();
        match wire::question(query)
            .and_then(|q| Stored::encode(&q, &Answer::error(rcode), None, now))
        {
            Some(stored) => Fast::Reply(self.finish(&stored, query, now, None, limit)),
            None => Fast::Drop,
        }
    }

    /// The asynchronous part: ask the forwarders, synthesize, cache.
    /// The asynchronous part: ask the forwarders, synthesize, cache. Queries
    /// for the same key that arrive while one is being resolved wait for its
    /// answer instead of asking the forwarders again.
    async fn resolve(
        self: &Arc<Self>,
        query: QueryInfo,
        key: Box<[u8]>,
        stale: Option<Arc<Stored>>,
        peer: IpAddr,
        limit: Option<usize>,
    ) -> Option<Vec<u8>> {
        let Some(question) = wire::question(&query) else {
            return match self.error_reply(&query, ResponseCode::FormErr, limit) {
                Fast::Reply(bytes) => Some(bytes),
                _ => None,
            };
        };
        let waiting = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(waiters) = pending.get_mut(&key) {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Some(rx)
            } else {
                pending.insert(key.clone(), Vec::new());
                None
            }
        };
        let (stored, ttl_override) = match waiting {
            Some(rx) => {
                let joined = match &stale {
                    // RFC 8767 §5 for the queries that joined, too.
                    Some(old) => {
                        let after =
                            Duration::from_millis(self.state().config.stale_answer_after_ms);
                        tokio::select! {
                            shared = rx => shared.ok(),
                            () = tokio::time::sleep(after) => Some((Arc::clone(old), Some(STALE_TTL))),
                        }
                    }
                    None => rx.await.ok(),
                };
                match joined {
                    Some(shared) => {
                        self.metrics.coalesced.inc();
                        shared
                    }
                    // The first query's task ended without an answer: ask ourselves.
                    None => self.compute(&query, &question, key, stale, peer).await?,
                }
            }
            None => match stale {
                // RFC 8767 §5: with an expired answer at hand, the client gets it
                // once `stale_answer_after_ms` has passed; the refresh goes on.
                Some(stale) => {
                    let me = Arc::clone(self);
                    let (tx, rx) = oneshot::channel();
                    let (q, question2, stale2) =
                        (query.clone(), question.clone(), Arc::clone(&stale));
                    tokio::spawn(async move {
                        let shared = me.lead(&q, &question2, key, Some(stale2), peer).await;
                        let _ = tx.send(shared);
                    });
                    let after = Duration::from_millis(self.state().config.stale_answer_after_ms);
                    tokio::select! {
                        shared = rx => shared.ok().flatten()?,
                        () = tokio::time::sleep(after) => (stale, Some(STALE_TTL)),
                    }
                }
                None => self.lead(&query, &question, key, None, peer).await?,
            },
        };
        if ttl_override.is_some() {
            self.metrics.stale_served.inc();
        }
        Some(self.finish(&stored, &query, Instant::now(), ttl_override, limit))
    }

    /// Resolves `key` as the first query for it, then hands the answer to the
    /// queries that joined meanwhile.
    async fn lead(
        &self,
        query: &QueryInfo,
        question: &Query,
        key: Box<[u8]>,
        stale: Option<Arc<Stored>>,
        peer: IpAddr,
    ) -> Option<Shared> {
        let mut leader = Pending {
            server: self,
            key: Some(key.clone()),
        };
        let shared = self.compute(query, question, key, stale, peer).await;
        let waiters = leader.finish();
        let shared = shared?;
        for tx in waiters {
            let _ = tx.send(shared.clone());
        }
        Some(shared)
    }

    /// Asks the forwarders what `question` needs and makes the answer: a
    /// fresh one (cached), or the stale one with its TTL when they failed.
    async fn compute(
        &self,
        query: &QueryInfo,
        question: &Query,
        key: Box<[u8]>,
        stale: Option<Arc<Stored>>,
        peer: IpAddr,
    ) -> Option<Shared> {
        let state = self.state();
        let (_, prefix) = state.config.prefix_for(peer);
        let qtype = question.query_type;
        let flags = query.flags();
        let answer = match synth::plan(
            &question.name,
            qtype,
            question.query_class,
            flags,
            &state.policy,
            prefix,
        ) {
            Plan::Forward => Answer::from_result(
                &state
                    .forwarders
                    .query(&question.name, qtype, question.query_class, flags)
                    .await,
            ),
            Plan::Local(answer) => answer,
            Plan::Dns64 => {
                // RFC 6147 §5.1.8 allows the A query in parallel with the AAAA one;
                // asking both at once saves a round trip for IPv4-only names.
                let (aaaa, a) = tokio::join!(
                    state.forwarders.query(
                        &question.name,
                        RecordType::AAAA,
                        question.query_class,
                        flags
                    ),
                    state.forwarders.query(
                        &question.name,
                        RecordType::A,
                        question.query_class,
                        flags
                    ),
                );
                synth::synthesize(&aaaa, &a, &state.policy, prefix)
            }
            Plan::PtrAlias { target } => {
                let upstream = state
                    .forwarders
                    .query(&target, RecordType::PTR, question.query_class, flags)
                    .await;
                synth::ptr_alias(&question.name, &target, &upstream)
            }
        };
        let now = Instant::now();
        if answer.rcode == ResponseCode::ServFail {
            if let Some(stale) = stale {
                return Some((stale, Some(STALE_TTL)));
            }
        }
        if answer.synthesized {
            self.metrics.synthesized.inc();
        }
        let ttl = cache_ttl(&state.config, &answer);
        let stored = Stored::encode(question, &answer, ttl, now).or_else(|| {
            Stored::encode(question, &Answer::error(ResponseCode::ServFail), None, now)
        })?;
        let stored = Arc::new(stored);
        if let Some(cache) = &self.cache {
            cache.insert(key, Arc::clone(&stored));
        }
        Some((stored, None))
    }

    async fn udp_loop(self: Arc<Self>, socket: Arc<UdpSocket>, shutdown: CancellationToken) {
        let mut buf = vec![0u8; 4096];
        // Made once: polling a fresh `cancelled()` per datagram costs a lock.
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        loop {
            let received = tokio::select! {
                biased;
                r = socket.recv_from(&mut buf) => r,
                () = &mut cancelled => return,
            };
            let Ok((n, peer)) = received else {
                continue; // ICMP errors from earlier sends surface here
            };
            match self.fast(&buf[..n], peer.ip(), None, Instant::now()) {
                Fast::Reply(bytes) => {
                    let _ = socket.send_to(&bytes, peer).await;
                }
                Fast::Drop => {}
                Fast::Resolve(query, key, stale) => {
                    let Ok(permit) = Arc::clone(&self.inflight).try_acquire_owned() else {
                        self.metrics.dropped(DropReason::Overload);
                        continue;
                    };
                    let me = Arc::clone(&self);
                    let socket = Arc::clone(&socket);
                    tokio::spawn(async move {
                        me.metrics.inflight.inc();
                        if let Some(bytes) = me.resolve(query, key, stale, peer.ip(), None).await {
                            let _ = socket.send_to(&bytes, peer).await;
                        }
                        me.metrics.inflight.dec();
                        drop(permit);
                    });
                }
            }
        }
    }

    async fn tcp_accept(
        self: Arc<Self>,
        listener: TcpListener,
        connections: Arc<Semaphore>,
        shutdown: CancellationToken,
    ) {
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                () = shutdown.cancelled() => return,
            };
            let Ok((stream, peer)) = accepted else {
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                self.metrics.dropped(DropReason::TcpLimit);
                continue;
            };
            let me = Arc::clone(&self);
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                me.metrics.tcp_connections.inc();
                Arc::clone(&me).tcp_connection(stream, peer, shutdown).await;
                me.metrics.tcp_connections.dec();
                drop(permit);
            });
        }
    }

    /// One client connection: length-prefixed queries, answered as they are
    /// ready (RFC 7766 §7 allows answers out of order).
    async fn tcp_connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) {
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(TCP_PIPELINE);
        let writer = tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                let Ok(len) = u16::try_from(bytes.len()) else {
                    continue;
                };
                let mut framed = Vec::with_capacity(bytes.len() + 2);
                framed.extend_from_slice(&len.to_be_bytes());
                framed.extend_from_slice(&bytes);
                if wr.write_all(&framed).await.is_err() {
                    break;
                }
            }
        });
        let pipeline = Arc::new(Semaphore::new(TCP_PIPELINE));
        let idle = Duration::from_millis(self.state().config.tcp_idle_ms);
        let mut buf = Vec::new();
        loop {
            let len = tokio::select! {
                r = tokio::time::timeout(idle, rd.read_u16()) => match r {
                    Ok(Ok(len)) => usize::from(len),
                    _ => break,
                },
                () = shutdown.cancelled() => break,
            };
            buf.resize(len, 0);
            if tokio::time::timeout(idle, rd.read_exact(&mut buf))
                .await
                .map_or(true, |r| r.is_err())
            {
                break;
            }
            match self.fast(&buf, peer.ip(), Some(TCP_LIMIT), Instant::now()) {
                Fast::Reply(bytes) => {
                    if tx.send(bytes).await.is_err() {
                        break;
                    }
                }
                Fast::Drop => {}
                Fast::Resolve(query, key, stale) => {
                    let Ok(slot) = Arc::clone(&pipeline).acquire_owned().await else {
                        break;
                    };
                    let Ok(permit) = Arc::clone(&self.inflight).try_acquire_owned() else {
                        self.metrics.dropped(DropReason::Overload);
                        continue;
                    };
                    let me = Arc::clone(&self);
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        me.metrics.inflight.inc();
                        if let Some(bytes) = me
                            .resolve(query, key, stale, peer.ip(), Some(TCP_LIMIT))
                            .await
                        {
                            let _ = tx.send(bytes).await;
                        }
                        me.metrics.inflight.dec();
                        drop((permit, slot));
                    });
                }
            }
        }
        drop(tx);
        let _ = writer.await;
    }
}

/// How long an answer may be cached: the smallest TTL of its records, or for
/// a negative answer its RFC 2308 §5 TTL; errors are not cached.
fn cache_ttl(config: &Config, answer: &Answer) -> Option<u32> {
    let records = answer.answers.iter().map(|r| r.ttl).min();
    match answer.rcode {
        ResponseCode::NoError if records.is_some() => records.map(|t| t.min(config.max_ttl)),
        ResponseCode::NoError | ResponseCode::NXDomain => {
            let negative = synth::negative_ttl(&answer.authorities)?.min(config.max_negative_ttl);
            Some(records.map_or(negative, |r| r.min(negative)))
        }
        _ => None,
    }
}
