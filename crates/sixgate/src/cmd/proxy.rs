//! `sixgate proxy` and the `[proxy]` section of `sixgate run`.

use crate::config::Invalid;
use crate::context::Context;

/// The `[proxy]` section.
pub type Section = sixgate_proxy::Config;

/// Checks of the section that need more than one value at a time.
pub fn validate(_section: &Section) -> Result<(), Invalid> {
    Ok(())
}

/// Runs the part until `ctx.shutdown` is cancelled.
pub async fn serve(_section: Section, _ctx: Context) -> anyhow::Result<()> {
    anyhow::bail!("proxy is not implemented yet")
}
