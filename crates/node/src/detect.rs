//! Does the node have IPv6? The seed asked a cloud metadata service; sixgate
//! asks the kernel: a usable global-scope IPv6 address on the uplink turns
//! the IPv6 rules on. [`Ipv6Source`] is the seam where a metadata source
//! (Azure IMDS, EC2, GCE) would plug in.

use std::net::Ipv6Addr;

use crate::types::IfName;

/// Something that knows the node's global IPv6 addresses on an interface.
pub trait Ipv6Source: Send {
    /// A short name for logs (`interfaces`, `assume`).
    fn name(&self) -> &'static str;
    /// The global IPv6 addresses of `uplink`; empty when it has none.
    fn global_ipv6(&self, uplink: &IfName) -> std::io::Result<Vec<Ipv6Addr>>;
}

/// The kernel's view, from `/proc/net/if_inet6` of the current network namespace.
#[derive(Debug, Default, Clone, Copy)]
pub struct Interfaces;

impl Ipv6Source for Interfaces {
    fn name(&self) -> &'static str {
        "interfaces"
    }

    fn global_ipv6(&self, uplink: &IfName) -> std::io::Result<Vec<Ipv6Addr>> {
        match std::fs::read_to_string("/proc/net/if_inet6") {
            Ok(text) => Ok(global_addresses(&text, uplink.as_str())),
            // No IPv6 in this kernel at all.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(err) => Err(err),
        }
    }
}

/// Scope value of global addresses in `/proc/net/if_inet6` (`IPV6_ADDR_SCOPE_GLOBAL`).
const SCOPE_GLOBAL: u32 = 0x00;
/// `IFA_F_DADFAILED` and `IFA_F_TENTATIVE`: not (yet) usable as a source.
const FLAGS_UNUSABLE: u32 = 0x08 | 0x40;

/// The usable global-scope addresses of `ifname` in the text of
/// `/proc/net/if_inet6` (`address ifindex prefixlen scope flags name`, hex).
/// Unique local addresses (fc00::/7) have global scope: a cloud VNet often
/// gives nodes ULAs, and those count. Lines that do not parse are skipped.
pub fn global_addresses(text: &str, ifname: &str) -> Vec<Ipv6Addr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [addr, _index, _len, scope, flags, name] = fields[..] else {
            continue;
        };
        if name != ifname {
            continue;
        }
        let (Ok(bits), Ok(scope), Ok(flags)) = (
            u128::from_str_radix(addr, 16),
            u32::from_str_radix(scope, 16),
            u32::from_str_radix(flags, 16),
        ) else {
            continue;
        };
        if addr.len() == 32 && scope == SCOPE_GLOBAL && flags & FLAGS_UNUSABLE == 0 {
            out.push(Ipv6Addr::from(bits));
        }
    }
    out
}

/// Every interface name in the text of `/proc/net/dev` (current namespace).
pub fn interface_names(proc_net_dev: &str) -> Vec<String> {
    proc_net_dev
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| name.trim().to_owned())
        .filter(|n| !n.is_empty() && !n.contains(' ') && !n.contains('|'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IF_INET6: &str = "\
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd000000000000000000000000000002 04 40 00 82     eth0
20010db8000000000000000000000005 04 40 00 c0     eth0
20010db8000000000000000000000009 05 40 00 00     eth1
00000000000000000000000000000001 01 80 10 80       lo
garbage line
";

    #[test]
    fn global_addresses_skip_link_local_and_tentative() {
        assert_eq!(
            global_addresses(IF_INET6, "eth0"),
            vec!["fd00::2".parse::<Ipv6Addr>().unwrap()]
        );
        assert_eq!(
            global_addresses(IF_INET6, "eth1"),
            vec!["2001:db8::9".parse::<Ipv6Addr>().unwrap()]
        );
        assert!(global_addresses(IF_INET6, "lo").is_empty());
        assert!(global_addresses(IF_INET6, "eth9").is_empty());
    }

    #[test]
    fn interface_names_come_from_proc_net_dev() {
        let text = "Inter-|   Receive                            |  Transmit\n \
                    face |bytes    packets errs drop fifo frame compressed multicast|bytes\n    \
                    lo:       0       0    0    0    0     0          0         0        0\n  \
                    eth0: 1234 5 0 0 0 0 0 0 0\n";
        assert_eq!(interface_names(text), ["lo", "eth0"]);
    }
}
