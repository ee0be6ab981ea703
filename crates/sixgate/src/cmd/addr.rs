//! `sixgate addr embed|extract|explain|derive`: an RFC 6052 calculator, and
//! the planner's host address derivations (`sixgate_plan::derive`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{anyhow, Context as _};
use clap::{ArgGroup, Args as ClapArgs, Subcommand};
use sixgate_plan::derive;
use sixgate_plan::prefix::{self, Family};
use sixgate_xlat::prefix64::{Prefix64, WELL_KNOWN};

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

/// The IPv4 address `explain` embeds when none is given: the one of the
/// RFC 6052 §2.4 examples.
const EXAMPLE_IPV4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 33);

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
    /// Show where IPv4 addresses sit in addresses under PREFIX (RFC 6052
    /// §2.2 bit layout, the u-octet, §3.1), with IPV4 embedded and extracted.
    Explain {
        /// RFC 6052 prefix (/32, /40, /48, /56, /64 or /96).
        #[arg(short, long, default_value = "64:ff9b::/96")]
        prefix: String,
        /// The example IPv4 address [default: 192.0.2.33, as in RFC 6052 §2.4].
        ipv4: Option<String>,
    },
    /// Print the IPv6 address derived from each IPV4, one line each, in
    /// order: hashed into the uplink /64, or embedded in the NAT64 prefix.
    #[command(group(ArgGroup::new("how").required(true).args(["uplink", "nat64_prefix"])))]
    Derive {
        /// The uplink /64 (`clusters.<name>.uplink` in plan.lock): the host
        /// address is a stable hash of the IPv4 address in it (seed 001).
        #[arg(long, value_name = "PREFIX")]
        uplink: Option<String>,
        /// The NAT64 prefix (`64:ff9b::/96`, or `clusters.<name>.nat64` in
        /// plan.lock): the address is the RFC 6052 embedding.
        #[arg(long, value_name = "PREFIX")]
        nat64_prefix: Option<String>,
        /// One or more IPv4 addresses.
        #[arg(required = true)]
        ipv4: Vec<String>,
    },
}

pub fn command(args: &Args) -> anyhow::Result<()> {
    match &args.action {
        Action::Embed { ipv4, prefix } => println!("{}", prefix.embed(*ipv4)?),
        Action::Extract { ipv6, prefix } => match prefix.extract(*ipv6) {
            Some(ipv4) => println!("{ipv4}"),
            None => anyhow::bail!("{ipv6} is not inside {prefix}"),
        },
        Action::Explain { prefix, ipv4 } => {
            let prefix = prefix64("--prefix", prefix).context("addr explain")?;
            let example = match ipv4 {
                Some(text) => ipv4_arg(text).context("addr explain")?,
                None => EXAMPLE_IPV4,
            };
            print!("{}", derive::explain(&prefix, example));
        }
        Action::Derive {
            uplink,
            nat64_prefix,
            ipv4,
        } => {
            let lines = derive_all(uplink.as_deref(), nat64_prefix.as_deref(), ipv4)
                .context("addr derive")?;
            // Nothing is printed unless every address could be derived.
            for line in lines {
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// The derived addresses, in the order of `ipv4`.
fn derive_all(
    uplink: Option<&str>,
    nat64_prefix: Option<&str>,
    ipv4: &[String],
) -> anyhow::Result<Vec<Ipv6Addr>> {
    let v4s = ipv4
        .iter()
        .map(|text| ipv4_arg(text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    match (uplink, nat64_prefix) {
        (Some(text), None) => {
            let net = prefix::parse_family(text, Family::V6)
                .map_err(|e| anyhow!("--uplink `{text}`: {e}"))?;
            v4s.into_iter()
                .map(|v4| {
                    derive::hashed_host(&net, v4).map_err(|e| anyhow!("--uplink: {}", e.reason))
                })
                .collect()
        }
        (None, Some(text)) => {
            let prefix = prefix64("--nat64-prefix", text)?;
            v4s.into_iter()
                .map(|v4| derive::embedded_host(&prefix, v4).map_err(|e| anyhow!("{}", e.reason)))
                .collect()
        }
        // clap's group requires exactly one of the two.
        _ => Err(anyhow!("give either --uplink or --nat64-prefix")),
    }
}

/// An RFC 6052 prefix from the command line, or one line saying why not.
fn prefix64(flag: &str, text: &str) -> anyhow::Result<Prefix64> {
    text.trim()
        .parse()
        .map_err(|e| anyhow!("{flag} `{text}`: {e}"))
}

/// An IPv4 address from the command line, or one line saying why not.
fn ipv4_arg(text: &str) -> anyhow::Result<Ipv4Addr> {
    match text.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => Ok(v4),
        Ok(IpAddr::V6(_)) => Err(anyhow!(
            "`{text}` is an IPv6 address; an IPv4 address is needed here"
        )),
        Err(_) => Err(anyhow!("`{text}` is not an IPv4 address")),
    }
}
