//! The allow list of the organisation's cluster prefixes: a Kubernetes
//! `NetworkPolicy`, and plain CIDR lists for cloud ACLs and firewalls.

use std::fmt::Write as _;

use super::{yq, Ctx};

pub fn network_policy(ctx: &Ctx<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}", ctx.header("NetworkPolicy"));
    out.push_str("# Apply it in each namespace that should accept traffic from every cluster\n");
    out.push_str("# of the organisation and from nowhere else outside.\n");
    out.push_str("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n");
    out.push_str("  name: sixgate-allow-clusters\nspec:\n  podSelector: {}\n  policyTypes:\n  - Ingress\n  ingress:\n  - from:\n");
    for block in ctx.all_cluster_blocks() {
        let _ = writeln!(
            out,
            "    - ipBlock:\n        cidr: {}",
            yq(&block.to_string())
        );
    }
    if let Some(v4) = ctx.alloc.ipv4_pods {
        out.push_str("    # This cluster's own IPv4 pods (IPv4 is not routed between clusters).\n");
        let _ = writeln!(out, "    - ipBlock:\n        cidr: {}", yq(&v4.to_string()));
    }
    out
}

pub fn allow_list_v6(ctx: &Ctx<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}", ctx.header("IPv6 allow list"));
    out.push_str("# The cluster blocks of every cluster of the organisation, one CIDR a line.\n");
    for block in ctx.all_cluster_blocks() {
        let _ = writeln!(out, "{block}");
    }
    out
}

pub fn allow_list_v4(ctx: &Ctx<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}", ctx.header("IPv4 allow list"));
    out.push_str("# The NAT64 pool4 slices of every gateway of the organisation: the IPv4\n");
    out.push_str("# source addresses its IPv6-only pods appear from. One CIDR a line.\n");
    let mut slices: Vec<_> = ctx
        .lock
        .clusters
        .values()
        .flat_map(|c| c.gateways.values().map(|g| g.pool4))
        .collect();
    slices.sort();
    for s in slices {
        let _ = writeln!(out, "{s}");
    }
    out
}
