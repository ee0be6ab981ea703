//! The NAT64 namespace topology shared by `nat64_e2e.rs`, `nat64_reload.rs`
//! and `nat64_probe.rs` (their helpers are in `common`).
//!
//! ```text
//!  c6 (IPv6 only)              gw: sixgate nat64, TUN            s4 (IPv4 only)
//!  2001:db8:6::2/64  -------  2001:db8:6::1 | 198.51.100.1  -------  198.51.100.2/24
//! ```
//!
//! c6 reaches s4 as `64:ff9b:1::c633:6402` (RFC 6052 under the local-use
//! prefix `64:ff9b:1::/96`, RFC 8215: the documentation addresses used here
//! are not global, and the well-known prefix may not carry them, RFC 6052
//! §3.1).
#![allow(dead_code)] // each test file uses a different subset

use crate::common::{veth, Netns};

pub const C6: &str = "2001:db8:6::2";
pub const GW6: &str = "2001:db8:6::1";
pub const S4: &str = "198.51.100.2";
pub const GW4: &str = "198.51.100.1";
/// s4 as c6 sees it.
pub const S4_V6: &str = "64:ff9b:1::c633:6402";

/// The three hosts, linked and addressed, before sixgate runs on gw.
pub struct Hosts {
    pub gw: Netns,
    pub c6: Netns,
    pub s4: Netns,
}

impl Hosts {
    /// `s4_default_route`: whether s4 routes everything (pool4 included)
    /// through gw.
    pub fn new(tag: &str, s4_default_route: bool) -> Self {
        let gw = Netns::new(&format!("{tag}gw"));
        let c6 = Netns::new(&format!("{tag}c6"));
        let s4 = Netns::new(&format!("{tag}s4"));
        for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            gw.exec(&["sysctl", "-qw", key]);
        }
        // No duplicate address detection on the links about to be made:
        // while gw's link-local address is tentative, it sends no neighbour
        // solicitation, and a reply to a host it has not met yet waits a
        // second or more.
        for ns in [&gw, &c6, &s4] {
            for key in [
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ] {
                ns.exec(&["sysctl", "-qw", key]);
            }
        }
        let (gw4, s4if) = veth(&gw, &s4);
        gw.exec(&["ip", "addr", "add", &format!("{GW4}/24"), "dev", &gw4]);
        s4.exec(&["ip", "addr", "add", &format!("{S4}/24"), "dev", &s4if]);
        if s4_default_route {
            s4.exec(&["ip", "route", "add", "default", "via", GW4]);
        }
        let (gw6, c6if) = veth(&gw, &c6);
        let gw6_addr = format!("{GW6}/64");
        gw.exec(&["ip", "-6", "addr", "add", &gw6_addr, "dev", &gw6, "nodad"]);
        let c6_addr = format!("{C6}/64");
        c6.exec(&["ip", "-6", "addr", "add", &c6_addr, "dev", &c6if, "nodad"]);
        c6.exec(&["ip", "-6", "route", "add", "default", "via", GW6]);
        Self { gw, c6, s4 }
    }
}
