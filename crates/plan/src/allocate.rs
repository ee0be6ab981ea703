//! Stable allocation: the previous lock is kept as it is; what the plan
//! added gets the lowest free block; what the plan dropped is freed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;

use crate::lock::{ClusterAlloc, GatewayAlloc, Lock, NodeAlloc};
use crate::model::{Cluster, Nat64Mode, Plan, Stack, FIRST_HOST, WELL_KNOWN_NAT64};
use crate::prefix::{self, Family, Numbers as _, Prefix};
use crate::space::{block_len_for, exhausted, first_free};
use crate::Invalid;

/// The length of the slot that holds a cluster's service prefix.
const SERVICE_SLOT: u8 = 64;

/// Allocates what `plan` needs on top of `previous`.
///
/// Never changes a block that `previous` holds for something still in the
/// plan; refuses (naming the key) when the plan contradicts one of them.
pub fn allocate(plan: &Plan, previous: &Lock) -> Result<Lock, Invalid> {
    previous
        .check()
        .map_err(|e| Invalid::new(format!("lock: {}", e.key), e.reason))?;
    let mut lock = keep(plan, previous)?;
    check_external(plan, &lock)?;

    for cluster in &plan.clusters {
        if !lock.clusters.contains_key(&cluster.name) {
            let alloc = new_cluster(plan, &mut lock, cluster)?;
            lock.clusters.insert(cluster.name.clone(), alloc);
        }
        add_members(plan, &mut lock, cluster)?;
    }
    lock.check().map_err(|e| {
        Invalid::new(
            e.key,
            format!("{} (an allocation bug: please report it)", e.reason),
        )
    })?;
    Ok(lock)
}

/// Whether `lock` already holds everything `plan` needs, and nothing else:
/// then `allocate` would return it unchanged.
#[must_use]
pub fn is_current(plan: &Plan, lock: &Lock) -> bool {
    allocate(plan, lock).is_ok_and(|fresh| &fresh == lock)
}

/// The previous lock minus what left the plan, with every kept entry
/// checked against the plan.
#[allow(clippy::too_many_lines)] // one rule after the other
fn keep(plan: &Plan, previous: &Lock) -> Result<Lock, Invalid> {
    let mut lock = Lock::default();
    let wk: Prefix = WELL_KNOWN_NAT64
        .parse()
        .map_err(|e| Invalid::new("nat64", e))?;
    for cluster in &plan.clusters {
        let Some(old) = previous.clusters.get(&cluster.name) else {
            continue;
        };
        let key = &cluster.key;
        let mut c = old.clone();
        if c.site != cluster.site {
            return Err(Invalid::new(
                format!("{key}.site"),
                format!(
                    "cluster `{}` was allocated in site `{}` (see the lock file); moving it would renumber it: remove it from the plan, allocate, then add it back",
                    cluster.name, c.site
                ),
            ));
        }
        if let Some(p) = cluster.prefix {
            if p != c.block {
                return Err(Invalid::new(
                    format!("{key}.prefix"),
                    format!(
                        "cluster `{}` holds {} in the lock file; changing it to {p} would renumber it: remove the cluster from the plan, allocate, then add it back",
                        cluster.name, c.block
                    ),
                ));
            }
        }
        let pods_len = c
            .nodes
            .values()
            .map(|n| n.pods.prefix_len())
            .next()
            .unwrap_or(plan.sizes.pods_per_node);
        if pods_len != plan.sizes.pods_per_node {
            return Err(Invalid::new(
                "sizes.pods_per_node",
                format!(
                    "cluster `{}` has /{pods_len} node pod prefixes in the lock file; changing them to /{} would renumber its nodes",
                    cluster.name, plan.sizes.pods_per_node
                ),
            ));
        }
        let needed = block_len_for(cluster.max_nodes, plan.sizes.pods_per_node).unwrap_or(0);
        if needed < c.pods.prefix_len() {
            return Err(Invalid::new(
                format!("{key}.max_nodes"),
                format!(
                    "{} nodes need a /{needed} of pod prefixes but cluster `{}` holds {} in the lock file, enough for {}; growing it would renumber the cluster",
                    cluster.max_nodes,
                    cluster.name,
                    c.pods,
                    crate::space::fmt_count(crate::space::capacity(&c.pods, plan.sizes.pods_per_node))
                ),
            ));
        }
        // Members that left the plan are freed.
        c.nodes.retain(|n, _| cluster.nodes.contains(n));
        c.gateways.retain(|g, _| cluster.gateways.contains(g));
        for (g, gw) in &c.gateways {
            if !plan
                .nat64
                .pool4
                .iter()
                .any(|p| p.contains_prefix(&gw.pool4))
            {
                return Err(Invalid::new(
                    "nat64.pool4",
                    format!(
                        "gateway `{g}` of cluster `{}` holds {} (lock file), which no nat64.pool4 block contains any more",
                        cluster.name, gw.pool4
                    ),
                ));
            }
        }
        // The NAT64 choice follows the plan.
        match plan.nat64.mode {
            Nat64Mode::WellKnown => c.nat64 = wk,
            Nat64Mode::PerCluster if c.nat64 == wk => {
                c.nat64 = prefix::containing(Family::V6, 0, 0)
            }
            Nat64Mode::PerCluster => {}
        }
        // Dual-stack blocks follow the stack.
        match cluster.stack {
            Stack::Ipv6 => {
                c.ipv4_pods = None;
                c.ipv4_services = None;
            }
            Stack::Dual => {
                for (what, pools, held) in [
                    ("ipv4.pods", &plan.ipv4.pods, c.ipv4_pods),
                    ("ipv4.services", &plan.ipv4.services, c.ipv4_services),
                ] {
                    if let Some(p) = held {
                        if !pools.iter().any(|pool| pool.contains_prefix(&p)) {
                            return Err(Invalid::new(
                                what,
                                format!("cluster `{}` holds {p} (lock file), which no {what} block contains any more", cluster.name),
                            ));
                        }
                    }
                }
            }
        }
        if !c.fixed {
            let site = previous.sites.get(&c.site).copied().ok_or_else(|| {
                Invalid::new(
                    format!("lock: clusters.{}.site", cluster.name),
                    "the site has no block",
                )
            })?;
            lock.sites.insert(c.site.clone(), site);
        }
        lock.clusters.insert(cluster.name.clone(), c);
    }
    // Per-cluster NAT64 prefixes marked for re-allocation above.
    let unset: Vec<String> = lock
        .clusters
        .iter()
        .filter(|(_, c)| c.nat64.prefix_len() == 0)
        .map(|(n, _)| n.clone())
        .collect();
    for name in unset {
        let nat64 = new_nat64(plan, &lock, &name)?;
        if let Some(c) = lock.clusters.get_mut(&name) {
            c.nat64 = nat64;
        }
    }
    for (name, site) in &lock.sites {
        if !plan.prefixes.iter().any(|p| p.contains_prefix(site)) {
            return Err(Invalid::new(
                "prefixes",
                format!("site `{name}` holds {site} (lock file), which no organisation prefix contains any more"),
            ));
        }
    }
    Ok(lock)
}

/// External networks added after the fact must not cover anything held.
fn check_external(plan: &Plan, lock: &Lock) -> Result<(), Invalid> {
    let held = lock.all_blocks();
    for (i, e) in plan.external.iter().enumerate() {
        // A network inside a site block's free space is fine: clusters
        // allocated later avoid it. Anything else held is not.
        let clash = held
            .iter()
            .filter(|(k, p)| {
                p.overlaps(&e.prefix) && !(k.starts_with("sites.") && p.contains_prefix(&e.prefix))
            })
            .min_by_key(|(_, p)| p.prefix_len());
        if let Some((k, p)) = clash {
            return Err(Invalid::new(
                format!("external[{i}].prefix"),
                format!(
                    "{} ({}) overlaps {k} = {p}, already allocated in the lock file",
                    e.prefix, e.name
                ),
            ));
        }
    }
    Ok(())
}

fn externals(plan: &Plan, family: Family) -> Vec<Prefix> {
    plan.external
        .iter()
        .map(|e| e.prefix)
        .filter(|p| p.family() == family)
        .collect()
}

fn new_cluster(plan: &Plan, lock: &mut Lock, cluster: &Cluster) -> Result<ClusterAlloc, Invalid> {
    let key = &cluster.key;
    let (block, fixed) = if let Some(p) = cluster.prefix {
        for (k, held) in lock.all_blocks() {
            let own_site = k == format!("sites.{}", cluster.site) && held.contains_prefix(&p);
            if held.overlaps(&p) && !own_site {
                return Err(Invalid::new(
                    format!("{key}.prefix"),
                    format!("{p} overlaps {k} = {held}, already allocated in the lock file"),
                ));
            }
        }
        (p, true)
    } else {
        let site = site_block(plan, lock, &cluster.site)?;
        let mut used = externals(plan, Family::V6);
        used.extend(lock.clusters.values().map(|c| c.block));
        let block = first_free(&site, plan.sizes.cluster, &used).ok_or_else(|| {
            Invalid::new(
                format!("{key}.site"),
                exhausted(
                    &format!("cluster `{}` in site `{}`", cluster.name, cluster.site),
                    &site,
                    plan.sizes.cluster,
                    &used,
                ),
            )
        })?;
        (block, false)
    };
    let (pods, uplink, services) = layout(plan, cluster, &block)?;
    let mut alloc = ClusterAlloc {
        site: cluster.site.clone(),
        block,
        fixed,
        pods,
        uplink,
        services,
        nat64: prefix::containing(Family::V6, 0, 0),
        ipv4_pods: None,
        ipv4_services: None,
        nodes: BTreeMap::new(),
        gateways: BTreeMap::new(),
    };
    alloc.nat64 = new_nat64(plan, lock, &cluster.name)?;
    Ok(alloc)
}

/// The site's block, allocated on first use.
fn site_block(plan: &Plan, lock: &mut Lock, site: &str) -> Result<Prefix, Invalid> {
    if let Some(p) = lock.sites.get(site) {
        return Ok(*p);
    }
    let mut used = externals(plan, Family::V6);
    used.extend(lock.sites.values().copied());
    used.extend(lock.clusters.values().filter(|c| c.fixed).map(|c| c.block));
    for parent in &plan.prefixes {
        if let Some(p) = first_free(parent, plan.sizes.site, &used) {
            lock.sites.insert(site.to_owned(), p);
            return Ok(p);
        }
    }
    let reasons: Vec<String> = plan
        .prefixes
        .iter()
        .map(|parent| exhausted(&format!("site `{site}`"), parent, plan.sizes.site, &used))
        .collect();
    Err(Invalid::new("prefixes", reasons.join("; ")))
}

/// Pods first (the largest), then the uplink, then the service slot: each
/// the lowest free block of the cluster block.
fn layout(
    plan: &Plan,
    cluster: &Cluster,
    block: &Prefix,
) -> Result<(Prefix, Prefix, Prefix), Invalid> {
    let try_layout = |pods_len: u8| -> Option<(Prefix, Prefix, Prefix)> {
        let pods = first_free(block, pods_len, &[])?;
        let uplink = first_free(block, plan.sizes.uplink, &[pods])?;
        let slot = first_free(block, SERVICE_SLOT.max(block.prefix_len()), &[pods, uplink])?;
        let services = slot.subnet(plan.sizes.services, 0)?;
        Some((pods, uplink, services))
    };
    let pods_len = block_len_for(cluster.max_nodes, plan.sizes.pods_per_node).unwrap_or(0);
    if let Some(found) = try_layout(pods_len) {
        return Ok(found);
    }
    let fits = (0..=plan.sizes.pods_per_node.saturating_sub(block.prefix_len()))
        .rev()
        .find(|bits| try_layout(plan.sizes.pods_per_node - bits).is_some());
    let what = match fits {
        Some(bits) => format!(
            "at most {} nodes fit",
            crate::space::fmt_count(1u128 << bits)
        ),
        None => "not even one node fits".to_owned(),
    };
    Err(Invalid::new(
        format!("{}.max_nodes", cluster.key),
        format!(
            "{} nodes need a /{pods_len} of pod prefixes (a /{} each, rounded up to a power of two), which does not fit in the /{} cluster block {block} beside a /{} uplink and a /64 for services; {what}: lower max_nodes, or give the cluster a larger block (sizes.cluster or clusters[].prefix)",
            cluster.max_nodes,
            plan.sizes.pods_per_node,
            block.prefix_len(),
            plan.sizes.uplink
        ),
    ))
}

fn new_nat64(plan: &Plan, lock: &Lock, name: &str) -> Result<Prefix, Invalid> {
    let parent = plan.nat64_parent();
    match plan.nat64.mode {
        Nat64Mode::WellKnown => Ok(parent),
        Nat64Mode::PerCluster => {
            let used: Vec<Prefix> = lock
                .clusters
                .iter()
                .filter(|(n, c)| n.as_str() != name && c.nat64.prefix_len() == 96)
                .map(|(_, c)| c.nat64)
                .collect();
            first_free(&parent, 96, &used).ok_or_else(|| {
                Invalid::new(
                    "nat64.prefix",
                    exhausted(
                        &format!("the NAT64 prefix of cluster `{name}`"),
                        &parent,
                        96,
                        &used,
                    ),
                )
            })
        }
    }
}

/// The first free block of `len` in any of `pools`.
fn from_pools(
    key: &str,
    what: &str,
    pools: &[Prefix],
    len: u8,
    used: &[Prefix],
) -> Result<Prefix, Invalid> {
    for pool in pools {
        if let Some(p) = first_free(pool, len, used) {
            return Ok(p);
        }
    }
    let reasons: Vec<String> = pools
        .iter()
        .map(|pool| exhausted(what, pool, len, used))
        .collect();
    Err(Invalid::new(
        key,
        if reasons.is_empty() {
            format!("no blocks listed for {what}")
        } else {
            reasons.join("; ")
        },
    ))
}

/// Dual-stack blocks, nodes and gateways that the cluster lacks.
fn add_members(plan: &Plan, lock: &mut Lock, cluster: &Cluster) -> Result<(), Invalid> {
    let v4_externals = externals(plan, Family::V4);
    if cluster.stack == Stack::Dual {
        let mut used: Vec<Prefix> = v4_externals.clone();
        for c in lock.clusters.values() {
            used.extend(c.ipv4_pods);
            used.extend(c.ipv4_services);
        }
        let held = &lock.clusters[&cluster.name];
        let (mut pods, mut services) = (held.ipv4_pods, held.ipv4_services);
        if pods.is_none() {
            let p = from_pools(
                "ipv4.pods",
                &format!("the IPv4 pods of cluster `{}`", cluster.name),
                &plan.ipv4.pods,
                plan.sizes.ipv4_pods,
                &used,
            )?;
            used.push(p);
            pods = Some(p);
        }
        if services.is_none() {
            services = Some(from_pools(
                "ipv4.services",
                &format!("the IPv4 services of cluster `{}`", cluster.name),
                &plan.ipv4.services,
                plan.sizes.ipv4_services,
                &used,
            )?);
        }
        if let Some(c) = lock.clusters.get_mut(&cluster.name) {
            c.ipv4_pods = pods;
            c.ipv4_services = services;
        }
    }

    let mut pool4_used: Vec<Prefix> = v4_externals;
    for c in lock.clusters.values() {
        pool4_used.extend(c.gateways.values().map(|g| g.pool4));
    }
    let Some(c) = lock.clusters.get_mut(&cluster.name) else {
        return Ok(());
    };
    let mut hosts: BTreeSet<u128> = c
        .nodes
        .values()
        .map(|n| u128::from(n.address))
        .chain(c.gateways.values().map(|g| u128::from(g.address)))
        .collect();
    let mut next_host = |uplink: &Prefix, key: String| -> Result<Ipv6Addr, Invalid> {
        let mut offset = FIRST_HOST;
        loop {
            let Some(a) = uplink.nth(offset) else {
                return Err(Invalid::new(
                    key,
                    format!("the uplink {uplink} has no free address left"),
                ));
            };
            if hosts.insert(a) {
                return Ok(Ipv6Addr::from(a));
            }
            offset += 1;
        }
    };
    for (i, node) in cluster.nodes.iter().enumerate() {
        if c.nodes.contains_key(node) {
            continue;
        }
        let key = format!("{}.nodes[{i}]", cluster.key);
        let used: Vec<Prefix> = c.nodes.values().map(|n| n.pods).collect();
        let pods = first_free(&c.pods, plan.sizes.pods_per_node, &used).ok_or_else(|| {
            Invalid::new(
                key.clone(),
                exhausted(
                    &format!("the pods of node `{node}`"),
                    &c.pods,
                    plan.sizes.pods_per_node,
                    &used,
                ),
            )
        })?;
        let address = next_host(&c.uplink, key)?;
        c.nodes.insert(node.clone(), NodeAlloc { pods, address });
    }
    for (i, gw) in cluster.gateways.iter().enumerate() {
        if c.gateways.contains_key(gw) {
            continue;
        }
        let key = format!("{}.gateways[{i}]", cluster.key);
        let pool4 = from_pools(
            "nat64.pool4",
            &format!(
                "the pool4 slice of gateway `{gw}` of cluster `{}`",
                cluster.name
            ),
            &plan.nat64.pool4,
            plan.nat64.pool4_per_gateway,
            &pool4_used,
        )?;
        pool4_used.push(pool4);
        let address = next_host(&c.uplink, key)?;
        c.gateways
            .insert(gw.clone(), GatewayAlloc { address, pool4 });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"
prefixes = ["2001:db8:100::/40"]
dns_zone = "k8s.example.net"
[nat64]
prefix = "per-cluster"
pool4 = ["198.51.100.0/24"]
pool4_per_gateway = 28
[ipv4]
pods = ["10.64.0.0/12"]
services = ["10.96.0.0/16"]
[[external]]
name = "backbone"
prefix = "2001:db8:100::/48"
[[clusters]]
name = "a"
site = "zrh"
max_nodes = 100
nodes = ["n1", "n2"]
gateways = ["gw1"]
[[clusters]]
name = "b"
site = "zrh"
max_nodes = 10
stack = "dual"
"#;

    fn plan(text: &str) -> Plan {
        Plan::parse(text).unwrap()
    }

    #[test]
    fn first_allocation_skips_the_external_network() {
        let lock = allocate(&plan(PLAN), &Lock::default()).unwrap();
        assert_eq!(lock.sites["zrh"].to_string(), "2001:db8:101::/48");
        let a = &lock.clusters["a"];
        assert_eq!(a.block.to_string(), "2001:db8:101::/56");
        assert_eq!(a.pods.to_string(), "2001:db8:101::/57");
        assert_eq!(a.uplink.to_string(), "2001:db8:101:80::/64");
        assert_eq!(a.services.to_string(), "2001:db8:101:81::/108");
        assert_eq!(a.nodes["n2"].pods.to_string(), "2001:db8:101:1::/64");
        assert_eq!(a.nodes["n1"].address.to_string(), "2001:db8:101:80::10");
        assert_eq!(a.gateways["gw1"].address.to_string(), "2001:db8:101:80::12");
        assert_eq!(a.gateways["gw1"].pool4.to_string(), "198.51.100.0/28");
        let b = &lock.clusters["b"];
        assert_eq!(b.block.to_string(), "2001:db8:101:100::/56");
        assert_eq!(b.pods.to_string(), "2001:db8:101:100::/60");
        assert_eq!(b.ipv4_pods.unwrap().to_string(), "10.64.0.0/16");
        assert_eq!(b.ipv4_services.unwrap().to_string(), "10.96.0.0/20");
    }

    #[test]
    fn allocating_again_changes_nothing() {
        let p = plan(PLAN);
        let lock = allocate(&p, &Lock::default()).unwrap();
        assert_eq!(allocate(&p, &lock).unwrap(), lock);
        assert!(is_current(&p, &lock));
    }

    #[test]
    fn removing_a_cluster_frees_without_shifting() {
        let p = plan(PLAN);
        let lock = allocate(&p, &Lock::default()).unwrap();
        let without_a = plan(
            &PLAN
                .replace("name = \"a\"", "name = \"c\"")
                .replace("nodes = [\"n1\", \"n2\"]\ngateways = [\"gw1\"]\n", ""),
        );
        let after = allocate(&without_a, &lock).unwrap();
        assert_eq!(after.clusters["b"], lock.clusters["b"]);
        // `c` takes the block `a` freed, the lowest free one.
        assert_eq!(after.clusters["c"].block, lock.clusters["a"].block);
    }

    #[test]
    fn growing_max_nodes_past_the_held_block_is_refused() {
        let p = plan(PLAN);
        let lock = allocate(&p, &Lock::default()).unwrap();
        let bigger = plan(&PLAN.replace("max_nodes = 100", "max_nodes = 200"));
        let e = allocate(&bigger, &lock).unwrap_err();
        assert_eq!(e.key, "clusters[0].max_nodes");
        assert!(
            e.reason
                .contains("holds 2001:db8:101::/57 in the lock file, enough for 128"),
            "{e}"
        );
    }

    #[test]
    fn too_many_nodes_for_the_block_says_what_fits() {
        let e = allocate(
            &plan(&PLAN.replace("max_nodes = 100", "max_nodes = 256")),
            &Lock::default(),
        )
        .unwrap_err();
        assert_eq!(e.key, "clusters[0].max_nodes");
        assert!(e.reason.contains("at most 128 nodes fit"), "{e}");
    }

    #[test]
    fn a_new_external_network_over_a_held_block_is_refused() {
        let p = plan(PLAN);
        let lock = allocate(&p, &Lock::default()).unwrap();
        let text =
            format!("{PLAN}\n[[external]]\nname = \"vpn\"\nprefix = \"2001:db8:101:80::/64\"\n");
        let e = allocate(&plan(&text), &lock).unwrap_err();
        assert_eq!(e.key, "external[1].prefix");
        assert!(
            e.reason
                .contains("overlaps clusters.a.block = 2001:db8:101::/56"),
            "{e}"
        );
    }

    #[test]
    fn running_out_of_pool4_says_what_would_fit() {
        let text = PLAN
            .replace("pool4_per_gateway = 28", "pool4_per_gateway = 24")
            .replace("gateways = [\"gw1\"]", "gateways = [\"gw1\", \"gw2\"]");
        let e = allocate(&plan(&text), &Lock::default()).unwrap_err();
        assert_eq!(e.key, "nat64.pool4");
        assert!(
            e.reason
                .starts_with("no free /24 left for the pool4 slice of gateway `gw2`"),
            "{e}"
        );
        assert!(e.reason.contains("nothing is left there"), "{e}");
    }

    #[test]
    fn docker_sized_80s_per_node_pack_into_a_small_aggregate() {
        let text = PLAN.replace("[nat64]", "[sizes]\npods_per_node = 80\n[nat64]");
        let lock = allocate(&plan(&text), &Lock::default()).unwrap();
        let a = &lock.clusters["a"];
        assert_eq!(a.pods.to_string(), "2001:db8:101::/73");
        assert_eq!(a.nodes["n1"].pods.to_string(), "2001:db8:101::/80");
        assert_eq!(a.nodes["n2"].pods.to_string(), "2001:db8:101:0:1::/80");
        // The uplink and the services take the next /64s.
        assert_eq!(a.uplink.to_string(), "2001:db8:101:1::/64");
        assert_eq!(a.services.to_string(), "2001:db8:101:2::/108");
    }
}
