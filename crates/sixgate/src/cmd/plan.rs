//! `sixgate plan`: the IPv6 address planner.

pub fn command() -> anyhow::Result<()> {
    anyhow::bail!("plan is not implemented yet")
}
