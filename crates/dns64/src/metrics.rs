//! `sixgate_dns64_*` metrics: plain atomics written out on scrape.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use sixgate_telemetry::{Collect, Counter, Encoder, Gauge};

use crate::cache::Cache;
use crate::wire::DropReason;

/// Query types counted by name; the rest are "other".
const TYPES: [(u16, &str); 12] = [
    (1, "A"),
    (28, "AAAA"),
    (12, "PTR"),
    (5, "CNAME"),
    (15, "MX"),
    (16, "TXT"),
    (33, "SRV"),
    (2, "NS"),
    (6, "SOA"),
    (65, "HTTPS"),
    (64, "SVCB"),
    (255, "ANY"),
];
const OTHER_TYPE: usize = TYPES.len();

const RCODES: [&str; 8] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other",
];

/// Upstream latency histogram bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Why an upstream exchange failed; `as_str` is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    Timeout,
    Network,
    /// A reply that did not parse or did not match the question.
    BadAnswer,
    /// SERVFAIL, REFUSED, NOTIMP or FORMERR from the forwarder.
    ErrorRcode,
    Tcp,
}

impl UpstreamError {
    pub const ALL: [UpstreamError; 5] = [
        Self::Timeout,
        Self::Network,
        Self::BadAnswer,
        Self::ErrorRcode,
        Self::Tcp,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Network => "network",
            Self::BadAnswer => "bad_answer",
            Self::ErrorRcode => "error_rcode",
            Self::Tcp => "tcp",
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    queries: [[Counter; RCODES.len()]; TYPES.len() + 1],
    pub synthesized: Counter,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub stale_served: Counter,
    pub coalesced: Counter,
    pub prefetches: Counter,
    dropped: [Counter; DropReason::ALL.len()],
    pub upstream_queries: Counter,
    upstream_errors: [Counter; UpstreamError::ALL.len()],
    pub upstream_tcp_fallbacks: Counter,
    latency_buckets: [Counter; BUCKETS.len()],
    latency_count: Counter,
    latency_sum_us: Counter,
    pub inflight: Gauge,
    pub tcp_connections: Gauge,
    cache: OnceLock<Arc<Cache>>,
}

fn type_index(qtype: u16) -> usize {
    TYPES
        .iter()
        .position(|(t, _)| *t == qtype)
        .unwrap_or(OTHER_TYPE)
}

fn rcode_index(rcode: ResponseCode) -> usize {
    match rcode {
        ResponseCode::NoError => 0,
        ResponseCode::FormErr => 1,
        ResponseCode::ServFail => 2,
        ResponseCode::NXDomain => 3,
        ResponseCode::NotImp => 4,
        ResponseCode::Refused => 5,
        ResponseCode::BADVERS => 6,
        _ => 7,
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets the cache's size be reported.
    pub fn watch_cache(&self, cache: Arc<Cache>) {
        let _ = self.cache.set(cache);
    }

    pub fn query(&self, qtype: u16, rcode: ResponseCode) {
        self.queries[type_index(qtype)][rcode_index(rcode)].inc();
    }

    pub fn queries(&self, qtype: u16, rcode: ResponseCode) -> u64 {
        self.queries[type_index(qtype)][rcode_index(rcode)].get()
    }

    pub fn dropped(&self, reason: DropReason) {
        self.dropped[reason as usize].inc();
    }

    pub fn upstream_error(&self, reason: UpstreamError) {
        self.upstream_errors[reason as usize].inc();
    }

    pub fn upstream_latency(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (bound, counter) in BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                counter.inc();
            }
        }
        self.latency_count.inc();
        self.latency_sum_us
            .add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }
}

impl Collect for Metrics {
    fn collect(&self, out: &mut Encoder) {
        for (ti, row) in self.queries.iter().enumerate() {
            let qtype = TYPES.get(ti).map_or("other", |(_, n)| n);
            for (ri, counter) in row.iter().enumerate() {
                let v = counter.get();
                if v > 0 {
                    out.counter(
                        "sixgate_dns64_queries_total",
                        "Queries answered, by query type and response code.",
                        &[("type", qtype), ("rcode", RCODES[ri])],
                        v,
                    );
                }
            }
        }
        out.counter(
            "sixgate_dns64_synthesized_total",
            "Answers that carry records made by DNS64 (AAAA, PTR alias, ipv4only.arpa).",
            &[],
            self.synthesized.get(),
        );
        out.counter(
            "sixgate_dns64_cache_hits_total",
            "Answers given from the cache.",
            &[],
            self.cache_hits.get(),
        );
        out.counter(
            "sixgate_dns64_cache_misses_total",
            "Queries the cache could not answer.",
            &[],
            self.cache_misses.get(),
        );
        out.counter(
            "sixgate_dns64_stale_answers_total",
            "Expired answers given because every forwarder failed (serve-stale).",
            &[],
            self.stale_served.get(),
        );
        out.counter(
            "sixgate_dns64_coalesced_total",
            "Queries answered by joining an identical query already sent upstream.",
            &[],
            self.coalesced.get(),
        );
        out.counter(
            "sixgate_dns64_prefetches_total",
            "Cached answers refreshed in the background in the last tenth of their TTL.",
            &[],
            self.prefetches.get(),
        );
        for reason in DropReason::ALL {
            out.counter(
                "sixgate_dns64_dropped_total",
                "Messages dropped without an answer, by reason.",
                &[("reason", reason.as_str())],
                self.dropped[reason as usize].get(),
            );
        }
        out.counter(
            "sixgate_dns64_upstream_queries_total",
            "Queries sent to forwarders (UDP and TCP).",
            &[],
            self.upstream_queries.get(),
        );
        for reason in UpstreamError::ALL {
            out.counter(
                "sixgate_dns64_upstream_errors_total",
                "Failed exchanges with a forwarder, by reason.",
                &[("reason", reason.as_str())],
                self.upstream_errors[reason as usize].get(),
            );
        }
        out.counter(
            "sixgate_dns64_upstream_tcp_fallbacks_total",
            "Truncated UDP answers retried over TCP.",
            &[],
            self.upstream_tcp_fallbacks.get(),
        );
        for (bound, counter) in BUCKETS.iter().zip(&self.latency_buckets) {
            out.counter(
                "sixgate_dns64_upstream_latency_seconds_bucket",
                "Forwarder answer time (cumulative histogram buckets).",
                &[("le", &bound.to_string())],
                counter.get(),
            );
        }
        out.counter(
            "sixgate_dns64_upstream_latency_seconds_bucket",
            "Forwarder answer time (cumulative histogram buckets).",
            &[("le", "+Inf")],
            self.latency_count.get(),
        );
        out.counter(
            "sixgate_dns64_upstream_latency_seconds_count",
            "Forwarder answers timed.",
            &[],
            self.latency_count.get(),
        );
        #[allow(clippy::cast_precision_loss)] // a sum of microseconds fits f64 well enough
        let sum = self.latency_sum_us.get() as f64 / 1e6;
        out.gauge_f64(
            "sixgate_dns64_upstream_latency_seconds_sum",
            "Sum of forwarder answer times.",
            &[],
            sum,
        );
        out.gauge(
            "sixgate_dns64_inflight_queries",
            "Queries waiting for forwarders.",
            &[],
            self.inflight.get(),
        );
        out.gauge(
            "sixgate_dns64_tcp_connections",
            "Open client TCP connections.",
            &[],
            self.tcp_connections.get(),
        );
        if let Some(cache) = self.cache.get() {
            let stats = cache.stats();
            out.gauge(
                "sixgate_dns64_cache_entries",
                "Answers in the cache.",
                &[],
                stats.entries as u64,
            );
            out.gauge(
                "sixgate_dns64_cache_bytes",
                "Memory the cache accounts for.",
                &[],
                stats.bytes as u64,
            );
        }
    }
}
