//! `sixgate plan show`: which block belongs to what, and how full each
//! level is, as an indented table.

use std::fmt::Write as _;

use crate::lock::Lock;
use crate::model::Plan;
use crate::prefix::Prefix;
use crate::render::Ctx;
use crate::space::{capacity, fmt_count};

struct Table {
    rows: Vec<(String, String, String)>,
}

impl Table {
    fn row(
        &mut self,
        depth: usize,
        block: impl ToString,
        what: impl Into<String>,
        usage: impl Into<String>,
    ) {
        self.rows.push((
            format!("{}{}", "  ".repeat(depth), block.to_string()),
            what.into(),
            usage.into(),
        ));
    }

    fn text(&self) -> String {
        let w0 = self
            .rows
            .iter()
            .map(|r| r.0.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let w1 = self
            .rows
            .iter()
            .map(|r| r.1.len())
            .max()
            .unwrap_or(0)
            .max(4);
        let mut out = format!("{:<w0$}  {:<w1$}  USE\n", "BLOCK", "WHAT");
        for (a, b, c) in &self.rows {
            let line = format!("{a:<w0$}  {b:<w1$}  {c}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

fn percent(used: u128, total: u128) -> String {
    if total == 0 {
        return "-".to_owned();
    }
    // Shares of small counts; saturating keeps huge spaces sane.
    let pct = used.saturating_mul(100) / total;
    format!("{pct}%")
}

fn count_inside(parent: &Prefix, children: impl Iterator<Item = Prefix>) -> u128 {
    children
        .filter(|c| parent.contains_prefix(c))
        .map(|_| 1u128)
        .sum()
}

/// The table for `plan` as allocated in `lock`.
#[must_use]
#[allow(clippy::too_many_lines)] // one level after the other
pub fn show(plan: &Plan, lock: &Lock) -> String {
    let mut t = Table { rows: Vec::new() };
    for (i, org) in plan.prefixes.iter().enumerate() {
        let n = count_inside(org, lock.sites.values().copied());
        let total = capacity(org, plan.sizes.site);
        t.row(
            0,
            org,
            format!("organisation prefixes[{i}]"),
            format!(
                "{n} of {} /{} site blocks ({})",
                fmt_count(total),
                plan.sizes.site,
                percent(n, total)
            ),
        );
        for e in plan
            .external
            .iter()
            .filter(|e| org.contains_prefix(&e.prefix))
        {
            t.row(1, e.prefix, format!("external {}", e.name), "reserved");
        }
        for (site, block) in lock.sites.iter().filter(|(_, b)| org.contains_prefix(b)) {
            let n = count_inside(block, lock.clusters.values().map(|c| c.block));
            let total = capacity(block, plan.sizes.cluster);
            t.row(
                1,
                block,
                format!("site {site}"),
                format!(
                    "{n} of {} /{} cluster blocks ({})",
                    fmt_count(total),
                    plan.sizes.cluster,
                    percent(n, total)
                ),
            );
            for (name, _) in lock
                .clusters
                .iter()
                .filter(|(_, c)| block.contains_prefix(&c.block))
            {
                cluster_rows(&mut t, plan, lock, name, 2);
            }
        }
    }
    let fixed: Vec<&String> = lock
        .clusters
        .iter()
        .filter(|(_, c)| !lock.sites.values().any(|s| s.contains_prefix(&c.block)))
        .map(|(n, _)| n)
        .collect();
    if !fixed.is_empty() {
        t.row(
            0,
            "(fixed prefixes)",
            "clusters outside the site blocks",
            "",
        );
        for name in fixed {
            cluster_rows(&mut t, plan, lock, name, 1);
        }
    }
    for e in plan
        .external
        .iter()
        .filter(|e| !plan.prefixes.iter().any(|p| p.contains_prefix(&e.prefix)))
    {
        t.row(
            0,
            e.prefix,
            format!("external {}", e.name),
            "must not be overlapped",
        );
    }
    for (i, pool) in plan.nat64.pool4.iter().enumerate() {
        let slices: Vec<(String, String, Prefix)> = lock
            .clusters
            .iter()
            .flat_map(|(c, a)| {
                a.gateways
                    .iter()
                    .map(move |(g, gw)| (c.clone(), g.clone(), gw.pool4))
            })
            .filter(|(_, _, p)| pool.contains_prefix(p))
            .collect();
        let total = capacity(pool, plan.nat64.pool4_per_gateway);
        let n = u128::try_from(slices.len()).unwrap_or(u128::MAX);
        t.row(
            0,
            pool,
            format!("nat64.pool4[{i}]"),
            format!(
                "{n} of {} /{} gateway slices ({})",
                fmt_count(total),
                plan.nat64.pool4_per_gateway,
                percent(n, total)
            ),
        );
        for (c, g, p) in slices {
            t.row(1, p, format!("gateway {g} of {c}"), "");
        }
    }
    for (key, pools, len, pick) in [
        ("ipv4.pods", &plan.ipv4.pods, plan.sizes.ipv4_pods, 0),
        (
            "ipv4.services",
            &plan.ipv4.services,
            plan.sizes.ipv4_services,
            1,
        ),
    ] {
        for (i, pool) in pools.iter().enumerate() {
            let held: Vec<(String, Prefix)> = lock
                .clusters
                .iter()
                .filter_map(|(c, a)| {
                    if pick == 0 {
                        a.ipv4_pods
                    } else {
                        a.ipv4_services
                    }
                    .map(|p| (c.clone(), p))
                })
                .filter(|(_, p)| pool.contains_prefix(p))
                .collect();
            let total = capacity(pool, len);
            let n = u128::try_from(held.len()).unwrap_or(u128::MAX);
            t.row(
                0,
                pool,
                format!("{key}[{i}]"),
                format!(
                    "{n} of {} /{len} cluster blocks ({})",
                    fmt_count(total),
                    percent(n, total)
                ),
            );
            for (c, p) in held {
                t.row(1, p, format!("cluster {c}"), "");
            }
        }
    }
    t.text()
}

fn cluster_rows(t: &mut Table, plan: &Plan, lock: &Lock, name: &str, depth: usize) {
    let Some(a) = lock.clusters.get(name) else {
        return;
    };
    let Some(cluster) = plan.cluster(name) else {
        t.row(
            depth,
            a.block,
            format!("cluster {name}"),
            "not in the plan (freed at the next allocate)",
        );
        return;
    };
    let ctx = Ctx {
        plan,
        lock,
        cluster,
        alloc: a,
    };
    t.row(
        depth,
        a.block,
        format!("cluster {name}"),
        format!("{}, {}", cluster.stack.as_str(), ctx.domain()),
    );
    let node_len = plan.sizes.pods_per_node;
    let slots = capacity(&a.pods, node_len);
    let named = u128::try_from(a.nodes.len()).unwrap_or(u128::MAX);
    t.row(
        depth + 1,
        a.pods,
        "pods",
        format!(
            "{named} of {} /{node_len} node prefixes named ({}), max_nodes {}",
            fmt_count(slots),
            percent(named, slots),
            cluster.max_nodes
        ),
    );
    for (node, n) in &a.nodes {
        t.row(
            depth + 2,
            n.pods,
            format!("node {node}"),
            format!("address {}", n.address),
        );
    }
    let hosts = a.nodes.len() + a.gateways.len();
    t.row(
        depth + 1,
        a.uplink,
        "uplink",
        format!("{hosts} host address(es) (nodes and gateways)"),
    );
    for (g, gw) in &a.gateways {
        t.row(
            depth + 2,
            crate::lock::host(gw.address),
            format!("gateway {g}"),
            format!("pool4 {}", gw.pool4),
        );
    }
    t.row(
        depth + 1,
        a.services,
        "services",
        format!("kube-dns {}", ctx.kube_dns()),
    );
    let shared =
        if a.nat64.prefix_len() == 96 && plan.nat64.mode == crate::model::Nat64Mode::WellKnown {
            "well-known, shared"
        } else {
            "this cluster's own (RFC 8215)"
        };
    t.row(depth + 1, a.nat64, "nat64", shared);
    if let (Some(p), Some(s)) = (a.ipv4_pods, a.ipv4_services) {
        t.row(depth + 1, p, "ipv4 pods", "");
        t.row(
            depth + 1,
            s,
            "ipv4 services",
            format!("kube-dns {}", ctx.kube_dns_v4().unwrap_or_default()),
        );
    }
}
