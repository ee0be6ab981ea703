//! The applier: puts the plan in place (`apply`), compares it with the live
//! state and repairs drift (`reconcile`, one step of `watch`), reports
//! (`show`, `diff`) and removes what sixgate added (`delete`).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use sixgate_telemetry::{Collect, Counter, Encoder, Gauge};

use crate::config::{Ipv6Detect, Plan};
use crate::detect::{Interfaces, Ipv6Source};
use crate::routes::{compare, RouteChanges, PROTO};
use crate::ruleset::{parse_counters, render_delete, table_ref, RuleCounter, Table};
use crate::system::{interface_names, Ip, Nft, SandboxError};
use crate::watch::line_diff;

/// Why an apply failed. Each kind is counted under its `stage()`.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Refused before anything was changed: a missing interface, a route
    /// slot taken by another owner.
    #[error("{key}: {reason}")]
    Refused { key: String, reason: String },
    #[error("cannot tell whether uplink {uplink} has IPv6: {message}")]
    Detect { uplink: String, message: String },
    #[error("nft -c refused the rules (nothing was changed): {0}")]
    Check(String),
    #[error("{key}: cannot install route {route} (table {table} left as it was): {message}")]
    Route {
        key: String,
        route: String,
        table: String,
        message: String,
    },
    #[error("nft -f failed (the previous table {table} is left as it was): {message}")]
    Apply { table: String, message: String },
    #[error("{0}")]
    Read(String),
}

impl ApplyError {
    /// The metric label of this failure.
    pub fn stage(&self) -> &'static str {
        match self {
            ApplyError::Refused { .. } => "refused",
            ApplyError::Detect { .. } => "detect",
            ApplyError::Check(_) => "check",
            ApplyError::Route { .. } => "route",
            ApplyError::Apply { .. } => "apply",
            ApplyError::Read(_) => "read",
        }
    }
}

const STAGES: [&str; 6] = ["refused", "detect", "check", "route", "apply", "read"];

/// The `sixgate_node_*` metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    pub checks: Counter,
    pub applies: Counter,
    pub drift_table: Counter,
    pub drift_routes: Counter,
    failures: [Counter; STAGES.len()],
    pub ipv6_rules: Gauge,
    pub routes: Gauge,
    rules: Mutex<Vec<RuleCounter>>,
}

impl Metrics {
    pub fn failed(&self, err: &ApplyError) {
        if let Some(i) = STAGES.iter().position(|s| *s == err.stage()) {
            self.failures[i].inc();
        }
    }

    pub fn failures(&self, stage: &str) -> u64 {
        STAGES
            .iter()
            .position(|s| *s == stage)
            .map_or(0, |i| self.failures[i].get())
    }

    fn set_rules(&self, counters: Vec<RuleCounter>) {
        *self.rules.lock().unwrap_or_else(PoisonError::into_inner) = counters;
    }
}

impl Collect for Metrics {
    fn collect(&self, out: &mut Encoder) {
        out.counter(
            "sixgate_node_checks_total",
            "Comparisons of the live rules and routes with the config.",
            &[],
            self.checks.get(),
        );
        out.counter(
            "sixgate_node_applies_total",
            "Successful applies of rules or routes.",
            &[],
            self.applies.get(),
        );
        for (what, c) in [("table", &self.drift_table), ("routes", &self.drift_routes)] {
            out.counter(
                "sixgate_node_drift_total",
                "Times the rules or routes sixgate put in place were found changed or gone.",
                &[("what", what)],
                c.get(),
            );
        }
        for (stage, c) in STAGES.iter().zip(&self.failures) {
            out.counter(
                "sixgate_node_apply_failures_total",
                "Failed applies, by stage.",
                &[("stage", stage)],
                c.get(),
            );
        }
        out.gauge(
            "sixgate_node_ipv6_rules_active",
            "1 when the IPv6 rules are on (the uplink has a global IPv6 address), else 0.",
            &[],
            self.ipv6_rules.get(),
        );
        out.gauge(
            "sixgate_node_routes",
            "Routes sixgate wants in place.",
            &[],
            self.routes.get(),
        );
        let rules = self
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for r in &rules {
            out.counter(
                "sixgate_node_rule_packets_total",
                "Packets counted by each rule of table ip6 sixgate (reset when the table is replaced).",
                &[("rule", &r.rule)],
                r.packets,
            );
        }
        for r in &rules {
            out.counter(
                "sixgate_node_rule_bytes_total",
                "Bytes counted by each rule of table ip6 sixgate (reset when the table is replaced).",
                &[("rule", &r.rule)],
                r.bytes,
            );
        }
    }
}

/// What a `reconcile` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was as wanted.
    InSync,
    /// First apply of this agent.
    Applied,
    /// Something sixgate had put in place was changed or gone, and was put back.
    Repaired { table: bool, routes: bool },
}

/// The node agent.
pub struct Agent {
    plan: Plan,
    nft: Nft,
    ip: Ip,
    source: Box<dyn Ipv6Source>,
    metrics: Arc<Metrics>,
    /// Last detection result, to log changes only.
    ipv6: Option<bool>,
    /// Whether `unshare --net` works here (see [`Nft::canonical`]).
    sandbox: bool,
    /// The script and the listing it gives, once known.
    expected: Option<(String, String)>,
    /// Whether this agent has put the plan in place.
    enforced: bool,
}

impl Agent {
    pub fn new(plan: Plan, metrics: Arc<Metrics>) -> Self {
        Self {
            plan,
            nft: Nft::default(),
            ip: Ip::default(),
            source: Box::new(Interfaces),
            metrics,
            ipv6: None,
            sandbox: true,
            expected: None,
            enforced: false,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Replaces the plan (a reloaded config); the next step applies it.
    pub fn set_plan(&mut self, plan: Plan) {
        if plan != self.plan {
            self.plan = plan;
            self.enforced = false;
            self.ipv6 = None;
        }
    }

    /// Whether the IPv6 rules apply now. Logs one line when that changes.
    fn detect(&mut self) -> Result<bool, ApplyError> {
        if !self.plan.has_ipv6_rules() {
            return Ok(false);
        }
        let (on, why) = match (self.plan.detect, &self.plan.uplink) {
            (Ipv6Detect::Assume, _) | (Ipv6Detect::Interfaces, None) => {
                (true, "ipv6_detect = \"assume\"".to_owned())
            }
            (Ipv6Detect::Interfaces, Some(uplink)) => {
                let found = self
                    .source
                    .global_ipv6(uplink)
                    .map_err(|e| ApplyError::Detect {
                        uplink: uplink.to_string(),
                        message: e.to_string(),
                    })?;
                match found.first() {
                    Some(addr) => (
                        true,
                        format!(
                            "uplink {uplink} has global IPv6 address {addr} ({})",
                            self.source.name()
                        ),
                    ),
                    None => (
                        false,
                        format!(
                            "no global IPv6 address on uplink {uplink} ({})",
                            self.source.name()
                        ),
                    ),
                }
            }
        };
        if self.ipv6 != Some(on) {
            // A change of our own decision, not someone else's edit: the
            // next apply is not drift.
            if self.ipv6.is_some() {
                self.enforced = false;
            }
            if on {
                tracing::info!("node: {why}: IPv6 rules on");
            } else {
                tracing::warn!("node: {why}: IPv6 rules skipped");
            }
            self.ipv6 = Some(on);
        }
        self.metrics.ipv6_rules.set(u64::from(on));
        Ok(on)
    }

    /// The listing the table of `script` gives once applied, if known.
    fn expected_listing(&mut self, script: &str) -> Option<String> {
        if let Some((s, listing)) = &self.expected {
            if s == script {
                return Some(listing.clone());
            }
        }
        if !self.sandbox {
            return None;
        }
        match self.nft.canonical(script) {
            Ok(listing) => {
                self.expected = Some((script.to_owned(), listing.clone()));
                Some(listing)
            }
            Err(SandboxError::Unavailable(err)) => {
                tracing::info!(
                    "node: cannot list the rules in a throwaway namespace ({err}); \
                     drift is judged against the listing read back after each apply"
                );
                self.sandbox = false;
                None
            }
            Err(SandboxError::Failed(err)) => {
                tracing::debug!("node: nft failed in the throwaway namespace: {err}");
                None
            }
        }
    }

    /// Puts the plan in place whatever the live state (`sixgate node apply`).
    pub fn apply(&mut self) -> Result<Summary, ApplyError> {
        let result = self.apply_inner();
        if let Err(err) = &result {
            self.metrics.failed(err);
        }
        result
    }

    fn apply_inner(&mut self) -> Result<Summary, ApplyError> {
        let ipv6 = self.detect()?;
        let script = self.script(ipv6);
        let routes = self.plan.routes(ipv6);
        let live = self.ip.routes().map_err(ApplyError::Read)?;
        let changes = compare(&routes, &live);
        self.enforce(ipv6, script.as_deref(), true, &changes)?;
        self.enforced = true;
        Ok(self.summary(ipv6, &changes))
    }

    fn script(&self, ipv6: bool) -> Option<String> {
        if ipv6 {
            Table::from_plan(&self.plan).map(|t| t.render_replace())
        } else {
            None
        }
    }

    fn summary(&self, ipv6: bool, changes: &RouteChanges) -> Summary {
        let rules = if ipv6 {
            Table::from_plan(&self.plan).map_or(0, |t| t.chains.iter().map(|c| c.rules.len()).sum())
        } else {
            0
        };
        Summary {
            ipv6,
            rules,
            routes: self.plan.routes(ipv6).len(),
            routes_changed: changes.replace.len() + changes.delete.len(),
        }
    }

    /// One step of `watch`: compare, and apply what differs. Failures are
    /// counted in the metrics by stage.
    pub fn reconcile(&mut self) -> Result<Outcome, ApplyError> {
        let result = self.reconcile_inner();
        if let Err(err) = &result {
            self.metrics.failed(err);
        }
        result
    }

    fn reconcile_inner(&mut self) -> Result<Outcome, ApplyError> {
        self.metrics.checks.inc();
        let ipv6 = self.detect()?;
        let script = self.script(ipv6);
        let wanted_routes = self.plan.routes(ipv6);
        self.metrics.routes.set(wanted_routes.len() as u64);
        let expected = script.as_deref().and_then(|s| self.expected_listing(s));
        let live = self.nft.list(true).map_err(ApplyError::Read)?;
        let table_ok = match (&script, &live) {
            (None, None) => true,
            (Some(_), Some(live)) => expected.as_deref() == Some(live.as_str()),
            _ => false,
        };
        let live_routes = self.ip.routes().map_err(ApplyError::Read)?;
        let changes = compare(&wanted_routes, &live_routes);
        if live.is_some() {
            if let Ok(Some(json)) = self.nft.list_json() {
                self.metrics.set_rules(parse_counters(&json));
            }
        } else {
            self.metrics.set_rules(Vec::new());
        }
        if table_ok && changes.is_empty() {
            if !self.enforced {
                tracing::info!(
                    "node rules already in place: {}",
                    self.summary(ipv6, &changes)
                );
                self.enforced = true;
            }
            return Ok(Outcome::InSync);
        }
        let drift = self.enforced;
        if drift {
            if !table_ok {
                self.metrics.drift_table.inc();
                tracing::warn!(
                    "node: table {} was {} by someone else (drift {}): putting it back",
                    table_ref(),
                    if live.is_none() { "deleted" } else { "changed" },
                    self.metrics.drift_table.get()
                );
            }
            if !changes.is_empty() {
                self.metrics.drift_routes.inc();
                let missing: Vec<String> =
                    changes.replace.iter().map(ToString::to_string).collect();
                tracing::warn!(
                    "node: routes changed by someone else (drift {}): missing or different: [{}]",
                    self.metrics.drift_routes.get(),
                    missing.join(", ")
                );
            }
        }
        self.enforce(ipv6, script.as_deref(), !table_ok, &changes)?;
        self.enforced = true;
        if drift {
            Ok(Outcome::Repaired {
                table: !table_ok,
                routes: !changes.is_empty(),
            })
        } else {
            tracing::info!("node rules applied: {}", self.summary(ipv6, &changes));
            Ok(Outcome::Applied)
        }
    }

    /// Checks, then changes: routes first, the table last, so that a route
    /// that cannot be installed leaves the previous table in place.
    fn enforce(
        &mut self,
        ipv6: bool,
        script: Option<&str>,
        table: bool,
        changes: &RouteChanges,
    ) -> Result<(), ApplyError> {
        let present = interface_names().map_err(ApplyError::Read)?;
        for (key, name) in self.plan.interfaces(ipv6) {
            if !present.iter().any(|p| p == name.as_str()) {
                return Err(ApplyError::Refused {
                    key,
                    reason: format!("no interface named `{name}` on this node"),
                });
            }
        }
        if let Some((route, other)) = changes.conflicts.first() {
            return Err(ApplyError::Refused {
                key: route.key.clone(),
                reason: format!(
                    "a route for {} with metric {} exists and is not sixgate's ({other}); \
                     sixgate does not replace it",
                    route.prefix,
                    route.metric_or_default()
                ),
            });
        }
        if table {
            if let Some(script) = script {
                self.nft.check(script).map_err(ApplyError::Check)?;
            }
        }
        for stale in &changes.delete {
            self.ip
                .run(&stale.delete_args())
                .map_err(|message| ApplyError::Route {
                    key: "(stale route)".to_owned(),
                    route: stale.to_string(),
                    table: table_ref(),
                    message,
                })?;
        }
        for route in &changes.replace {
            self.ip
                .run(&route.replace_args())
                .map_err(|message| ApplyError::Route {
                    key: route.key.clone(),
                    route: route.to_string(),
                    table: table_ref(),
                    message,
                })?;
        }
        if table {
            let text = script.map_or_else(render_delete, str::to_owned);
            self.nft.apply(&text).map_err(|message| ApplyError::Apply {
                table: table_ref(),
                message,
            })?;
            if let (Some(script), false) = (script, self.sandbox) {
                if let Ok(Some(listing)) = self.nft.list(true) {
                    self.expected = Some((script.to_owned(), listing));
                }
            }
        }
        self.metrics.applies.inc();
        Ok(())
    }

    /// The wanted state against the live one: `(same, text)`.
    pub fn diff(&mut self) -> Result<(bool, String), ApplyError> {
        let ipv6 = self.detect()?;
        let script = self.script(ipv6);
        let wanted = script.as_deref().map(|s| {
            // Without a sandbox, compare with the script's own text.
            self.expected_listing(s)
                .unwrap_or_else(|| s.lines().skip(2).collect::<Vec<_>>().join("\n") + "\n")
        });
        let live = self.nft.list(true).map_err(ApplyError::Read)?;
        let mut out = String::new();
        let mut same = wanted == live;
        if !same {
            let _ = writeln!(
                out,
                "--- live table {}\n+++ wanted by the config",
                table_ref()
            );
            out.push_str(&line_diff(
                live.as_deref().unwrap_or(""),
                wanted.as_deref().unwrap_or(""),
            ));
        }
        let live_routes = self.ip.routes().map_err(ApplyError::Read)?;
        let changes = compare(&self.plan.routes(ipv6), &live_routes);
        for r in &changes.replace {
            let _ = writeln!(out, "+ route {r}  ({})", r.key);
        }
        for r in &changes.delete {
            let _ = writeln!(out, "- route {r}  (no longer in the config)");
        }
        for (r, other) in &changes.conflicts {
            let _ = writeln!(out, "! route {r}  ({}): taken by {other}", r.key);
        }
        same &= changes.is_empty();
        Ok((same, out))
    }
}

/// What an apply put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub ipv6: bool,
    pub rules: usize,
    pub routes: usize,
    pub routes_changed: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ipv6 {
            write!(f, "table {} with {} rules", table_ref(), self.rules)?;
        } else {
            write!(f, "no table (no IPv6 rules)")?;
        }
        write!(
            f,
            ", {} routes (proto {PROTO}, {} changed)",
            self.routes, self.routes_changed
        )
    }
}

/// The live table (with counters) and sixgate's routes, as text.
pub fn show() -> Result<String, ApplyError> {
    let nft = Nft::default();
    let mut out = String::new();
    match nft.list(false).map_err(ApplyError::Read)? {
        Some(listing) => out.push_str(&listing),
        None => {
            let _ = writeln!(out, "# no table {}", table_ref());
        }
    }
    let routes = Ip::default().routes().map_err(ApplyError::Read)?;
    let _ = writeln!(out, "# routes owned by sixgate (proto {PROTO})");
    for r in routes.iter().filter(|r| r.owned()) {
        let _ = writeln!(out, "{r}");
    }
    Ok(out)
}

/// Removes the owned table and every route marked as sixgate's; nothing else.
/// Returns how many routes were removed.
pub fn delete() -> Result<usize, ApplyError> {
    let nft = Nft::default();
    let ip = Ip::default();
    let routes = ip.routes().map_err(ApplyError::Read)?;
    let mut removed = 0;
    for r in routes.iter().filter(|r| r.owned()) {
        ip.run(&r.delete_args())
            .map_err(|message| ApplyError::Route {
                key: "(delete)".to_owned(),
                route: r.to_string(),
                table: table_ref(),
                message,
            })?;
        removed += 1;
    }
    nft.apply(&render_delete())
        .map_err(|message| ApplyError::Apply {
            table: table_ref(),
            message,
        })?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_name_every_failure_stage_and_drift_kind() {
        let m = Metrics::default();
        m.drift_table.inc();
        m.failed(&ApplyError::Check("x".to_owned()));
        m.set_rules(vec![RuleCounter {
            rule: "rewrite 0 in".to_owned(),
            packets: 3,
            bytes: 200,
        }]);
        let mut out = Encoder::new();
        m.collect(&mut out);
        let text = out.finish();
        assert!(
            text.contains("sixgate_node_drift_total{what=\"table\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("sixgate_node_drift_total{what=\"routes\"} 0\n"));
        for stage in STAGES {
            assert!(text.contains(&format!(
                "sixgate_node_apply_failures_total{{stage=\"{stage}\"}}"
            )));
        }
        assert!(text.contains("sixgate_node_apply_failures_total{stage=\"check\"} 1\n"));
        assert!(text.contains("sixgate_node_rule_packets_total{rule=\"rewrite 0 in\"} 3\n"));
        assert!(text.contains("sixgate_node_rule_bytes_total{rule=\"rewrite 0 in\"} 200\n"));
        assert_eq!(m.failures("check"), 1);
    }

    #[test]
    fn errors_say_what_was_left_alone() {
        let e = ApplyError::Route {
            key: "node.routes[0]".to_owned(),
            route: "64:ff9b::/96 via 2001:db8::1 proto 166 metric 1024".to_owned(),
            table: table_ref(),
            message: "Nexthop has invalid gateway.".to_owned(),
        };
        assert_eq!(
            e.to_string(),
            "node.routes[0]: cannot install route 64:ff9b::/96 via 2001:db8::1 proto 166 metric 1024 \
             (table ip6 sixgate left as it was): Nexthop has invalid gateway."
        );
        assert_eq!(e.stage(), "route");
    }
}
