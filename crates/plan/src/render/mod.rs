//! The renderers: one folder per cluster with everything that consumes
//! the plan. Each renderer is a small function of (plan, cluster, its
//! allocation) that returns file text; output is byte-identical for the
//! same plan and lock.

mod calico;
mod coredns;
mod dns;
mod kubeadm;
mod policy;
pub mod sixgate;

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use crate::lock::{ClusterAlloc, Lock};
use crate::model::{Cluster, Plan, KUBE_DNS_OFFSET};
use crate::prefix::{address_string, Numbers as _, Prefix};
use crate::Invalid;

/// Everything one cluster's renderers need.
pub struct Ctx<'a> {
    pub plan: &'a Plan,
    pub lock: &'a Lock,
    pub cluster: &'a Cluster,
    pub alloc: &'a ClusterAlloc,
}

impl Ctx<'_> {
    /// `<cluster>.<zone>`.
    #[must_use]
    pub fn domain(&self) -> String {
        self.cluster.domain(self.plan)
    }

    /// The kube-dns Service address (the 10th of the service prefix).
    #[must_use]
    pub fn kube_dns(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.alloc.services.start() + KUBE_DNS_OFFSET)
    }

    /// The IPv4 kube-dns address of a dual-stack cluster.
    #[must_use]
    pub fn kube_dns_v4(&self) -> Option<String> {
        self.alloc
            .ipv4_services
            .map(|p| address_string(p.family(), p.start() + KUBE_DNS_OFFSET))
    }

    /// The cluster blocks of every cluster of the plan, sorted.
    #[must_use]
    pub fn all_cluster_blocks(&self) -> Vec<Prefix> {
        let mut v: Vec<Prefix> = self.lock.clusters.values().map(|c| c.block).collect();
        v.sort();
        v
    }

    /// The first line of every rendered file, after the comment marker.
    #[must_use]
    pub fn header(&self, what: &str) -> String {
        format!(
            "sixgate plan: {what} of cluster {} ({}). Generated from the plan; do not edit, re-render.",
            self.cluster.name,
            match self.cluster.stack {
                crate::model::Stack::Ipv6 => "IPv6-only",
                crate::model::Stack::Dual => "dual-stack",
            }
        )
    }
}

/// Renders every cluster: `"<cluster>/<file>" -> text`, sorted by path.
///
/// The lock must hold every cluster of the plan (see
/// [`crate::is_current`]); a missing one is refused.
pub fn render(plan: &Plan, lock: &Lock) -> Result<BTreeMap<String, String>, Invalid> {
    let mut files = BTreeMap::new();
    for cluster in &plan.clusters {
        let alloc = lock.clusters.get(&cluster.name).ok_or_else(|| {
            Invalid::new(
                &cluster.key,
                format!("cluster `{}` has no allocation in the lock file: run `sixgate plan allocate` first", cluster.name),
            )
        })?;
        let ctx = Ctx {
            plan,
            lock,
            cluster,
            alloc,
        };
        let dir = &cluster.name;
        let mut put = |file: &str, text: String| {
            files.insert(format!("{dir}/{file}"), text);
        };
        put("kubeadm.yaml", kubeadm::render(&ctx));
        put("calico-ippools.yaml", calico::ip_pools(&ctx));
        put("calico-bgp.yaml", calico::bgp(&ctx));
        put("coredns.Corefile", coredns::render(&ctx));
        put("dns-delegation.zone", dns::delegation(&ctx));
        put("networkpolicy.yaml", policy::network_policy(&ctx));
        put("allow-list-ipv6.txt", policy::allow_list_v6(&ctx));
        put("allow-list-ipv4.txt", policy::allow_list_v4(&ctx));
        for gateway in &cluster.gateways {
            if let Some(gw) = alloc.gateways.get(gateway) {
                put(
                    &format!("sixgate-{gateway}.toml"),
                    sixgate::render(&ctx, gateway, gw),
                );
            }
        }
    }
    Ok(files)
}

/// A YAML double-quoted string (the values here are names and addresses,
/// but quoting keeps `:` and the like from ever changing their meaning).
#[must_use]
pub fn yq(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
