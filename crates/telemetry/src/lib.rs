//! Metrics and health state shared by every part of sixgate.
//!
//! Parts keep their counters in plain atomics (nothing on the hot path but a
//! relaxed `fetch_add`) and implement [`Collect`] to write them out in the
//! Prometheus text exposition format when `/metrics` is scraped. The admin
//! server owns a [`Registry`] of collectors and a [`Health`] of readiness flags.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Something that can write its metrics into an [`Encoder`].
pub trait Collect: Send + Sync {
    fn collect(&self, out: &mut Encoder);
}

/// A monotonically increasing counter (a relaxed atomic).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Decrements, saturating at zero.
    pub fn dec(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Writes metric families in the Prometheus text format (version 0.0.4).
///
/// Samples may arrive in any order; each family is written once, with its
/// `HELP` and `TYPE` lines, its samples grouped as the format requires.
#[derive(Debug, Default)]
pub struct Encoder {
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

#[derive(Debug)]
struct Family {
    header: String,
    samples: String,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// One sample of a counter.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        let out = self.family(name, help, "counter");
        write_sample(out, name, labels, value);
    }

    /// One sample of a gauge.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        let out = self.family(name, help, "gauge");
        write_sample(out, name, labels, value);
    }

    /// One sample of a gauge holding a fractional value (seconds, ratios).
    pub fn gauge_f64(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let out = self.family(name, help, "gauge");
        write_sample(out, name, labels, value);
    }

    /// The sample text of family `name`, created with its header on first use.
    fn family(&mut self, name: &str, help: &str, kind: &str) -> &mut String {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    header: format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"),
                    samples: String::new(),
                });
                self.index.insert(name.to_owned(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        &mut self.families[i].samples
    }

    pub fn finish(self) -> String {
        let mut text = String::new();
        for family in self.families {
            text.push_str(&family.header);
            text.push_str(&family.samples);
        }
        text
    }
}

fn write_sample(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    value: impl std::fmt::Display,
) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"");
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// The collectors whose metrics `/metrics` serves.
#[derive(Default, Clone)]
pub struct Registry {
    collectors: Arc<Mutex<Vec<Arc<dyn Collect>>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&self, collector: Arc<dyn Collect>) {
        self.collectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(collector);
    }

    /// Renders every registered collector, in registration order.
    pub fn render(&self) -> String {
        let collectors = self
            .collectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut out = Encoder::new();
        for collector in collectors {
            collector.collect(&mut out);
        }
        out.finish()
    }
}

/// Readiness of the parts that run in this process.
///
/// The process is live while it answers at all; it is ready when every
/// registered part says so and it is not draining.
#[derive(Default, Clone)]
pub struct Health {
    inner: Arc<HealthInner>,
}

#[derive(Default)]
struct HealthInner {
    draining: AtomicBool,
    parts: Mutex<Vec<(String, Arc<AtomicBool>)>>,
}

/// A handle a part uses to report its own readiness.
#[derive(Clone, Debug)]
pub struct ReadyFlag(Arc<AtomicBool>);

impl ReadyFlag {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// The readiness flag of part `name`, added not ready on first use. The
    /// program registers every part before starting any, so `/readyz` is not
    /// ready until each has reported; the part asks again for the same flag.
    pub fn part(&self, name: &str) -> ReadyFlag {
        let mut parts = self
            .inner
            .parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, flag)) = parts.iter().find(|(n, _)| n == name) {
            return ReadyFlag(Arc::clone(flag));
        }
        let flag = Arc::new(AtomicBool::new(false));
        parts.push((name.to_owned(), Arc::clone(&flag)));
        ReadyFlag(flag)
    }

    /// Marks the process as shutting down: `/readyz` turns false at once.
    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// The parts that are not ready, or `["draining"]` while shutting down.
    pub fn not_ready(&self) -> Vec<String> {
        if self.is_draining() {
            return vec!["draining".to_owned()];
        }
        self.inner
            .parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, flag)| !flag.load(Ordering::Relaxed))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Two;
    impl Collect for Two {
        fn collect(&self, out: &mut Encoder) {
            out.counter("sixgate_x_total", "x things", &[("reason", "a\"b")], 1);
            out.counter("sixgate_x_total", "x things", &[("reason", "c")], 2);
            out.gauge("sixgate_y", "y", &[], 3);
        }
    }

    #[test]
    fn family_header_is_written_once_and_labels_are_escaped() {
        let registry = Registry::new();
        registry.register(Arc::new(Two));
        let text = registry.render();
        assert_eq!(
            text,
            "# HELP sixgate_x_total x things\n# TYPE sixgate_x_total counter\n\
             sixgate_x_total{reason=\"a\\\"b\"} 1\nsixgate_x_total{reason=\"c\"} 2\n\
             # HELP sixgate_y y\n# TYPE sixgate_y gauge\nsixgate_y 3\n"
        );
    }

    struct Interleaved;
    impl Collect for Interleaved {
        fn collect(&self, out: &mut Encoder) {
            for proto in ["tcp", "udp"] {
                out.gauge("sixgate_a", "a", &[("proto", proto)], 1);
                out.gauge("sixgate_b", "b", &[("proto", proto)], 2);
            }
        }
    }

    #[test]
    fn interleaved_samples_are_grouped_by_family_with_one_header() {
        let registry = Registry::new();
        registry.register(Arc::new(Interleaved));
        let text = registry.render();
        assert_eq!(
            text,
            "# HELP sixgate_a a\n# TYPE sixgate_a gauge\n\
             sixgate_a{proto=\"tcp\"} 1\nsixgate_a{proto=\"udp\"} 1\n\
             # HELP sixgate_b b\n# TYPE sixgate_b gauge\n\
             sixgate_b{proto=\"tcp\"} 2\nsixgate_b{proto=\"udp\"} 2\n"
        );
    }

    #[test]
    fn readiness_follows_parts_and_draining() {
        let health = Health::new();
        let dns = health.part("dns64");
        assert_eq!(health.not_ready(), vec!["dns64".to_owned()]);
        dns.set(true);
        assert!(health.not_ready().is_empty());
        // Asking again gives the same flag, not a second one.
        health.part("dns64").set(false);
        assert_eq!(health.not_ready(), vec!["dns64".to_owned()]);
        dns.set(true);
        health.start_draining();
        assert_eq!(health.not_ready(), vec!["draining".to_owned()]);
    }
}
