//! `sixgate dns64` and the `[dns64]` section of `sixgate run`.

use crate::config::Invalid;
use crate::context::Context;

/// The `[dns64]` section.
pub type Section = sixgate_dns64::Config;

/// Checks of the section that need more than one value at a time.
pub fn validate(_section: &Section) -> Result<(), Invalid> {
    Ok(())
}

/// Runs the part until `ctx.shutdown` is cancelled.
pub async fn serve(_section: Section, _ctx: Context) -> anyhow::Result<()> {
    anyhow::bail!("dns64 is not implemented yet")
}
