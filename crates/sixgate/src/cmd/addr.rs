//! `sixgate addr embed|extract`: an RFC 6052 calculator.

use std::net::{Ipv4Addr, Ipv6Addr};

use clap::{Args as ClapArgs, Subcommand};
use sixgate_xlat::prefix64::{Prefix64, WELL_KNOWN};

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Print the IPv4-embedded IPv6 address of IPV4 under PREFIX.
    Embed {
        ipv4: Ipv4Addr,
        /// RFC 6052 prefix (/32, /40, /48, /56, /64 or /96).
        #[arg(short, long, default_value_t = WELL_KNOWN)]
        prefix: Prefix64,
    },
    /// Print the IPv4 address embedded in IPV6 under PREFIX.
    Extract {
        ipv6: Ipv6Addr,
        #[arg(short, long, default_value_t = WELL_KNOWN)]
        prefix: Prefix64,
    },
}

pub fn command(args: &Args) -> anyhow::Result<()> {
    match args.action {
        Action::Embed { ipv4, prefix } => println!("{}", prefix.embed(ipv4)?),
        Action::Extract { ipv6, prefix } => match prefix.extract(ipv6) {
            Some(ipv4) => println!("{ipv4}"),
            None => anyhow::bail!("{ipv6} is not inside {prefix}"),
        },
    }
    Ok(())
}
