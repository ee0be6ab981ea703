//! `sixgate dns64` and the `[dns64]` section of `sixgate run`.

use std::path::Path;
use std::sync::Arc;

use crate::config::Invalid;
use crate::context::Context;

/// The `[dns64]` section.
pub type Section = sixgate_dns64::Config;

/// Checks of the section that need more than one value at a time.
pub fn validate(section: &Section) -> Result<(), Invalid> {
    section.check().map_err(|p| Invalid::new(p.key, p.reason))
}

/// Runs the part until `ctx.shutdown` is cancelled.
pub async fn serve(section: Section, ctx: Context) -> anyhow::Result<()> {
    let ready = ctx.health.part("dns64");
    let forwarders = section
        .forwarders_or(Path::new("/etc/resolv.conf"))
        .map_err(anyhow::Error::msg)?;
    tracing::info!(
        "dns64 forwarding to {}",
        forwarders
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let metrics = Arc::new(sixgate_dns64::Metrics::new());
    ctx.registry.register(metrics.clone());
    let listeners = sixgate_dns64::bind(&section.listen)?;
    let server = sixgate_dns64::Server::new(section, forwarders, metrics);
    ready.set(true);
    server.run(listeners, ctx.shutdown.clone()).await;
    ready.set(false);
    Ok(())
}
