//! The SIIT test topology: an IPv6-only host and an IPv4-only host joined by
//! a translator namespace that runs the real `sixgate`.
//!
//! ```text
//!  h6 (IPv6 only)              gw: sixgate siit, TUN            h4 (IPv4 only)
//!  2001:db8:6::2/64  -------  2001:db8:6::1 | 198.51.100.1  -------  198.51.100.2/24
//!        [optional router r6 with a narrow link on the IPv6 side, for PMTU]
//! ```
//!
//! Addresses as the other side sees them (EAM entries, RFC 7757):
//! - h4 (198.51.100.2) is `2001:db8:46::2` for h6;
//! - h6 (2001:db8:6::2) is `192.0.2.6` for h4;
//! - h6b (2001:db8:8::2, optional) is `192.0.2.8` for h4, and
//!   `64:ff9b:1::c000:208` (its IPv4 form under pool6) for h6: hairpinning.
//!
//! pool6 is `64:ff9b:1::/96` (RFC 8215 local use: it may carry the
//! documentation-range IPv4 addresses, which `64:ff9b::/96` may not, RFC 6052
//! §3.1). The translator's own addresses (sources of the ICMP errors it
//! makes) are `192.0.2.1` and `2001:db8:ff::1`; ICMPv6 errors from IPv6
//! routers without an IPv4 mapping get a source from `192.0.2.128/25`
//! (RFC 6791). Every route into the TUN device is added by sixgate itself
//! (`manage_routes = true`).
#![allow(dead_code)] // each test file uses a different subset

use std::time::Duration;

use crate::common::{unique, veth, Background, Netns, Sixgate, TempDir};

pub const H6: &str = "2001:db8:6::2";
pub const GW6: &str = "2001:db8:6::1";
pub const H4: &str = "198.51.100.2";
pub const GW4: &str = "198.51.100.1";
/// h4 as h6 sees it.
pub const H4_AS_V6: &str = "2001:db8:46::2";
/// h6 as h4 sees it.
pub const H6_AS_V4: &str = "192.0.2.6";
/// A second IPv6-only host, on a link of its own (with `Options::second_v6_host`).
pub const H6B: &str = "2001:db8:8::2";
/// h6b as IPv4 hosts see it; IPv6 hosts may use its pool6 form too.
pub const H6B_AS_V4: &str = "192.0.2.8";
pub const OWN_V4: &str = "192.0.2.1";
pub const OWN_V6: &str = "2001:db8:ff::1";

/// What to vary in the topology.
#[derive(Default, Clone, Copy)]
pub struct Options {
    /// Put a router `r6` between h6 and gw, with a link of this MTU between
    /// r6 and gw (the h6-r6 link stays at 1500).
    pub narrow_v6_link: Option<u32>,
    /// `sixgate run` instead of `sixgate siit`.
    pub via_run: bool,
    /// TUN queues (`queues` in the config); 0 leaves the key out (1 queue).
    pub queues: usize,
    /// Add h6b, a second IPv6-only host (for hairpinning).
    pub second_v6_host: bool,
    /// `offload = false`: one packet per read, no virtio-net header (the
    /// default is on: TCP super-packets, partial checksums).
    pub plain: bool,
}

/// The running topology; everything is torn down on drop. Fields drop in
/// declaration order: sixgate is killed before the namespaces it runs in.
pub struct Topology {
    pub sixgate: Sixgate,
    pub tun: String,
    pub h6: Netns,
    pub r6: Option<Netns>,
    pub h6b: Option<Netns>,
    pub h4: Netns,
    pub gw: Netns,
    pub dir: TempDir,
}

impl Topology {
    pub fn start(tag: &str, options: Options) -> Self {
        let gw = netns(&format!("{tag}gw"));
        let h6 = netns(&format!("{tag}h6"));
        let h4 = netns(&format!("{tag}h4"));
        for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
            gw.exec(&["sysctl", "-qw", key]);
        }

        // IPv4 side.
        let (gw_v4_if, h4_if) = veth(&gw, &h4);
        gw.exec(&["ip", "addr", "add", &format!("{GW4}/24"), "dev", &gw_v4_if]);
        h4.exec(&["ip", "addr", "add", &format!("{H4}/24"), "dev", &h4_if]);
        h4.exec(&["ip", "route", "add", "default", "via", GW4]);

        // IPv6 side, directly or through r6.
        let r6 = match options.narrow_v6_link {
            None => {
                let (gw_if, h6_if) = veth(&gw, &h6);
                add6(&gw, &format!("{GW6}/64"), &gw_if);
                add6(&h6, &format!("{H6}/64"), &h6_if);
                h6.exec(&["ip", "-6", "route", "add", "default", "via", GW6]);
                None
            }
            Some(mtu) => {
                let r6 = netns(&format!("{tag}r6"));
                r6.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
                let (r6_if, h6_if) = veth(&r6, &h6);
                add6(&r6, &format!("{GW6}/64"), &r6_if);
                add6(&h6, &format!("{H6}/64"), &h6_if);
                h6.exec(&["ip", "-6", "route", "add", "default", "via", GW6]);
                let (gw_if, r6_up) = veth(&gw, &r6);
                for (ns, dev) in [(&gw, &gw_if), (&r6, &r6_up)] {
                    ns.exec(&["ip", "link", "set", dev, "mtu", &mtu.to_string()]);
                }
                add6(&gw, "2001:db8:7::1/64", &gw_if);
                add6(&r6, "2001:db8:7::2/64", &r6_up);
                r6.exec(&[
                    "ip",
                    "-6",
                    "route",
                    "add",
                    "default",
                    "via",
                    "2001:db8:7::1",
                ]);
                gw.exec(&[
                    "ip",
                    "-6",
                    "route",
                    "add",
                    "2001:db8:6::/64",
                    "via",
                    "2001:db8:7::2",
                ]);
                Some(r6)
            }
        };

        let h6b = options.second_v6_host.then(|| {
            let h6b = netns(&format!("{tag}h6b"));
            let (gw_if, h6b_if) = veth(&gw, &h6b);
            add6(&gw, "2001:db8:8::1/64", &gw_if);
            add6(&h6b, &format!("{H6B}/64"), &h6b_if);
            h6b.exec(&[
                "ip",
                "-6",
                "route",
                "add",
                "default",
                "via",
                "2001:db8:8::1",
            ]);
            h6b
        });

        let tun = unique("t");
        let dir = TempDir::new("siit");
        let mut text = config_text(&tun);
        if options.queues > 0 {
            text.push_str(&format!("queues = {}\n", options.queues));
        }
        if options.plain {
            text.push_str("offload = false\n");
        }
        let config = dir.write("siit.toml", &text);
        let config = config.to_str().expect("utf-8 temp path").to_owned();
        let command = if options.via_run { "run" } else { "siit" };
        let mut sixgate = Sixgate::start(
            Some(&gw),
            &[command, "--config", &config, "--admin", "127.0.0.1:0"],
            &["admin"],
        );
        sixgate.wait_for_log(
            &format!("siit running on tun {tun}"),
            Duration::from_secs(20),
        );
        Self {
            sixgate,
            tun,
            h6,
            r6,
            h6b,
            h4,
            gw,
            dir,
        }
    }

    /// `GET path` on the admin port (inside gw): (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        admin_get(&self.gw, &self.sixgate, path)
    }

    /// The value of one metric sample, `name{labels}` as printed.
    pub fn metric(&self, sample: &str) -> u64 {
        let (status, body) = self.admin_get("/metrics");
        assert_eq!(status, 200, "{body}");
        metric_value(&body, sample)
    }
}

/// The `[siit]` config of the topology.
pub use crate::common::{eventually, random_file, sha256, text};

pub fn config_text(tun: &str) -> String {
    format!(
        r#"# written by the siit namespace tests
[siit]
tun = "{tun}"
manage_routes = true
pool6 = "64:ff9b:1::/96"
own_ipv4 = "{OWN_V4}"
own_ipv6 = "{OWN_V6}"
rfc6791_v4 = ["192.0.2.128/25"]
eam = [
  {{ ipv4 = "{H4}", ipv6 = "{H4_AS_V6}", route = "ipv6" }},
  {{ ipv4 = "{H6_AS_V4}", ipv6 = "{H6}", route = "ipv4" }},
  {{ ipv4 = "{H6B_AS_V4}", ipv6 = "{H6B}", route = "ipv4" }},
]
"#
    )
}

/// A namespace whose new interfaces skip IPv6 duplicate address detection:
/// otherwise the link-local address of a fresh veth stays tentative for a
/// second, and neighbour discovery (so the first packets) waits for it.
fn netns(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.exec(&[
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0",
    ]);
    ns
}

/// `ip -6 addr add ADDR dev DEV nodad`: usable at once, no duplicate
/// address detection delay.
fn add6(ns: &Netns, addr: &str, dev: &str) {
    ns.exec(&["ip", "-6", "addr", "add", addr, "dev", dev, "nodad"]);
}

/// `GET path` on sixgate's admin port from inside `ns`, with curl.
pub fn admin_get(ns: &Netns, sixgate: &Sixgate, path: &str) -> (u16, String) {
    let url = format!("http://{}{path}", sixgate.admin());
    let out = ns.try_exec(&[
        "curl",
        "-sS",
        "--max-time",
        "5",
        "-w",
        "\n%{http_code}",
        &url,
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

/// The value of `sample` (`name{label="x"}`) in a Prometheus text body; 0
/// when absent would hide a rename, so a missing sample fails the test.
pub fn metric_value(body: &str, sample: &str) -> u64 {
    body.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {sample} in /metrics:\n{body}"))
}

/// Starts `python3 -m http.server` in `ns` on `addr:8080` serving `dir` and
/// waits until it answers from inside `ns`.
pub fn http_server(ns: &Netns, addr: &str, dir: &std::path::Path) -> Background {
    let server = ns.spawn(&[
        "python3",
        "-m",
        "http.server",
        "--bind",
        addr,
        "--directory",
        dir.to_str().expect("utf-8 path"),
        "8080",
    ]);
    let url = format!("http://{}:8080/", bracket(addr));
    assert!(
        eventually(Duration::from_secs(10), || ns
            .try_exec(&[
                "curl",
                "-sS",
                "-g",
                "-o",
                "/dev/null",
                "--max-time",
                "1",
                &url
            ])
            .status
            .success()),
        "the HTTP server in {} did not come up",
        ns.name
    );
    server
}

fn bracket(addr: &str) -> String {
    if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_owned()
    }
}
