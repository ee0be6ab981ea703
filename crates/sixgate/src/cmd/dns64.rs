//! `sixgate dns64` and the `[dns64]` section of `sixgate run`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::Invalid;
use crate::context::Context;

/// The `[dns64]` section.
pub type Section = sixgate_dns64::Config;

const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Checks of the section that need more than one value at a time.
pub fn validate(section: &Section) -> Result<(), Invalid> {
    section.check().map_err(|p| Invalid::new(p.key, p.reason))
}

/// Runs the part until `ctx.shutdown` is cancelled. A reloaded config
/// (SIGHUP) is applied to the running server.
pub async fn serve(section: Section, ctx: Context) -> anyhow::Result<()> {
    let ready = ctx.health.part("dns64");
    let forwarders = section
        .forwarders_or(Path::new(RESOLV_CONF))
        .map_err(anyhow::Error::msg)?;
    log_forwarders(&forwarders);
    let metrics = Arc::new(sixgate_dns64::Metrics::new());
    ctx.registry.register(metrics.clone());
    let listeners = sixgate_dns64::bind(&section.listen)?;
    let running = (section.clone(), forwarders.clone());
    let server = sixgate_dns64::Server::new(section, forwarders, metrics);
    let reloader = tokio::spawn(reload_on_change(Arc::clone(&server), running, ctx.clone()));
    ready.set(true);
    server.run(listeners, ctx.shutdown.clone()).await;
    ready.set(false);
    reloader.abort();
    Ok(())
}

fn log_forwarders(forwarders: &[SocketAddr]) {
    let list: Vec<String> = forwarders.iter().map(ToString::to_string).collect();
    tracing::info!("dns64 forwarding to {}", list.join(", "));
}

async fn reload_on_change(
    server: Arc<sixgate_dns64::Server>,
    mut running: (Section, Vec<SocketAddr>),
    ctx: Context,
) {
    let mut config = ctx.config.clone();
    while config.changed().await.is_ok() {
        let Some(section) = config.borrow_and_update().dns64.clone() else {
            tracing::warn!(
                "dns64: the reloaded config has no [dns64] section; keeping the running one"
            );
            continue;
        };
        let forwarders = match section.forwarders_or(Path::new(RESOLV_CONF)) {
            Ok(forwarders) => forwarders,
            Err(err) => {
                tracing::error!("dns64 reload failed, keeping the running config: {err}");
                continue;
            }
        };
        if running.0 == section && running.1 == forwarders {
            // Only another part's section changed: keep the cache.
            continue;
        }
        running = (section.clone(), forwarders.clone());
        let restart = server.reload(section, forwarders.clone());
        log_forwarders(&forwarders);
        tracing::info!("dns64 reloaded");
        if !restart.is_empty() {
            tracing::warn!(
                "dns64: changes to {} take effect after a restart",
                restart.join(", ")
            );
        }
    }
}
