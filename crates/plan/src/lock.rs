//! The lock file: every block the plan has handed out, so that allocating
//! again never renumbers anything. Readable TOML, written by
//! [`Lock::to_text`], read back by [`Lock::parse`], which refuses a file
//! edited into an inconsistent state (overlaps, blocks outside their parent).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

use serde::Deserialize;

use crate::model::{check_label, check_node_name, parse_toml, LOCAL_USE_NAT64, WELL_KNOWN_NAT64};
use crate::prefix::{self, Family, Numbers as _, Prefix};
use crate::Invalid;

/// The lock file format version this code reads and writes.
pub const VERSION: u32 = 1;

/// All allocations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lock {
    /// Site blocks by site name.
    pub sites: BTreeMap<String, Prefix>,
    pub clusters: BTreeMap<String, ClusterAlloc>,
}

/// What one cluster holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAlloc {
    pub site: String,
    /// The cluster block.
    pub block: Prefix,
    /// Whether `block` was fixed in the plan (`clusters[N].prefix`) rather
    /// than allocated from the site block.
    pub fixed: bool,
    /// The aggregate the node pod prefixes come from.
    pub pods: Prefix,
    /// The hosts' uplink prefix; node and gateway addresses are in it.
    pub uplink: Prefix,
    /// The Service prefix (kube-dns is its 10th address).
    pub services: Prefix,
    /// The cluster's NAT64 prefix.
    pub nat64: Prefix,
    pub ipv4_pods: Option<Prefix>,
    pub ipv4_services: Option<Prefix>,
    pub nodes: BTreeMap<String, NodeAlloc>,
    pub gateways: BTreeMap<String, GatewayAlloc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeAlloc {
    pub pods: Prefix,
    pub address: Ipv6Addr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayAlloc {
    pub address: Ipv6Addr,
    pub pool4: Prefix,
}

// ---- the file as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: u32,
    #[serde(default)]
    sites: BTreeMap<String, String>,
    #[serde(default)]
    clusters: BTreeMap<String, RawCluster>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    site: String,
    block: String,
    #[serde(default)]
    fixed: bool,
    pods: String,
    uplink: String,
    services: String,
    nat64: String,
    ipv4_pods: Option<String>,
    ipv4_services: Option<String>,
    #[serde(default)]
    nodes: BTreeMap<String, RawNode>,
    #[serde(default)]
    gateways: BTreeMap<String, RawGateway>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    pods: String,
    address: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    address: String,
    pool4: String,
}

fn v6(key: &str, text: &str) -> Result<Prefix, Invalid> {
    prefix::parse_family(text, Family::V6).map_err(|e| Invalid::new(key, e))
}

fn v4(key: &str, text: &str) -> Result<Prefix, Invalid> {
    prefix::parse_family(text, Family::V4).map_err(|e| Invalid::new(key, e))
}

fn addr(key: &str, text: &str) -> Result<Ipv6Addr, Invalid> {
    text.parse()
        .map_err(|_| Invalid::new(key, format!("`{text}` is not an IPv6 address")))
}

fn inside(key: &str, child: &Prefix, parent_key: &str, parent: &Prefix) -> Result<(), Invalid> {
    if parent.contains_prefix(child) {
        Ok(())
    } else {
        Err(Invalid::new(
            key,
            format!("{child} is not inside {parent_key} = {parent}"),
        ))
    }
}

/// Refuses any two overlapping entries of `entries` (key, prefix).
fn disjoint(entries: &[(String, Prefix)]) -> Result<(), Invalid> {
    let mut sorted: Vec<&(String, Prefix)> = entries.iter().collect();
    sorted.sort_by_key(|(_, p)| (p.family(), p.start(), p.prefix_len()));
    for pair in sorted.windows(2) {
        let ((ka, a), (kb, b)) = (pair[0], pair[1]);
        if a.overlaps(b) || a.last() >= b.start() && a.family() == b.family() {
            return Err(Invalid::new(kb.clone(), format!("{b} overlaps {ka} = {a}")));
        }
    }
    Ok(())
}

impl Lock {
    /// Parses lock text and checks that it is consistent with itself.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let raw: RawLock = parse_toml(text)?;
        if raw.version != VERSION {
            return Err(Invalid::new(
                "version",
                format!(
                    "lock file version {} is not supported (this sixgate writes version {VERSION})",
                    raw.version
                ),
            ));
        }
        let mut lock = Lock::default();
        for (name, p) in &raw.sites {
            let key = format!("sites.{name}");
            check_label(&key, name)?;
            lock.sites.insert(name.clone(), v6(&key, p)?);
        }
        for (name, c) in &raw.clusters {
            let key = format!("clusters.{name}");
            check_label(&key, name)?;
            let mut nodes = BTreeMap::new();
            for (n, raw_node) in &c.nodes {
                let k = format!("{key}.nodes.{}", quote_key(n));
                check_node_name(&k, n)?;
                nodes.insert(
                    n.clone(),
                    NodeAlloc {
                        pods: v6(&format!("{k}.pods"), &raw_node.pods)?,
                        address: addr(&format!("{k}.address"), &raw_node.address)?,
                    },
                );
            }
            let mut gateways = BTreeMap::new();
            for (g, raw_gw) in &c.gateways {
                let k = format!("{key}.gateways.{g}");
                check_label(&k, g)?;
                gateways.insert(
                    g.clone(),
                    GatewayAlloc {
                        address: addr(&format!("{k}.address"), &raw_gw.address)?,
                        pool4: v4(&format!("{k}.pool4"), &raw_gw.pool4)?,
                    },
                );
            }
            let alloc = ClusterAlloc {
                site: c.site.clone(),
                block: v6(&format!("{key}.block"), &c.block)?,
                fixed: c.fixed,
                pods: v6(&format!("{key}.pods"), &c.pods)?,
                uplink: v6(&format!("{key}.uplink"), &c.uplink)?,
                services: v6(&format!("{key}.services"), &c.services)?,
                nat64: v6(&format!("{key}.nat64"), &c.nat64)?,
                ipv4_pods: c
                    .ipv4_pods
                    .as_deref()
                    .map(|t| v4(&format!("{key}.ipv4_pods"), t))
                    .transpose()?,
                ipv4_services: c
                    .ipv4_services
                    .as_deref()
                    .map(|t| v4(&format!("{key}.ipv4_services"), t))
                    .transpose()?,
                nodes,
                gateways,
            };
            lock.clusters.insert(name.clone(), alloc);
        }
        lock.check()?;
        Ok(lock)
    }

    /// The consistency rules every lock obeys; `parse` and the allocator
    /// both rely on them.
    pub fn check(&self) -> Result<(), Invalid> {
        let mut top: Vec<(String, Prefix)> = Vec::new();
        for (name, p) in &self.sites {
            top.push((format!("sites.{name}"), *p));
        }
        let wk: Prefix = WELL_KNOWN_NAT64
            .parse()
            .map_err(|e| Invalid::new("nat64", e))?;
        let local: Prefix = LOCAL_USE_NAT64
            .parse()
            .map_err(|e| Invalid::new("nat64", e))?;
        let mut cluster_blocks = Vec::new();
        let mut nat64 = Vec::new();
        let mut ipv4 = Vec::new();
        let mut pool4 = Vec::new();
        for (name, c) in &self.clusters {
            let key = format!("clusters.{name}");
            let site = self.sites.get(&c.site);
            match (site, c.fixed) {
                // A fixed block may lie inside its own site's block.
                (Some(site), _) if site.contains_prefix(&c.block) => {}
                (Some(site), false) => inside(
                    &format!("{key}.block"),
                    &c.block,
                    &format!("sites.{}", c.site),
                    site,
                )?,
                (None, false) => {
                    return Err(Invalid::new(
                        format!("{key}.site"),
                        format!("site `{}` has no block in [sites]", c.site),
                    ))
                }
                (_, true) => top.push((format!("{key}.block"), c.block)),
            }
            cluster_blocks.push((format!("{key}.block"), c.block));
            let block_key = format!("{key}.block");
            let mut parts = Vec::new();
            for (what, p) in [
                ("pods", c.pods),
                ("uplink", c.uplink),
                ("services", c.services),
            ] {
                let k = format!("{key}.{what}");
                inside(&k, &p, &block_key, &c.block)?;
                parts.push((k, p));
            }
            disjoint(&parts)?;
            let mut node_pods = Vec::new();
            let mut hosts: Vec<(String, Prefix)> = Vec::new();
            for (n, node) in &c.nodes {
                let k = format!("{key}.nodes.{}", quote_key(n));
                inside(
                    &format!("{k}.pods"),
                    &node.pods,
                    &format!("{key}.pods"),
                    &c.pods,
                )?;
                node_pods.push((format!("{k}.pods"), node.pods));
                hosts.push((format!("{k}.address"), host(node.address)));
            }
            disjoint(&node_pods)?;
            for (g, gw) in &c.gateways {
                let k = format!("{key}.gateways.{g}");
                hosts.push((format!("{k}.address"), host(gw.address)));
                pool4.push((format!("{k}.pool4"), gw.pool4));
            }
            for (k, h) in &hosts {
                inside(k, h, &format!("{key}.uplink"), &c.uplink)?;
            }
            disjoint(&hosts)?;
            if c.nat64 == wk {
                // Shared by every cluster that uses it.
            } else {
                inside(
                    &format!("{key}.nat64"),
                    &c.nat64,
                    "the local-use NAT64 block",
                    &local,
                )?;
                if c.nat64.prefix_len() != 96 {
                    return Err(Invalid::new(
                        format!("{key}.nat64"),
                        format!("{} is not a /96", c.nat64),
                    ));
                }
                nat64.push((format!("{key}.nat64"), c.nat64));
            }
            match (c.ipv4_pods, c.ipv4_services) {
                (Some(p), Some(s)) => {
                    ipv4.push((format!("{key}.ipv4_pods"), p));
                    ipv4.push((format!("{key}.ipv4_services"), s));
                }
                (None, None) => {}
                _ => {
                    return Err(Invalid::new(
                        format!("{key}.ipv4_pods"),
                        "a dual-stack cluster has both ipv4_pods and ipv4_services, an IPv6-only one neither",
                    ))
                }
            }
        }
        disjoint(&top)?;
        disjoint(&cluster_blocks)?;
        disjoint(&nat64)?;
        disjoint(&ipv4)?;
        disjoint(&pool4)?;
        Ok(())
    }

    /// The lock as text: stable order, one entry per line, comments that
    /// say what it is. Byte-identical for equal locks.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# sixgate plan lock file: every block the plan has handed out.\n\
             # Written by `sixgate plan allocate`; commit it beside the plan.\n\
             # Entries are never renumbered: a cluster, node or gateway keeps its\n\
             # blocks until it leaves the plan, and then they are free again.\n\
             # Edit by hand only to free a block; `sixgate plan` refuses a lock\n\
             # whose blocks overlap or stray outside their parent.\n",
        );
        let _ = writeln!(out, "version = {VERSION}");
        out.push_str("\n[sites]\n");
        for (name, p) in &self.sites {
            let _ = writeln!(out, "{name} = \"{p}\"");
        }
        for (name, c) in &self.clusters {
            let _ = writeln!(out, "\n[clusters.{name}]");
            let _ = writeln!(out, "site = \"{}\"", c.site);
            let _ = writeln!(out, "block = \"{}\"", c.block);
            if c.fixed {
                out.push_str("fixed = true\n");
            }
            let _ = writeln!(out, "pods = \"{}\"", c.pods);
            let _ = writeln!(out, "uplink = \"{}\"", c.uplink);
            let _ = writeln!(out, "services = \"{}\"", c.services);
            let _ = writeln!(out, "nat64 = \"{}\"", c.nat64);
            if let Some(p) = c.ipv4_pods {
                let _ = writeln!(out, "ipv4_pods = \"{p}\"");
            }
            if let Some(p) = c.ipv4_services {
                let _ = writeln!(out, "ipv4_services = \"{p}\"");
            }
            if !c.nodes.is_empty() {
                let _ = writeln!(out, "\n[clusters.{name}.nodes]");
                for (n, node) in &c.nodes {
                    let _ = writeln!(
                        out,
                        "{} = {{ pods = \"{}\", address = \"{}\" }}",
                        quote_key(n),
                        node.pods,
                        node.address
                    );
                }
            }
            if !c.gateways.is_empty() {
                let _ = writeln!(out, "\n[clusters.{name}.gateways]");
                for (g, gw) in &c.gateways {
                    let _ = writeln!(
                        out,
                        "{g} = {{ address = \"{}\", pool4 = \"{}\" }}",
                        gw.address, gw.pool4
                    );
                }
            }
        }
        out
    }

    /// Every IPv6 and IPv4 block the lock holds, with its key: what the
    /// no-overlap property is checked on.
    #[must_use]
    pub fn all_blocks(&self) -> Vec<(String, Prefix)> {
        let mut out = Vec::new();
        for (name, p) in &self.sites {
            out.push((format!("sites.{name}"), *p));
        }
        for (name, c) in &self.clusters {
            let key = format!("clusters.{name}");
            out.push((format!("{key}.block"), c.block));
            out.push((format!("{key}.pods"), c.pods));
            out.push((format!("{key}.uplink"), c.uplink));
            out.push((format!("{key}.services"), c.services));
            out.push((format!("{key}.nat64"), c.nat64));
            if let Some(p) = c.ipv4_pods {
                out.push((format!("{key}.ipv4_pods"), p));
            }
            if let Some(p) = c.ipv4_services {
                out.push((format!("{key}.ipv4_services"), p));
            }
            for (n, node) in &c.nodes {
                out.push((format!("{key}.nodes.{n}.pods"), node.pods));
                out.push((format!("{key}.nodes.{n}.address"), host(node.address)));
            }
            for (g, gw) in &c.gateways {
                out.push((format!("{key}.gateways.{g}.address"), host(gw.address)));
                out.push((format!("{key}.gateways.{g}.pool4"), gw.pool4));
            }
        }
        out
    }
}

/// An address as a /128.
#[must_use]
pub fn host(addr: Ipv6Addr) -> Prefix {
    Prefix::host(IpAddr::V6(addr))
}

/// A TOML key, quoted unless it is bare-safe.
fn quote_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        key.to_owned()
    } else {
        format!("\"{key}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 1
[sites]
zrh = "2001:db8:100::/48"
[clusters.a]
site = "zrh"
block = "2001:db8:100::/56"
pods = "2001:db8:100::/57"
uplink = "2001:db8:100:80::/64"
services = "2001:db8:100:81::/108"
nat64 = "64:ff9b::/96"
[clusters.a.nodes]
"n1.example" = { pods = "2001:db8:100::/64", address = "2001:db8:100:80::10" }
[clusters.a.gateways]
gw = { address = "2001:db8:100:80::11", pool4 = "198.51.100.0/30" }
"#;

    #[test]
    fn a_consistent_lock_round_trips() {
        let lock = Lock::parse(LOCK).unwrap();
        let text = lock.to_text();
        assert_eq!(Lock::parse(&text).unwrap(), lock);
        assert_eq!(Lock::parse(&text).unwrap().to_text(), text);
    }

    #[test]
    fn a_block_moved_outside_its_parent_is_refused() {
        let text = LOCK.replace(
            "pods = \"2001:db8:100::/57\"",
            "pods = \"2001:db8:200::/57\"",
        );
        let e = Lock::parse(&text).unwrap_err().to_string();
        assert_eq!(
            e,
            "clusters.a.pods: 2001:db8:200::/57 is not inside clusters.a.block = 2001:db8:100::/56"
        );
    }

    #[test]
    fn overlapping_entries_are_refused() {
        let text = LOCK.replace("2001:db8:100:81::/108", "2001:db8:100:7f::/108");
        let e = Lock::parse(&text).unwrap_err().to_string();
        assert_eq!(e, "clusters.a.services: 2001:db8:100:7f::/108 overlaps clusters.a.pods = 2001:db8:100::/57");
    }

    #[test]
    fn unknown_version_and_keys_are_refused() {
        let e = Lock::parse(&LOCK.replace("version = 1", "version = 7")).unwrap_err();
        assert_eq!(e.key, "version");
        let e = Lock::parse(
            &LOCK
                .replace("fixed", "x")
                .replace("site = \"zrh\"", "site = \"zrh\"\ncolour = 1"),
        )
        .unwrap_err();
        assert_eq!(e.key, "clusters.a.colour");
    }

    #[test]
    fn a_node_address_off_the_uplink_is_refused() {
        let text = LOCK.replace("2001:db8:100:80::10", "2001:db8:100:82::10");
        let e = Lock::parse(&text).unwrap_err().to_string();
        assert!(e.starts_with("clusters.a.nodes.\"n1.example\".address: 2001:db8:100:82::10/128 is not inside clusters.a.uplink"), "{e}");
    }
}
