//! Calico `IPPool`s (no encapsulation) and BGP: `BGPConfiguration` with the
//! node-to-node mesh, `BGPPeer`s to the site's routers keeping the original
//! next hop (the set-up of seed 002).

use std::fmt::Write as _;

use super::{yq, Ctx};

/// Calico's default IPv6 allocation block, well inside any pod prefix.
const BLOCK_SIZE_V6: u8 = 122;
/// Calico's default IPv4 allocation block.
const BLOCK_SIZE_V4: u8 = 26;

fn pool(out: &mut String, name: &str, cidr: &str, block: u8, nat: bool, selector: &str) {
    out.push_str("---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n");
    let _ = writeln!(out, "  name: {}", yq(name));
    out.push_str("spec:\n");
    let _ = writeln!(out, "  cidr: {}", yq(cidr));
    let _ = writeln!(out, "  blockSize: {block}");
    out.push_str("  ipipMode: Never\n  vxlanMode: Never\n");
    let _ = writeln!(out, "  natOutgoing: {nat}");
    let _ = writeln!(out, "  nodeSelector: {}", yq(selector));
}

pub fn ip_pools(ctx: &Ctx<'_>) -> String {
    let a = ctx.alloc;
    let name = &ctx.cluster.name;
    let mut out = String::new();
    let _ = writeln!(out, "# {}", ctx.header("Calico IP pools"));
    out.push_str("# No encapsulation: pod prefixes are routed as they are.\n");
    if ctx.cluster.nodes.is_empty() {
        out.push_str("# One pool for the cluster's pod prefix (no nodes are named in the plan).\n");
        pool(
            &mut out,
            &format!("{name}-pods-v6"),
            &a.pods.to_string(),
            BLOCK_SIZE_V6,
            ctx.cluster.nat_outgoing,
            "all()",
        );
    } else {
        out.push_str(
            "# One pool per node, pinned to it: each node routes exactly its own pod prefix.\n",
        );
        out.push_str("# Nodes not named in the plan get no IPv6 pod addresses.\n");
        for node in &ctx.cluster.nodes {
            if let Some(n) = a.nodes.get(node) {
                pool(
                    &mut out,
                    &format!("{name}-node-{node}"),
                    &n.pods.to_string(),
                    BLOCK_SIZE_V6.max(n.pods.prefix_len()),
                    ctx.cluster.nat_outgoing,
                    &format!("kubernetes.io/hostname == '{node}'"),
                );
            }
        }
    }
    if let Some(v4) = a.ipv4_pods {
        out.push_str("# Private IPv4 pod addresses leave the cluster masqueraded.\n");
        pool(
            &mut out,
            &format!("{name}-pods-v4"),
            &v4.to_string(),
            BLOCK_SIZE_V4.max(v4.prefix_len()),
            true,
            "all()",
        );
    }
    out
}

pub fn bgp(ctx: &Ctx<'_>) -> String {
    let a = ctx.alloc;
    let site = ctx.plan.sites.get(&ctx.cluster.site);
    let mut out = String::new();
    let _ = writeln!(out, "# {}", ctx.header("Calico BGP config"));
    out.push_str("# Nodes mesh with each other and announce the Service prefix, so that\n");
    out.push_str("# the delegated cluster domain resolves from outside.\n");
    out.push_str("apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n");
    out.push_str("  logSeverityScreen: Info\n  nodeToNodeMeshEnabled: true\n");
    if let Some(asn) = site.and_then(|s| s.as_number) {
        let _ = writeln!(out, "  asNumber: {asn}");
    }
    out.push_str("  serviceClusterIPs:\n");
    let _ = writeln!(out, "  - cidr: {}", yq(&a.services.to_string()));
    if let Some(s4) = a.ipv4_services {
        let _ = writeln!(out, "  - cidr: {}", yq(&s4.to_string()));
    }
    for (i, router) in site
        .map(|s| s.routers.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        out.push_str(
            "---\n# A router of the site: it keeps the node as the next hop of pod routes.\n",
        );
        out.push_str("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n");
        let _ = writeln!(
            out,
            "  name: {}",
            yq(&format!("{}-router-{i}", ctx.cluster.site))
        );
        out.push_str("spec:\n");
        let _ = writeln!(out, "  peerIP: {}", yq(&router.address.to_string()));
        let _ = writeln!(out, "  asNumber: {}", router.as_number);
        out.push_str("  keepOriginalNextHop: true\n");
    }
    out
}
