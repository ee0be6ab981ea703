//! A CoreDNS server block: the cluster domain is answered in the cluster,
//! everything else goes to the sixgate dns64 resolvers on the gateways.

use std::fmt::Write as _;

use super::Ctx;

/// The port the gateways' dns64 listens on (see `sixgate::DNS64_PORT`).
use super::sixgate::DNS64_PORT;

pub fn render(ctx: &Ctx<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}", ctx.header("CoreDNS server block"));
    out.push_str(
        "# It replaces the `.:53` block of the Corefile in the kube-system/coredns ConfigMap.\n",
    );
    out.push_str(".:53 {\n    errors\n    health {\n        lameduck 5s\n    }\n    ready\n");
    let _ = writeln!(
        out,
        "    kubernetes {} in-addr.arpa ip6.arpa {{",
        ctx.domain()
    );
    out.push_str(
        "        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n        ttl 30\n    }\n",
    );
    out.push_str("    prometheus :9153\n");
    let mut upstreams: Vec<String> = ctx
        .cluster
        .gateways
        .iter()
        .filter_map(|g| ctx.alloc.gateways.get(g))
        .map(|gw| format!("[{}]:{DNS64_PORT}", gw.address))
        .collect();
    if upstreams.is_empty() {
        out.push_str("    # The plan names no gateway: external names use the node's resolver.\n");
        upstreams.push("/etc/resolv.conf".to_owned());
    } else {
        out.push_str("    # External names: sixgate dns64 on the gateways (AAAA synthesised for IPv4-only names).\n");
    }
    let _ = writeln!(out, "    forward . {}", upstreams.join(" "));
    out.push_str("    cache 30\n    loop\n    reload\n    loadbalance\n}\n");
    out
}
