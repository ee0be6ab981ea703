//! The embedded default config of `sixgate run` without `--config`, and
//! what it gives up on a host that cannot run all of it.
//!
//! Each part the host cannot run is switched off with one log line that
//! says why; the rest runs.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::config::Config;

/// The default config, as `--print-default-config` prints it.
pub const TEXT: &str = include_str!("default.toml");

/// Port dns64 moves to when it may not bind 53.
const UNPRIVILEGED_DNS_PORT: u16 = 5353;

/// The default config, adapted to this host.
pub fn for_this_host() -> anyhow::Result<Config> {
    let mut config = Config::parse(Path::new("<embedded default config>"), TEXT)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;

    if let Some(dns64) = config.dns64.as_mut() {
        if !root {
            for addr in &mut dns64.listen {
                addr.set_port(UNPRIVILEGED_DNS_PORT);
            }
            tracing::warn!("not root: dns64 listens on port {UNPRIVILEGED_DNS_PORT} instead of 53");
        }
        let ours: Vec<SocketAddr> = dns64.listen.clone();
        match dns64.forwarders_or(Path::new("/etc/resolv.conf")) {
            Ok(found) => {
                // A resolv.conf that already points at us would make a loop.
                let usable: Vec<SocketAddr> = found
                    .into_iter()
                    .filter(|f| !ours.contains(f) && !is_wildcard_match(f, &ours))
                    .collect();
                if usable.is_empty() {
                    tracing::warn!(
                        "dns64 is off: /etc/resolv.conf names no resolver other than sixgate itself to forward to"
                    );
                    config.dns64 = None;
                } else {
                    dns64.forwarders = usable;
                }
            }
            Err(reason) => {
                tracing::warn!("dns64 is off: no resolver to forward to ({reason})");
                config.dns64 = None;
            }
        }
    }

    if config.nat64.is_some() {
        if !root {
            tracing::warn!(
                "nat64 is off: it needs root (CAP_NET_ADMIN) to open a TUN device and add routes"
            );
            config.nat64 = None;
        } else if !Path::new("/dev/net/tun").exists() {
            tracing::warn!("nat64 is off: this host has no /dev/net/tun");
            config.nat64 = None;
        } else if !has_ipv4_default_route() {
            tracing::warn!(
                "nat64: this host has no IPv4 default route, so translated packets reach only directly connected IPv4 networks"
            );
        }
    }
    Ok(config)
}

fn is_wildcard_match(forwarder: &SocketAddr, ours: &[SocketAddr]) -> bool {
    ours.iter().any(|l| {
        l.port() == forwarder.port()
            && l.ip().is_unspecified()
            && matches!(
                (l.ip(), forwarder.ip()),
                (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
            )
    })
}

/// Whether `/proc/net/route` has an IPv4 default route.
fn has_ipv4_default_route() -> bool {
    std::fs::read_to_string("/proc/net/route").is_ok_and(|table| {
        table.lines().skip(1).any(|line| {
            let mut fields = line.split_whitespace();
            fields.nth(1) == Some("00000000") && fields.nth(5) == Some("00000000")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_a_valid_config_with_dns64_and_nat64() {
        let config = Config::parse(Path::new("default"), TEXT).expect("the default parses");
        assert!(config.dns64.is_some() && config.nat64.is_some());
        assert!(config.admin.listen.ip().is_loopback());
    }
}
