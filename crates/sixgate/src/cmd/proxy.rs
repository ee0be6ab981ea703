//! `sixgate proxy` and the `[proxy]` section of `sixgate run`.

use std::sync::Arc;

use sixgate_proxy::driver::{Options, Proxy};
use tokio::sync::mpsc;

use crate::config::Invalid;
use crate::context::Context;

/// The `[proxy]` section.
pub type Section = sixgate_proxy::Config;

/// Checks of the section that need more than one value at a time.
pub fn validate(section: &Section) -> Result<(), Invalid> {
    section
        .validate()
        .map_err(|p| Invalid::new(format!("proxy.{}", p.key), p.reason))
}

/// Runs the part until `ctx.shutdown` is cancelled, then drains.
pub async fn serve(section: Section, ctx: Context) -> anyhow::Result<()> {
    let proxy = Proxy::new(Options {
        splice: section.splice,
    });
    ctx.registry.register(proxy.collector());
    let ready = ctx.health.part("proxy");

    // A reloaded config (SIGHUP) reaches the proxy as its `[proxy]` section.
    let (tx, rx) = mpsc::channel(4);
    let mut config = ctx.config.clone();
    let shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        config.borrow_and_update();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = config.changed() => if changed.is_err() { return },
            }
            let section = config.borrow_and_update().proxy.clone();
            match section {
                Some(section) => {
                    if tx.send(section).await.is_err() {
                        return;
                    }
                }
                None => tracing::warn!(
                    "the reloaded config has no [proxy] section; the proxy keeps its routes (stop it to remove it)"
                ),
            }
        }
    });

    let ready = Arc::new(ready);
    proxy
        .run(section, rx, ctx.shutdown.clone(), move |up| ready.set(up))
        .await?;
    Ok(())
}
