//! `sixgate node` and the `[node]` section of `sixgate run`.

use crate::config::Invalid;
use crate::context::Context;

/// The `[node]` section.
pub type Section = sixgate_node::Config;

/// Checks of the section that need more than one value at a time.
pub fn validate(_section: &Section) -> Result<(), Invalid> {
    Ok(())
}

/// Runs the part until `ctx.shutdown` is cancelled.
pub async fn serve(_section: Section, _ctx: Context) -> anyhow::Result<()> {
    anyhow::bail!("node is not implemented yet")
}
