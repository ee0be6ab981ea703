//! The records that delegate the cluster domain to the cluster's CoreDNS:
//! an NS record and AAAA glue for kube-dns, as seed 002 shows.

use std::fmt::Write as _;

use super::Ctx;

/// TTL of the delegation records.
const TTL: u32 = 3600;

pub fn delegation(ctx: &Ctx<'_>) -> String {
    let zone = &ctx.plan.dns_zone;
    let name = &ctx.cluster.name;
    let ns = format!("kube-dns.kube-system.svc.{name}");
    let mut out = String::new();
    let _ = writeln!(out, "; {}", ctx.header("DNS delegation"));
    let _ = writeln!(
        out,
        "; Add these records to the {zone} zone: they delegate {} to the",
        ctx.domain()
    );
    out.push_str("; cluster's CoreDNS, whose Service address the site routers learn over BGP.\n");
    let _ = writeln!(out, "$ORIGIN {zone}.");
    let width = ns.len().max(name.len());
    let _ = writeln!(out, "{name:<width$} {TTL} IN NS   {ns}");
    let _ = writeln!(out, "{ns:<width$} {TTL} IN AAAA {}", ctx.kube_dns());
    out
}
