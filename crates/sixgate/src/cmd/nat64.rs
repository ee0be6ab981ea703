//! `sixgate nat64` and the `[nat64]` section of `sixgate run`.

use crate::config::Invalid;
use crate::context::Context;

/// The `[nat64]` section (not implemented yet).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {}

/// Checks of the section that need more than one value at a time.
pub fn validate(_section: &Section) -> Result<(), Invalid> {
    Ok(())
}

/// Runs the part until `ctx.shutdown` is cancelled.
pub async fn serve(_section: Section, _ctx: Context) -> anyhow::Result<()> {
    anyhow::bail!("nat64 is not implemented yet")
}
