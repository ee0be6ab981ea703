//! The sixgate config of one gateway of the cluster. One small function per
//! section, so that key names can follow the parts' own definitions.

use std::fmt::Write as _;

use super::Ctx;
use crate::lock::GatewayAlloc;

/// The port the gateways' dns64 answers on.
pub const DNS64_PORT: u16 = 53;

pub fn render(ctx: &Ctx<'_>, name: &str, _gw: &GatewayAlloc) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}",
        ctx.header(&format!("sixgate config of gateway {name}"))
    );
    out.push_str("# Check it with `sixgate check --config FILE`.\n");
    admin(&mut out);
    out
}

fn admin(out: &mut String) {
    out.push_str("\n[admin]\nlisten = \"[::]:7779\"\n");
}
