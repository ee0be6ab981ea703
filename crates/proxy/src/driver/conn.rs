//! One client connection: PROXY header from trusted peers, allow list,
//! limits, ClientHello peek, route, backend, PROXY v2 out, copy, access log.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::copy::{self, Progress};
use super::metrics::Reason;
use super::{ListenerRt, RouteRt, Shared, Table};
use crate::config::ProxyProtocol;
use crate::prefix::{self, Prefix};
use crate::proxy_protocol::{self, unmap, Decoded, V2_MAX_ACCEPTED};
use crate::route;
use crate::tls::{self, Peek, MAX_SNI_LEN};

/// A server name kept on the stack for the access log and the PROXY header.
#[derive(Clone, Copy)]
struct Name {
    bytes: [u8; MAX_SNI_LEN],
    len: usize,
}

impl Name {
    fn new(s: &str) -> Self {
        let mut bytes = [0; MAX_SNI_LEN];
        let len = s.len().min(MAX_SNI_LEN);
        bytes[..len].copy_from_slice(&s.as_bytes()[..len]);
        Self { bytes, len }
    }
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
    fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

/// What the access log line says about a connection.
struct Record<'a> {
    client: SocketAddr,
    route: Option<&'a str>,
    sni: Option<Name>,
    backend: Option<SocketAddr>,
    to_backend: u64,
    to_client: u64,
}

/// The per-source slot of a connection, released on drop.
struct SourceSlot<'a> {
    shared: &'a Shared,
    key: Prefix,
}

impl Drop for SourceSlot<'_> {
    fn drop(&mut self) {
        self.shared.sources().release(self.key);
    }
}

/// Serves one accepted connection to its end.
pub async fn handle(
    shared: Arc<Shared>,
    table: Arc<Table>,
    listener: Arc<str>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let Some(lst) = table.listeners.get(&*listener) else {
        // A reload renamed or removed the listener this socket belongs to.
        shared.metrics.count(Reason::NoRoute);
        return;
    };
    let start = Instant::now();
    let mut record = Record {
        client: peer,
        route: None,
        sni: None,
        backend: None,
        to_backend: 0,
        to_client: 0,
    };
    let outcome = tokio::select! {
        outcome = serve(&shared, lst, &stream, peer, &mut record, start) => outcome,
        () = shared.kill.cancelled() => Err(Reason::DrainDeadline),
    };
    if let Err(reason) = outcome {
        shared.metrics.count(reason);
    }
    if table.config.access_log {
        let end = match outcome {
            Ok(()) => "closed",
            Err(reason) => reason.as_str(),
        };
        tracing::info!(
            target: "sixgate::access",
            client = %record.client,
            listener = &*listener,
            route = record.route.unwrap_or("-"),
            sni = record.sni.as_ref().map_or("-", Name::as_str),
            backend = %record.backend.map_or_else(|| "-".to_owned(), |b| b.to_string()),
            to_backend = record.to_backend,
            to_client = record.to_client,
            ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            end,
            "connection"
        );
    }
}

async fn serve<'t>(
    shared: &Shared,
    lst: &'t ListenerRt,
    client: &TcpStream,
    peer: SocketAddr,
    record: &mut Record<'t>,
    start: Instant,
) -> Result<(), Reason> {
    let cfg = &lst.config;
    let deadline =
        tokio::time::Instant::from_std(start + Duration::from_millis(cfg.hello_timeout_ms));
    // The address the client connected to, for a PROXY v2 header: from the
    // header of a trusted load balancer, else asked of the socket when needed.
    let mut dst = None;
    let trusted = prefix::any_contains(&cfg.proxy_protocol_from, peer.ip());

    // Bytes read before routing: a PROXY header, a ClientHello. Taken from
    // the pool only when bytes arrive, so idle connections hold none.
    let mut buf = Held {
        shared,
        buf: None,
        filled: 0,
    };
    let mut data_start = 0;
    if trusted {
        loop {
            match proxy_protocol::decode(buf.bytes()) {
                Ok(Decoded::NeedMore) => {
                    read_more(client, &mut buf, V2_MAX_ACCEPTED, deadline)
                        .await
                        .map_err(|e| {
                            e.reason(
                                Reason::ProxyHeaderTimeout,
                                Reason::ProxyHeader(proxy_protocol::HeaderError::TooLarge),
                            )
                        })?;
                }
                Ok(Decoded::Header(header)) => {
                    if let Some((src, orig_dst)) = header.addresses {
                        record.client = src;
                        dst = Some(orig_dst);
                    }
                    data_start = header.len;
                    break;
                }
                Err(err) => return Err(Reason::ProxyHeader(err)),
            }
        }
    }
    let source = record.client;
    if !cfg.allow.is_empty() && !prefix::any_contains(&cfg.allow, source.ip()) {
        return Err(Reason::NotAllowed);
    }
    let _source_slot = if cfg.max_connections_per_source > 0 {
        let len = if unmap(source.ip()).is_ipv4() {
            cfg.source_prefix_len_v4
        } else {
            cfg.source_prefix_len_v6
        };
        let key = prefix::source_of(source.ip(), len);
        if !shared
            .sources()
            .acquire(key, cfg.max_connections_per_source)
        {
            return Err(Reason::SourceLimit);
        }
        Some(SourceSlot { shared, key })
    } else {
        None
    };

    // Route: by listener alone, or by the ClientHello.
    let (index, sni) = if lst.needs_hello {
        let limit = data_start + cfg.hello_max_bytes + 1024;
        let mut scratch = Vec::new();
        loop {
            let peeked = tls::peek_client_hello(
                &buf.bytes()[data_start..],
                cfg.hello_max_bytes,
                &mut scratch,
            );
            match peeked {
                Ok(Peek::Done(hello)) => {
                    let sni = hello.server_name.map(Name::new);
                    let index = route::select(&lst.matches, hello.server_name, hello.alpn());
                    break (index, sni);
                }
                Ok(Peek::NeedMore) => {
                    read_more(client, &mut buf, limit, deadline)
                        .await
                        .map_err(|e| {
                            e.reason(
                                Reason::HelloTimeout,
                                Reason::Hello(tls::HelloError::TooLarge),
                            )
                        })?;
                }
                Err(err) => return Err(Reason::Hello(err)),
            }
        }
    } else {
        (route::select(&lst.matches, None, std::iter::empty()), None)
    };
    record.sni = sni;
    let route: &'t Arc<RouteRt> = lst
        .routes
        .get(index.ok_or(Reason::NoRoute)?)
        .ok_or(Reason::NoRoute)?;
    record.route = Some(&route.name);
    route.stats.total.inc();
    route.stats.active.inc();
    let _active = ActiveGuard(route);

    let (backend, slot) = route.pool.connect(&shared.metrics).await?;
    record.backend = Some(slot.0.addr);

    // What the backend gets first: our PROXY v2 header, then what the client
    // sent so far (after its own PROXY header, which stops here).
    let header = (route.config.proxy_protocol == ProxyProtocol::V2).then(|| {
        let dst = dst.unwrap_or_else(|| client.local_addr().unwrap_or(peer));
        proxy_protocol::encode_v2(record.client, dst, sni.as_ref().map(Name::as_bytes))
    });
    let early = &buf.bytes()[data_start..];
    write_all2(
        &backend,
        header.as_ref().map_or(&[][..], |h| h.as_bytes()),
        early,
    )
    .await
    .map_err(|_| Reason::Io)?;
    let early_len = early.len() as u64;
    route.stats.bytes_to_backend.add(early_len);
    drop(buf);

    let up = AtomicU64::new(early_len);
    let down = AtomicU64::new(0);
    let activity = AtomicU64::new(0);
    let one_done = AtomicBool::new(false);
    let result = {
        let copy = async {
            tokio::try_join!(
                copy::one_way(
                    shared,
                    client,
                    &backend,
                    Progress {
                        counter: &route.stats.bytes_to_backend,
                        moved: &up,
                        activity: &activity,
                        one_done: &one_done,
                        start
                    }
                ),
                copy::one_way(
                    shared,
                    &backend,
                    client,
                    Progress {
                        counter: &route.stats.bytes_to_client,
                        moved: &down,
                        activity: &activity,
                        one_done: &one_done,
                        start
                    }
                ),
            )
        };
        tokio::pin!(copy);
        let idle = Duration::from_secs(cfg.idle_timeout_secs);
        loop {
            let last = start + Duration::from_millis(activity.load(Ordering::Relaxed));
            let idle_at = tokio::time::Instant::from_std(last + idle);
            tokio::select! {
                done = &mut copy => break done.map(|_| ()).map_err(|_| Reason::Io),
                () = tokio::time::sleep_until(idle_at) => {
                    let last = start + Duration::from_millis(activity.load(Ordering::Relaxed));
                    if last.elapsed() >= idle {
                        break Err(Reason::IdleTimeout);
                    }
                }
            }
        }
    };
    record.to_backend = up.load(Ordering::Relaxed);
    record.to_client = down.load(Ordering::Relaxed);
    result
}

/// Counts a route's connection as active while it lives.
struct ActiveGuard<'a>(&'a RouteRt);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.stats.active.dec();
    }
}

/// The pre-routing buffer, taken from the pool lazily and given back on drop.
struct Held<'a> {
    shared: &'a Shared,
    buf: Option<Vec<u8>>,
    filled: usize,
}

impl Held<'_> {
    fn bytes(&self) -> &[u8] {
        self.buf.as_deref().map_or(&[][..], |b| &b[..self.filled])
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.shared.bufs.give(buf);
        }
    }
}

enum ReadEnd {
    Timeout,
    Eof,
    Full,
    Io,
}

impl ReadEnd {
    fn reason(self, timeout: Reason, full: Reason) -> Reason {
        match self {
            ReadEnd::Timeout => timeout,
            ReadEnd::Eof => Reason::HelloEof,
            ReadEnd::Full => full,
            ReadEnd::Io => Reason::Io,
        }
    }
}

/// Reads what is there (at least one byte) into `held`, up to `limit` bytes
/// in all, before `deadline`.
async fn read_more(
    client: &TcpStream,
    held: &mut Held<'_>,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<(), ReadEnd> {
    if held.filled >= limit {
        return Err(ReadEnd::Full);
    }
    loop {
        match tokio::time::timeout_at(deadline, client.readable()).await {
            Err(_) => return Err(ReadEnd::Timeout),
            Ok(Err(_)) => return Err(ReadEnd::Io),
            Ok(Ok(())) => {}
        }
        let shared = held.shared;
        let buf = held.buf.get_or_insert_with(|| shared.bufs.take());
        if buf.len() < limit {
            buf.resize(limit, 0);
        }
        match client.try_read(&mut buf[held.filled..limit]) {
            Ok(0) => return Err(ReadEnd::Eof),
            Ok(n) => {
                held.filled += n;
                return Ok(());
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Err(ReadEnd::Io),
        }
    }
}

/// Writes `a` then `b`, in as few segments as the kernel allows.
async fn write_all2(stream: &TcpStream, a: &[u8], b: &[u8]) -> io::Result<()> {
    let (mut a, mut b) = (a, b);
    while !a.is_empty() || !b.is_empty() {
        stream.writable().await?;
        match stream.try_write_vectored(&[IoSlice::new(a), IoSlice::new(b)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(mut n) => {
                let from_a = n.min(a.len());
                a = &a[from_a..];
                n -= from_a;
                b = &b[n..];
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
