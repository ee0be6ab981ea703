//! The sixgate config of one gateway of the cluster: dns64 answering the
//! cluster's CoreDNS, nat64 with the cluster's prefix and the gateway's
//! pool4 slice, and node routes that lead both into the nat64 TUN device.
//!
//! One small function per section, so that key names can follow the
//! parts' own definitions. Keys as defined on the branches of the parts
//! (see docs/plan.md, "sixgate config"):
//! - `[dns64]`: `listen`, `prefix`, `allow`, `exempt` (sixgate_dns64::Config);
//! - `[node]`: `uplink`, `[[node.routes]]` `prefix` + `dev`, `[node.egress]`
//!   `pod_prefixes` + `cluster_prefixes` (sixgate_node::Config);
//! - `[nat64]`: `prefix`, `pool4`, `tun` (no definition existed when this
//!   was written: the names follow `[siit]` and the other parts).

use std::fmt::Write as _;

use super::Ctx;
use crate::lock::GatewayAlloc;

/// The port the gateways' dns64 answers on.
pub const DNS64_PORT: u16 = 53;
/// The admin port (`/healthz`, `/readyz`, `/metrics`) of the gateways.
pub const ADMIN_PORT: u16 = 7779;

pub fn render(ctx: &Ctx<'_>, name: &str, gw: &GatewayAlloc) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}",
        ctx.header(&format!("sixgate config of gateway {name}"))
    );
    let _ = writeln!(
        out,
        "# Gateway address {} on the cluster's uplink {}.",
        gw.address, ctx.alloc.uplink
    );
    out.push_str("# Check it with `sixgate check --config FILE`.\n");
    admin(&mut out);
    dns64(&mut out, ctx);
    nat64(&mut out, ctx, gw);
    node(&mut out, ctx, gw);
    out
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

fn admin(out: &mut String) {
    let _ = writeln!(out, "\n[admin]\nlisten = \"[::]:{ADMIN_PORT}\"");
}

fn dns64(out: &mut String, ctx: &Ctx<'_>) {
    out.push_str(
        "\n# The cluster's CoreDNS forwards every name outside the cluster domain here.\n[dns64]\n",
    );
    let _ = writeln!(out, "listen = {}", list(&[format!("[::]:{DNS64_PORT}")]));
    let _ = writeln!(out, "prefix = \"{}\"", ctx.alloc.nat64);
    // The cluster block holds its pods (CoreDNS), nodes and services.
    let _ = writeln!(
        out,
        "allow = {}",
        list(&[
            ctx.alloc.block.to_string(),
            "::1/128".to_owned(),
            "127.0.0.0/8".to_owned()
        ])
    );
    let _ = writeln!(out, "exempt = {}", list(&[ctx.domain()]));
}

fn nat64(out: &mut String, ctx: &Ctx<'_>, gw: &GatewayAlloc) {
    out.push_str("\n# This gateway's slice of the organisation's pool4.\n[nat64]\n");
    let _ = writeln!(out, "tun = \"{}\"", ctx.plan.gateway.tun);
    let _ = writeln!(out, "prefix = \"{}\"", ctx.alloc.nat64);
    let _ = writeln!(out, "pool4 = {}", list(&[gw.pool4.to_string()]));
}

fn node(out: &mut String, ctx: &Ctx<'_>, gw: &GatewayAlloc) {
    out.push_str(
        "\n# The NAT64 prefix and the pool4 slice are routed into the nat64 TUN device.\n[node]\n",
    );
    let _ = writeln!(out, "uplink = \"{}\"", ctx.plan.gateway.interface);
    for prefix in [ctx.alloc.nat64, gw.pool4] {
        let _ = writeln!(
            out,
            "\n[[node.routes]]\nprefix = \"{prefix}\"\ndev = \"{}\"",
            ctx.plan.gateway.tun
        );
    }
    if ctx.cluster.nat_outgoing {
        out.push_str("\n# natOutgoing: the cluster's pods leave the organisation with the gateway's address.\n[node.egress]\n");
        let _ = writeln!(
            out,
            "pod_prefixes = {}",
            list(&[ctx.alloc.pods.to_string()])
        );
        let blocks: Vec<String> = ctx
            .all_cluster_blocks()
            .iter()
            .map(ToString::to_string)
            .collect();
        let _ = writeln!(out, "cluster_prefixes = {}", list(&blocks));
    }
}
