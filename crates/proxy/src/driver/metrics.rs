//! Counters of the proxy, written out as `sixgate_proxy_*` on `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use sixgate_telemetry::{Collect, Counter, Encoder, Gauge};

use super::Shared;
use crate::proxy_protocol::HeaderError;
use crate::tls::HelloError;

/// Why a connection was refused or failed. `as_str` is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    // Rejections: the proxy refused the client.
    NotAllowed,
    MaxConnections,
    SourceLimit,
    NoRoute,
    BackendLimit,
    HelloTimeout,
    HelloEof,
    Hello(HelloError),
    ProxyHeader(HeaderError),
    ProxyHeaderTimeout,
    // Errors: something failed on the way.
    Accept,
    ConnectFailed,
    ConnectTimeout,
    NoBackend,
    ResolveFailed,
    Io,
    IdleTimeout,
    DrainDeadline,
}

const HELLO_ERRORS: [HelloError; 4] = [
    HelloError::NotTls,
    HelloError::NotClientHello,
    HelloError::Malformed,
    HelloError::TooLarge,
];
const HEADER_ERRORS: [HeaderError; 4] = [
    HeaderError::Missing,
    HeaderError::Malformed,
    HeaderError::TooLarge,
    HeaderError::Unsupported,
];

impl Reason {
    /// Every reason, in metric order.
    pub const ALL: [Reason; 24] = [
        Reason::NotAllowed,
        Reason::MaxConnections,
        Reason::SourceLimit,
        Reason::NoRoute,
        Reason::BackendLimit,
        Reason::HelloTimeout,
        Reason::HelloEof,
        Reason::Hello(HELLO_ERRORS[0]),
        Reason::Hello(HELLO_ERRORS[1]),
        Reason::Hello(HELLO_ERRORS[2]),
        Reason::Hello(HELLO_ERRORS[3]),
        Reason::ProxyHeader(HEADER_ERRORS[0]),
        Reason::ProxyHeader(HEADER_ERRORS[1]),
        Reason::ProxyHeader(HEADER_ERRORS[2]),
        Reason::ProxyHeader(HEADER_ERRORS[3]),
        Reason::ProxyHeaderTimeout,
        Reason::Accept,
        Reason::ConnectFailed,
        Reason::ConnectTimeout,
        Reason::NoBackend,
        Reason::ResolveFailed,
        Reason::Io,
        Reason::IdleTimeout,
        Reason::DrainDeadline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotAllowed => "not_allowed",
            Reason::MaxConnections => "max_connections",
            Reason::SourceLimit => "source_limit",
            Reason::NoRoute => "no_route",
            Reason::BackendLimit => "backend_limit",
            Reason::HelloTimeout => "hello_timeout",
            Reason::HelloEof => "hello_eof",
            Reason::Hello(e) => e.as_str(),
            Reason::ProxyHeader(e) => e.as_str(),
            Reason::ProxyHeaderTimeout => "proxy_header_timeout",
            Reason::Accept => "accept",
            Reason::ConnectFailed => "connect_failed",
            Reason::ConnectTimeout => "connect_timeout",
            Reason::NoBackend => "no_backend",
            Reason::ResolveFailed => "resolve_failed",
            Reason::Io => "io",
            Reason::IdleTimeout => "idle_timeout",
            Reason::DrainDeadline => "drain_deadline",
        }
    }

    /// Whether the proxy refused the client (a rejection) rather than failed.
    pub fn is_rejection(self) -> bool {
        self.index() < 16
    }

    fn index(self) -> usize {
        match self {
            Reason::NotAllowed => 0,
            Reason::MaxConnections => 1,
            Reason::SourceLimit => 2,
            Reason::NoRoute => 3,
            Reason::BackendLimit => 4,
            Reason::HelloTimeout => 5,
            Reason::HelloEof => 6,
            Reason::Hello(e) => 7 + HELLO_ERRORS.iter().position(|x| *x == e).unwrap_or(0),
            Reason::ProxyHeader(e) => 11 + HEADER_ERRORS.iter().position(|x| *x == e).unwrap_or(0),
            Reason::ProxyHeaderTimeout => 15,
            Reason::Accept => 16,
            Reason::ConnectFailed => 17,
            Reason::ConnectTimeout => 18,
            Reason::NoBackend => 19,
            Reason::ResolveFailed => 20,
            Reason::Io => 21,
            Reason::IdleTimeout => 22,
            Reason::DrainDeadline => 23,
        }
    }
}

/// Counters of one route, kept across reloads by route name.
#[derive(Debug, Default)]
pub struct RouteStats {
    pub active: Gauge,
    pub total: Counter,
    pub bytes_to_backend: Counter,
    pub bytes_to_client: Counter,
}

/// Counters of the whole proxy.
#[derive(Debug, Default)]
pub struct Metrics {
    reasons: [Counter; Reason::ALL.len()],
    routes: Mutex<BTreeMap<String, Arc<RouteStats>>>,
    pub accepted: Counter,
    pub splice_fallbacks: Counter,
    pub reloads: Counter,
    pub health_changes: Counter,
}

impl Metrics {
    pub fn count(&self, reason: Reason) {
        self.reasons[reason.index()].inc();
    }

    pub fn reason(&self, reason: Reason) -> u64 {
        self.reasons[reason.index()].get()
    }

    /// The counters of a route, created on first use.
    pub fn route(&self, name: &str) -> Arc<RouteStats> {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(routes.entry(name.to_owned()).or_default())
    }
}

/// The `/metrics` view of a running proxy.
pub struct Collector(pub(super) Arc<Shared>);

impl Collect for Collector {
    fn collect(&self, out: &mut Encoder) {
        let shared = &self.0;
        let m = &shared.metrics;
        out.gauge(
            "sixgate_proxy_connections_open",
            "Client connections open, from accept to close (also those still sending their ClientHello).",
            &[],
            u64::from(shared.conns.load(Ordering::Relaxed)),
        );
        out.counter(
            "sixgate_proxy_connections_accepted_total",
            "Client connections accepted.",
            &[],
            m.accepted.get(),
        );
        let routes: Vec<(String, Arc<RouteStats>)> = m
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        for (name, s) in &routes {
            out.gauge(
                "sixgate_proxy_connections_active",
                "Connections routed and not yet closed, by route.",
                &[("route", name)],
                s.active.get(),
            );
        }
        for (name, s) in &routes {
            out.counter(
                "sixgate_proxy_connections_total",
                "Connections routed, by route.",
                &[("route", name)],
                s.total.get(),
            );
        }
        for (name, s) in &routes {
            out.counter(
                "sixgate_proxy_transferred_bytes_total",
                "Bytes moved, by route and direction.",
                &[("route", name), ("direction", "to_backend")],
                s.bytes_to_backend.get(),
            );
            out.counter(
                "sixgate_proxy_transferred_bytes_total",
                "Bytes moved, by route and direction.",
                &[("route", name), ("direction", "to_client")],
                s.bytes_to_client.get(),
            );
        }
        for reason in Reason::ALL.iter().filter(|r| r.is_rejection()) {
            out.counter(
                "sixgate_proxy_rejections_total",
                "Client connections refused, by reason.",
                &[("reason", reason.as_str())],
                m.reason(*reason),
            );
        }
        for reason in Reason::ALL.iter().filter(|r| !r.is_rejection()) {
            out.counter(
                "sixgate_proxy_errors_total",
                "Failures, by reason (connect failures count each attempt).",
                &[("reason", reason.as_str())],
                m.reason(*reason),
            );
        }
        let table = shared.table();
        let now = std::time::Instant::now();
        let mut backends = Vec::new();
        for listener in table.listeners.values() {
            for route in &listener.routes {
                for ep in route.pool.endpoints().iter() {
                    backends.push((route.name.clone(), Arc::clone(ep)));
                }
            }
        }
        for (route, ep) in &backends {
            out.gauge(
                "sixgate_proxy_backend_up",
                "1 when a backend address takes new connections (up and not ejected).",
                &[("route", route), ("backend", &ep.label)],
                u64::from(ep.is_available(now)),
            );
        }
        for (route, ep) in &backends {
            out.gauge(
                "sixgate_proxy_backend_connections_active",
                "Connections open to a backend address.",
                &[("route", route), ("backend", &ep.label)],
                u64::from(ep.active.load(Ordering::Relaxed)),
            );
        }
        out.counter(
            "sixgate_proxy_backend_health_changes_total",
            "Backends going down or up (active checks and passive ejection).",
            &[],
            m.health_changes.get(),
        );
        out.counter(
            "sixgate_proxy_splice_fallbacks_total",
            "Copies that fell back from splice(2) to a userspace copy.",
            &[],
            m.splice_fallbacks.get(),
        );
        out.counter(
            "sixgate_proxy_reloads_total",
            "Route and backend reloads applied.",
            &[],
            m.reloads.get(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_indexes_follow_all() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
        let names: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len());
    }
}
