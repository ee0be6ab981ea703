//! The scenarios of `sixgate demo`, one function per step.

use super::demo::Lab;

/// Step 1: DNS64 + NAT64 egress of an IPv6-only pod.
pub fn egress(_lab: &mut Lab) -> anyhow::Result<()> {
    anyhow::bail!("not written yet: needs the dns64 and nat64 parts")
}

/// Step 2: the private-link proxy.
pub fn private_link(_lab: &mut Lab) -> anyhow::Result<()> {
    anyhow::bail!("not written yet: needs the proxy part")
}

/// Step 3: the LB probe source rewrite.
pub fn lb_probe(_lab: &mut Lab) -> anyhow::Result<()> {
    anyhow::bail!("not written yet: needs the node part")
}
