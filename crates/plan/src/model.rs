//! `plan.toml`: the organisation's prefixes, its sites and clusters, parsed
//! into domain types. Every error names the key and the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Deserialize;

use crate::prefix::{self, Family, Numbers as _, Prefix};
use crate::Invalid;

/// The well-known NAT64 prefix (RFC 6052 §2.1).
pub const WELL_KNOWN_NAT64: &str = "64:ff9b::/96";
/// The local-use NAT64 block (RFC 8215) that per-cluster /96s come from.
pub const LOCAL_USE_NAT64: &str = "64:ff9b:1::/48";
/// The first host number given to nodes and gateways on a cluster's uplink:
/// `::1` to `::f` stay free for routers and virtual addresses.
pub const FIRST_HOST: u128 = 0x10;
/// The kube-dns Service address is this offset into the service prefix,
/// as kubeadm chooses it.
pub const KUBE_DNS_OFFSET: u128 = 10;

/// The most nodes a cluster may plan for: kube-controller-manager refuses a
/// node mask more than 16 bits longer than the pod subnet.
pub const MAX_NODES: u32 = 1 << 16;

/// Bits needed to number `count` things: ceil(log2(count)).
#[must_use]
pub fn bits_for(count: u32) -> u8 {
    if count <= 1 {
        0
    } else {
        // At most 32, so the cast cannot truncate.
        u8::try_from(u32::BITS - (count - 1).leading_zeros()).unwrap_or(32)
    }
}

/// The IPv4 node mask kube-controller-manager gets for a dual-stack cluster:
/// its default /24, or longer when the IPv4 pod block must hold more nodes;
/// `None` when a node would get fewer than 2 addresses.
#[must_use]
pub fn ipv4_node_mask(ipv4_pods_len: u8, max_nodes: u32) -> Option<u8> {
    let mask = 24.max(ipv4_pods_len + bits_for(max_nodes));
    (mask <= 31).then_some(mask)
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The organisation's IPv6 prefixes, in the order given.
    pub prefixes: Vec<Prefix>,
    /// Cluster domains are `<cluster>.<dns_zone>`.
    pub dns_zone: String,
    pub sizes: Sizes,
    pub nat64: Nat64,
    pub ipv4: Ipv4Pools,
    pub external: Vec<External>,
    pub gateway: GatewayHost,
    /// Sites by name: those described under `[sites]` and those that
    /// clusters name.
    pub sites: BTreeMap<String, Site>,
    /// Clusters in the order of the file.
    pub clusters: Vec<Cluster>,
}

/// Prefix lengths of each level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub site: u8,
    pub cluster: u8,
    pub pods_per_node: u8,
    pub services: u8,
    pub uplink: u8,
    pub ipv4_pods: u8,
    pub ipv4_services: u8,
}

impl Default for Sizes {
    fn default() -> Self {
        Self {
            site: 48,
            cluster: 56,
            pods_per_node: 64,
            services: 108,
            uplink: 64,
            ipv4_pods: 16,
            ipv4_services: 20,
        }
    }
}

/// Which NAT64 prefix the clusters use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat64Mode {
    /// `64:ff9b::/96`, shared by every cluster.
    WellKnown,
    /// A /96 per cluster from `64:ff9b:1::/48` (RFC 8215).
    PerCluster,
}

impl Nat64Mode {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Nat64Mode::WellKnown => "well-known",
            Nat64Mode::PerCluster => "per-cluster",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nat64 {
    pub mode: Nat64Mode,
    /// IPv4 blocks split into one slice per gateway.
    pub pool4: Vec<Prefix>,
    /// Length of each gateway's slice.
    pub pool4_per_gateway: u8,
}

/// IPv4 blocks for the dual-stack clusters' pods and services.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ipv4Pools {
    pub pods: Vec<Prefix>,
    pub services: Vec<Prefix>,
}

/// How the gateway hosts are set up: what their sixgate configs name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayHost {
    /// The uplink interface of a gateway host.
    pub interface: String,
    /// The TUN device of sixgate nat64 on it.
    pub tun: String,
}

/// A network the plan must never overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    pub name: String,
    pub prefix: Prefix,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Site {
    pub name: String,
    /// The AS number of the site's cluster nodes (Calico `asNumber`).
    pub as_number: Option<u32>,
    /// BGP routers the nodes peer with.
    pub routers: Vec<Router>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    pub address: IpAddr,
    pub as_number: u32,
}

/// IPv6-only, or dual-stack with IPv6 first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    Ipv6,
    Dual,
}

impl Stack {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Stack::Ipv6 => "ipv6",
            Stack::Dual => "dual",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub site: String,
    pub max_nodes: u32,
    pub stack: Stack,
    /// Calico `natOutgoing` for the IPv6 pod pool (IPv4 pools always NAT).
    pub nat_outgoing: bool,
    /// Named nodes get a pod prefix and an uplink address each.
    pub nodes: Vec<String>,
    /// The sixgate gateways: an uplink address and a pool4 slice each.
    pub gateways: Vec<String>,
    /// A cluster block fixed by the user instead of allocated.
    pub prefix: Option<Prefix>,
    /// `clusters[N]`, for error messages.
    pub key: String,
}

impl Cluster {
    /// `<name>.<zone>`.
    #[must_use]
    pub fn domain(&self, plan: &Plan) -> String {
        format!("{}.{}", self.name, plan.dns_zone)
    }
}

// ---- the file as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    prefixes: Vec<String>,
    dns_zone: String,
    #[serde(default)]
    sizes: RawSizes,
    #[serde(default)]
    nat64: RawNat64,
    #[serde(default)]
    ipv4: RawIpv4,
    #[serde(default)]
    external: Vec<RawExternal>,
    #[serde(default)]
    gateway: RawGatewayHost,
    #[serde(default)]
    sites: BTreeMap<String, RawSite>,
    #[serde(default)]
    clusters: Vec<RawCluster>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSizes {
    site: Option<u8>,
    cluster: Option<u8>,
    pods_per_node: Option<u8>,
    services: Option<u8>,
    uplink: Option<u8>,
    ipv4_pods: Option<u8>,
    ipv4_services: Option<u8>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNat64 {
    prefix: Option<String>,
    #[serde(default)]
    pool4: Vec<String>,
    pool4_per_gateway: Option<u8>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIpv4 {
    #[serde(default)]
    pods: Vec<String>,
    #[serde(default)]
    services: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGatewayHost {
    interface: Option<String>,
    tun: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExternal {
    name: String,
    prefix: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    as_number: Option<u32>,
    #[serde(default)]
    routers: Vec<RawRouter>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouter {
    address: String,
    as_number: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    name: String,
    site: String,
    max_nodes: u32,
    #[serde(default = "default_stack")]
    stack: String,
    #[serde(default)]
    nat_outgoing: bool,
    #[serde(default)]
    nodes: Vec<String>,
    #[serde(default)]
    gateways: Vec<String>,
    prefix: Option<String>,
}

fn default_stack() -> String {
    "ipv6".to_owned()
}

/// Where a deserialisation error is, as `line:column`, when the parser knows.
fn toml_location(text: &str, err: &toml::de::Error) -> String {
    err.span()
        .map(|span| {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before
                .rfind('\n')
                .map_or(before.len(), |nl| before.len() - nl - 1)
                + 1;
            format!(" (line {line}, column {column})")
        })
        .unwrap_or_default()
}

/// Parses TOML text into `T`, naming the key and line of the first error.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Invalid> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let key = err.path().to_string();
        let inner = err.into_inner();
        let reason = format!("{}{}", inner.message().trim(), toml_location(text, &inner));
        Invalid::new(if key == "." { "(top level)" } else { &key }, reason)
    })
}

fn prefix(key: &str, text: &str, family: Family) -> Result<Prefix, Invalid> {
    prefix::parse_family(text, family).map_err(|e| Invalid::new(key, e))
}

fn prefix_list(key: &str, texts: &[String], family: Family) -> Result<Vec<Prefix>, Invalid> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| prefix(&format!("{key}[{i}]"), t, family))
        .collect()
}

/// A DNS label usable as a cluster or site name, a file name and a
/// Kubernetes object name: `[a-z0-9-]`, 1 to 63 bytes, no leading or
/// trailing `-`.
pub(crate) fn check_label(key: &str, name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            key,
            format!(
                "`{name}` is not a DNS label: use 1 to 63 of a-z, 0-9 and `-`, not at either end"
            ),
        ))
    }
}

/// A node name as Kubernetes allows it (a DNS-1123 subdomain).
pub(crate) fn check_node_name(key: &str, name: &str) -> Result<(), Invalid> {
    if !name.is_empty() && name.len() <= 253 && name.split('.').all(|l| check_label(key, l).is_ok())
    {
        Ok(())
    } else {
        Err(Invalid::new(
            key,
            format!("`{name}` is not a Kubernetes node name: use dot-separated DNS labels of a-z, 0-9 and `-`"),
        ))
    }
}

fn check_zone(key: &str, zone: &str) -> Result<(), Invalid> {
    let zone = zone.trim_end_matches('.');
    if zone.is_empty() || zone.len() > 200 {
        return Err(Invalid::new(key, "the DNS zone must be 1 to 200 bytes"));
    }
    for label in zone.split('.') {
        check_label(key, label)?;
    }
    Ok(())
}

fn size(
    key: &str,
    value: Option<u8>,
    default: u8,
    range: (u8, u8),
    why: &str,
) -> Result<u8, Invalid> {
    let v = value.unwrap_or(default);
    if v < range.0 || v > range.1 {
        return Err(Invalid::new(
            key,
            format!(
                "/{v} is out of range: use /{} to /{} ({why})",
                range.0, range.1
            ),
        ));
    }
    Ok(v)
}

impl Plan {
    /// Parses and checks `plan.toml` text.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let raw: RawPlan = parse_toml(text)?;
        Self::from_raw(raw)
    }

    #[allow(clippy::too_many_lines)] // one check after the other, in file order
    fn from_raw(raw: RawPlan) -> Result<Self, Invalid> {
        let d = Sizes::default();
        let s = &raw.sizes;
        let sizes = Sizes {
            site: size(
                "sizes.site",
                s.site,
                d.site,
                (16, 64),
                "a site block holds clusters",
            )?,
            cluster: size(
                "sizes.cluster",
                s.cluster,
                d.cluster,
                (16, 63),
                "a cluster block holds its pod, uplink and service prefixes",
            )?,
            pods_per_node: size(
                "sizes.pods_per_node",
                s.pods_per_node,
                d.pods_per_node,
                (64, 112),
                "/64 per node, or /80 where a Docker bridge wants it",
            )?,
            services: size(
                "sizes.services",
                s.services,
                d.services,
                (108, 120),
                "/108 is the largest service prefix kubeadm accepts",
            )?,
            uplink: size(
                "sizes.uplink",
                s.uplink,
                d.uplink,
                (48, 64),
                "the node prefix of the hosts' uplink",
            )?,
            ipv4_pods: size(
                "sizes.ipv4_pods",
                s.ipv4_pods,
                d.ipv4_pods,
                (8, 28),
                "IPv4 pod block of a dual-stack cluster",
            )?,
            ipv4_services: size(
                "sizes.ipv4_services",
                s.ipv4_services,
                d.ipv4_services,
                (12, 28),
                "kube-apiserver accepts at most a /12 of IPv4 services",
            )?,
        };
        if sizes.cluster < sizes.site {
            return Err(Invalid::new(
                "sizes.cluster",
                format!(
                    "a /{} cluster block is larger than the /{} site block that must hold it",
                    sizes.cluster, sizes.site
                ),
            ));
        }
        if sizes.uplink <= sizes.cluster {
            return Err(Invalid::new(
                "sizes.uplink",
                format!(
                    "a /{} uplink does not fit in a /{} cluster block beside the pods",
                    sizes.uplink, sizes.cluster
                ),
            ));
        }

        if raw.prefixes.is_empty() {
            return Err(Invalid::new(
                "prefixes",
                "list at least one IPv6 prefix of the organisation",
            ));
        }
        let prefixes = prefix_list("prefixes", &raw.prefixes, Family::V6)?;
        for (i, p) in prefixes.iter().enumerate() {
            let key = format!("prefixes[{i}]");
            if p.prefix_len() > sizes.cluster {
                return Err(Invalid::new(
                    key,
                    format!(
                        "{p} cannot hold /{} cluster blocks (sizes.cluster): a /{} holds only blocks of /{} or longer",
                        sizes.cluster,
                        p.prefix_len(),
                        p.prefix_len()
                    ),
                ));
            }
            if p.prefix_len() > sizes.site {
                return Err(Invalid::new(
                    key,
                    format!(
                        "{p} cannot hold /{} site blocks (sizes.site): set sizes.site to /{} or longer",
                        sizes.site,
                        p.prefix_len()
                    ),
                ));
            }
            for (j, q) in prefixes.iter().enumerate().take(i) {
                if p.overlaps(q) {
                    return Err(Invalid::new(
                        key,
                        format!("{p} overlaps prefixes[{j}] = {q}"),
                    ));
                }
            }
        }
        check_zone("dns_zone", &raw.dns_zone)?;
        let dns_zone = raw.dns_zone.trim_end_matches('.').to_owned();

        let mode = match raw.nat64.prefix.as_deref() {
            None | Some("well-known") => Nat64Mode::WellKnown,
            Some("per-cluster") => Nat64Mode::PerCluster,
            Some(other) => {
                return Err(Invalid::new(
                    "nat64.prefix",
                    format!("`{other}` is not a choice: use \"well-known\" ({WELL_KNOWN_NAT64}, shared) or \"per-cluster\" (a /96 each from {LOCAL_USE_NAT64})"),
                ))
            }
        };
        let pool4 = prefix_list("nat64.pool4", &raw.nat64.pool4, Family::V4)?;
        check_disjoint("nat64.pool4", &pool4)?;
        if mode == Nat64Mode::WellKnown {
            for (i, block) in pool4.iter().enumerate() {
                if let Some(bad) = first_non_global(block) {
                    return Err(Invalid::new(
                        format!("nat64.pool4[{i}]"),
                        format!(
                            "{block} holds {bad}, which is not a global IPv4 address: sixgate nat64 does not use such pool4 \
                             addresses with the well-known {WELL_KNOWN_NAT64} (RFC 6052 §3.1); set nat64.prefix = \"per-cluster\" \
                             (local-use {LOCAL_USE_NAT64}, RFC 8215) or use global IPv4 blocks"
                        ),
                    ));
                }
            }
        }
        let nat64 = Nat64 {
            mode,
            pool4,
            pool4_per_gateway: size(
                "nat64.pool4_per_gateway",
                raw.nat64.pool4_per_gateway,
                30,
                (16, 32),
                "the IPv4 slice of one gateway",
            )?,
        };
        let ipv4 = Ipv4Pools {
            pods: prefix_list("ipv4.pods", &raw.ipv4.pods, Family::V4)?,
            services: prefix_list("ipv4.services", &raw.ipv4.services, Family::V4)?,
        };
        check_disjoint("ipv4.pods", &ipv4.pods)?;
        check_disjoint("ipv4.services", &ipv4.services)?;
        for (i, p) in ipv4.services.iter().enumerate() {
            if let Some(q) = ipv4.pods.iter().find(|q| q.overlaps(p)) {
                return Err(Invalid::new(
                    format!("ipv4.services[{i}]"),
                    format!("{p} overlaps the IPv4 pod block {q}"),
                ));
            }
        }

        let mut external = Vec::new();
        let mut external_names = BTreeSet::new();
        for (i, e) in raw.external.iter().enumerate() {
            let key = format!("external[{i}]");
            if e.name.trim().is_empty() {
                return Err(Invalid::new(
                    format!("{key}.name"),
                    "name the external network",
                ));
            }
            if !external_names.insert(e.name.clone()) {
                return Err(Invalid::new(
                    format!("{key}.name"),
                    format!("`{}` is named twice", e.name),
                ));
            }
            let p = prefix::parse(&e.prefix)
                .map_err(|err| Invalid::new(format!("{key}.prefix"), err))?;
            external.push(External {
                name: e.name.clone(),
                prefix: p,
            });
        }
        // An external network may sit inside an organisation prefix or an
        // IPv4 pool: that reserves it, and allocation goes around it. One
        // that covers a whole block leaves nothing to plan there.
        for (i, e) in external.iter().enumerate() {
            let key = format!("external[{i}].prefix");
            for (what, list) in [
                ("prefixes", &prefixes),
                ("nat64.pool4", &nat64.pool4),
                ("ipv4.pods", &ipv4.pods),
                ("ipv4.services", &ipv4.services),
            ] {
                if let Some((j, q)) = list
                    .iter()
                    .enumerate()
                    .find(|(_, q)| e.prefix.contains_prefix(q))
                {
                    return Err(Invalid::new(
                        key,
                        format!("{} ({}) covers all of {what}[{j}] = {q}: nothing would be left to plan there", e.prefix, e.name),
                    ));
                }
            }
        }

        let gateway = GatewayHost {
            interface: interface_name(
                "gateway.interface",
                raw.gateway.interface.as_deref().unwrap_or("eth0"),
            )?,
            tun: interface_name("gateway.tun", raw.gateway.tun.as_deref().unwrap_or("nat64"))?,
        };

        let mut sites = BTreeMap::new();
        for (name, site) in &raw.sites {
            let key = format!("sites.{name}");
            check_label(&key, name)?;
            let mut routers = Vec::new();
            for (i, r) in site.routers.iter().enumerate() {
                let address: IpAddr = r.address.parse().map_err(|_| {
                    Invalid::new(
                        format!("{key}.routers[{i}].address"),
                        format!("`{}` is not an IP address", r.address),
                    )
                })?;
                routers.push(Router {
                    address,
                    as_number: r.as_number,
                });
            }
            sites.insert(
                name.clone(),
                Site {
                    name: name.clone(),
                    as_number: site.as_number,
                    routers,
                },
            );
        }

        let mut clusters = Vec::new();
        let mut names = BTreeSet::new();
        for (i, c) in raw.clusters.iter().enumerate() {
            let key = format!("clusters[{i}]");
            check_label(&format!("{key}.name"), &c.name)?;
            if !names.insert(c.name.clone()) {
                return Err(Invalid::new(
                    format!("{key}.name"),
                    format!("cluster `{}` is planned twice", c.name),
                ));
            }
            check_label(&format!("{key}.site"), &c.site)?;
            sites.entry(c.site.clone()).or_insert_with(|| Site {
                name: c.site.clone(),
                ..Site::default()
            });
            let stack = match c.stack.as_str() {
                "ipv6" => Stack::Ipv6,
                "dual" => Stack::Dual,
                other => {
                    return Err(Invalid::new(
                        format!("{key}.stack"),
                        format!("`{other}` is not a stack: use \"ipv6\" (IPv6-only) or \"dual\" (dual-stack)"),
                    ))
                }
            };
            if stack == Stack::Dual && (ipv4.pods.is_empty() || ipv4.services.is_empty()) {
                return Err(Invalid::new(
                    format!("{key}.stack"),
                    format!("cluster `{}` is dual-stack, so ipv4.pods and ipv4.services must list IPv4 blocks for it", c.name),
                ));
            }
            if c.max_nodes == 0 {
                return Err(Invalid::new(
                    format!("{key}.max_nodes"),
                    "a cluster has at least one node",
                ));
            }
            if c.max_nodes > MAX_NODES {
                return Err(Invalid::new(
                    format!("{key}.max_nodes"),
                    format!(
                        "{} nodes is too many: kube-controller-manager splits the pod subnet into at most {MAX_NODES} node prefixes",
                        c.max_nodes
                    ),
                ));
            }
            if stack == Stack::Dual && ipv4_node_mask(sizes.ipv4_pods, c.max_nodes).is_none() {
                return Err(Invalid::new(
                    format!("{key}.max_nodes"),
                    format!(
                        "{} nodes do not fit in a /{} of IPv4 pods (sizes.ipv4_pods) with a block of at least 2 addresses each",
                        c.max_nodes, sizes.ipv4_pods
                    ),
                ));
            }
            let mut seen = BTreeSet::new();
            for (j, n) in c.nodes.iter().enumerate() {
                let k = format!("{key}.nodes[{j}]");
                check_node_name(&k, n)?;
                // The node's Calico IPPool is named `<cluster>-node-<node>`.
                if c.name.len() + "-node-".len() + n.len() > 253 {
                    return Err(Invalid::new(
                        k,
                        format!("`{n}` is too long: the IP pool name `{}-node-{n}` would pass the 253 bytes of a Kubernetes name", c.name),
                    ));
                }
                if !seen.insert(n.as_str()) {
                    return Err(Invalid::new(k, format!("node `{n}` is listed twice")));
                }
            }
            if c.nodes.len() > usize::try_from(c.max_nodes).unwrap_or(usize::MAX) {
                return Err(Invalid::new(
                    format!("{key}.nodes"),
                    format!(
                        "{} nodes are listed but max_nodes is {}",
                        c.nodes.len(),
                        c.max_nodes
                    ),
                ));
            }
            let mut seen = BTreeSet::new();
            for (j, g) in c.gateways.iter().enumerate() {
                let k = format!("{key}.gateways[{j}]");
                check_label(&k, g)?;
                if !seen.insert(g.as_str()) {
                    return Err(Invalid::new(k, format!("gateway `{g}` is listed twice")));
                }
            }
            if !c.gateways.is_empty() && nat64.pool4.is_empty() {
                return Err(Invalid::new(
                    format!("{key}.gateways"),
                    "gateways need IPv4 addresses: list blocks in nat64.pool4",
                ));
            }
            let fixed = match &c.prefix {
                Some(t) => {
                    let p = prefix(&format!("{key}.prefix"), t, Family::V6)?;
                    if p.prefix_len() >= sizes.uplink {
                        return Err(Invalid::new(
                            format!("{key}.prefix"),
                            format!("{p} is too small for a cluster: it must hold pods, a /{} uplink and a service /64", sizes.uplink),
                        ));
                    }
                    if let Some(e) = external.iter().find(|e| e.prefix.overlaps(&p)) {
                        return Err(Invalid::new(
                            format!("{key}.prefix"),
                            format!(
                                "{p} overlaps the external network {} ({})",
                                e.name, e.prefix
                            ),
                        ));
                    }
                    Some(p)
                }
                None => None,
            };
            clusters.push(Cluster {
                name: c.name.clone(),
                site: c.site.clone(),
                max_nodes: c.max_nodes,
                stack,
                nat_outgoing: c.nat_outgoing,
                nodes: c.nodes.clone(),
                gateways: c.gateways.clone(),
                prefix: fixed,
                key,
            });
        }
        for (i, a) in clusters.iter().enumerate() {
            let Some(pa) = a.prefix else { continue };
            for b in &clusters[..i] {
                if let Some(pb) = b.prefix.filter(|pb| pb.overlaps(&pa)) {
                    return Err(Invalid::new(
                        format!("{}.prefix", a.key),
                        format!("{pa} overlaps the prefix of cluster `{}` ({pb})", b.name),
                    ));
                }
            }
        }
        Ok(Plan {
            prefixes,
            dns_zone,
            sizes,
            nat64,
            ipv4,
            external,
            gateway,
            sites,
            clusters,
        })
    }

    #[must_use]
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The NAT64 prefixes in use: the well-known one, or the local-use block.
    #[must_use]
    pub fn nat64_parent(&self) -> Prefix {
        let text = match self.nat64.mode {
            Nat64Mode::WellKnown => WELL_KNOWN_NAT64,
            Nat64Mode::PerCluster => LOCAL_USE_NAT64,
        };
        // Both constants are valid prefixes (see the tests).
        text.parse()
            .unwrap_or_else(|_| prefix::containing(Family::V6, 0, 128))
    }
}

/// The first address of an IPv4 block that is not global unicast. Every
/// special-purpose range is aligned to a /24 or coarser, so looking at the
/// start of each /24 of the block (or its start, if smaller) finds any.
fn first_non_global(block: &Prefix) -> Option<std::net::Ipv4Addr> {
    let step: u128 = 256;
    let mut a = block.start();
    while a <= block.last() {
        let v4 = std::net::Ipv4Addr::from(u32::try_from(a).ok()?);
        if !sixgate_xlat::prefix64::is_global_v4(v4) {
            return Some(v4);
        }
        a += step;
    }
    None
}

/// A Linux interface name: 1 to 15 bytes, no `/`, whitespace or `:`.
fn interface_name(key: &str, name: &str) -> Result<String, Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control());
    if ok {
        Ok(name.to_owned())
    } else {
        Err(Invalid::new(
            key,
            format!("`{name}` is not an interface name: 1 to 15 bytes without `/`, `:` or spaces"),
        ))
    }
}

fn check_disjoint(key: &str, list: &[Prefix]) -> Result<(), Invalid> {
    for (i, p) in list.iter().enumerate() {
        for (j, q) in list.iter().enumerate().take(i) {
            if p.overlaps(q) {
                return Err(Invalid::new(
                    format!("{key}[{i}]"),
                    format!("{p} overlaps {key}[{j}] = {q}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "prefixes = [\"2001:db8::/40\"]\ndns_zone = \"k8s.example.net\"\n";

    fn err(text: &str) -> String {
        Plan::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn constants_parse() {
        assert!(WELL_KNOWN_NAT64.parse::<Prefix>().is_ok());
        assert!(LOCAL_USE_NAT64.parse::<Prefix>().is_ok());
    }

    #[test]
    fn minimal_plan_takes_the_defaults() {
        let plan = Plan::parse(MINIMAL).unwrap();
        assert_eq!(
            plan.sizes,
            Sizes {
                pods_per_node: 64,
                ..Sizes::default()
            }
        );
        assert_eq!(plan.nat64.mode, Nat64Mode::WellKnown);
        assert!(plan.clusters.is_empty());
    }

    #[test]
    fn malformed_prefix_names_the_key() {
        let e = err("prefixes = [\"2001:db8::/40\", \"2001:db8:zz::/48\"]\ndns_zone = \"x.net\"\n");
        assert_eq!(
            e,
            "prefixes[1]: `2001:db8:zz::` is not an IPv4 or IPv6 address"
        );
    }

    #[test]
    fn a_64_cannot_hold_56_clusters() {
        let e = err("prefixes = [\"2001:db8::/64\"]\ndns_zone = \"x.net\"\n");
        assert!(
            e.starts_with("prefixes[0]: 2001:db8::/64 cannot hold /56 cluster blocks"),
            "{e}"
        );
    }

    #[test]
    fn overlapping_organisation_prefixes_are_refused() {
        let e = err("prefixes = [\"2001:db8::/40\", \"2001:db8:10::/48\"]\ndns_zone = \"x.net\"\n");
        assert_eq!(
            e,
            "prefixes[1]: 2001:db8:10::/48 overlaps prefixes[0] = 2001:db8::/40"
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = err(&format!("{MINIMAL}[sizes]\nclustr = 56\n"));
        assert!(e.starts_with("sizes.clustr: unknown field `clustr`"), "{e}");
        assert!(e.contains("line 4"), "{e}");
    }

    #[test]
    fn dual_stack_needs_ipv4_blocks() {
        let e = err(&format!(
            "{MINIMAL}[[clusters]]\nname = \"a\"\nsite = \"s\"\nmax_nodes = 3\nstack = \"dual\"\n"
        ));
        assert!(
            e.starts_with("clusters[0].stack: cluster `a` is dual-stack"),
            "{e}"
        );
    }

    #[test]
    fn bad_names_and_stacks_are_refused() {
        let e = err(&format!(
            "{MINIMAL}[[clusters]]\nname = \"A_b\"\nsite = \"s\"\nmax_nodes = 3\n"
        ));
        assert!(
            e.starts_with("clusters[0].name: `A_b` is not a DNS label"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}[[clusters]]\nname = \"a\"\nsite = \"s\"\nmax_nodes = 3\nstack = \"ipv4\"\n"
        ));
        assert!(
            e.starts_with("clusters[0].stack: `ipv4` is not a stack"),
            "{e}"
        );
    }

    #[test]
    fn ipv4_node_masks_keep_every_node_in_the_block() {
        assert_eq!(ipv4_node_mask(16, 20), Some(24));
        assert_eq!(ipv4_node_mask(20, 100), Some(27));
        assert_eq!(ipv4_node_mask(28, 8), Some(31));
        assert_eq!(ipv4_node_mask(28, 16), None);
        assert_eq!(bits_for(1), 0);
        assert_eq!(bits_for(65536), 16);
    }

    #[test]
    fn too_many_nodes_are_refused() {
        let e = err(&format!(
            "{MINIMAL}[[clusters]]\nname = \"a\"\nsite = \"s\"\nmax_nodes = 65537\n"
        ));
        assert!(
            e.starts_with("clusters[0].max_nodes: 65537 nodes is too many"),
            "{e}"
        );
    }
}
