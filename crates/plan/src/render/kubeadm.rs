//! kubeadm `ClusterConfiguration` (kubeadm.k8s.io/v1beta4) and the
//! `KubeletConfiguration` an IPv6-only or dual-stack cluster needs.

use std::fmt::Write as _;

use super::{yq, Ctx};
use crate::model::{ipv4_node_mask, Stack};

pub fn render(ctx: &Ctx<'_>) -> String {
    let a = ctx.alloc;
    let sizes = &ctx.plan.sizes;
    let dual = ctx.cluster.stack == Stack::Dual;
    let (pods, services) = match (a.ipv4_pods, a.ipv4_services) {
        (Some(p4), Some(s4)) if dual => {
            (format!("{},{p4}", a.pods), format!("{},{s4}", a.services))
        }
        _ => (a.pods.to_string(), a.services.to_string()),
    };
    let mut out = String::new();
    let _ = writeln!(out, "# {}", ctx.header("kubeadm and kubelet config"));
    out.push_str("# Pass it to `kubeadm init --config` together with your InitConfiguration.\n");
    out.push_str("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n");
    let _ = writeln!(out, "clusterName: {}", yq(&ctx.cluster.name));
    out.push_str("networking:\n");
    let _ = writeln!(out, "  dnsDomain: {}", yq(&ctx.domain()));
    let _ = writeln!(out, "  podSubnet: {}", yq(&pods));
    let _ = writeln!(out, "  serviceSubnet: {}", yq(&services));
    out.push_str("controllerManager:\n  extraArgs:\n");
    out.push_str("  # One pod prefix per node, as the plan sizes them.\n");
    let _ = writeln!(
        out,
        "  - name: node-cidr-mask-size-ipv6\n    value: {}",
        yq(&sizes.pods_per_node.to_string())
    );
    if let Some(mask) = a
        .ipv4_pods
        .filter(|_| dual)
        .and_then(|p| ipv4_node_mask(p.prefix_len(), ctx.cluster.max_nodes))
    {
        let _ = writeln!(
            out,
            "  - name: node-cidr-mask-size-ipv4\n    value: {}",
            yq(&mask.to_string())
        );
    }
    out.push_str("---\n");
    out.push_str("# The kubelet must listen on IPv6 (its default, 0.0.0.0, is IPv4-only),\n");
    out.push_str("# and resolve through the cluster's own domain.\n");
    out.push_str("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n");
    out.push_str("address: \"::\"\n");
    out.push_str("healthzBindAddress: \"::1\"\n");
    let _ = writeln!(out, "clusterDomain: {}", yq(&ctx.domain()));
    out.push_str("clusterDNS:\n");
    let _ = writeln!(out, "- {}", yq(&ctx.kube_dns().to_string()));
    if let Some(v4) = ctx.kube_dns_v4().filter(|_| dual) {
        let _ = writeln!(out, "- {}", yq(&v4));
    }
    out
}
