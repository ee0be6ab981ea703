//! `sixgate nat64` reloads pool4 and static BIB entries on SIGHUP, with no
//! restart, in network namespaces with real tools.
//!
//! ```text
//!  c6 (IPv6 only)              gw: sixgate nat64, TUN            s4 (IPv4 only)
//!  2001:db8:6::2/64  -------  2001:db8:6::1 | 198.51.100.1  -------  198.51.100.2/24
//! ```
//!
//! The topology of `nat64_support` (c6 reaches s4 as
//! `64:ff9b:1::c633:6402`, s4 routes everything through gw, sixgate adds the
//! routes into its TUN device with `manage_routes = true`).

mod common;
mod nat64_support;

use std::process::Output;
use std::time::Duration;

use common::{
    eventually, sixgate_bin, spawn_logged, text, unique, wait_for_file_line, Netns, Sixgate,
    TempDir,
};
use nat64_support::{Hosts, C6, S4, S4_V6};

const POOL_A: &str = "192.0.2.1";
const POOL_B: &str = "192.0.2.9";

/// The running topology; fields drop in order: sixgate first.
struct Topology {
    sixgate: Sixgate,
    tun: String,
    config: std::path::PathBuf,
    c6: Netns,
    s4: Netns,
    gw: Netns,
    dir: TempDir,
}

impl Topology {
    /// `s4_default_route`: whether s4 routes everything (pool4 included)
    /// through gw.
    fn start(tag: &str, nat64: &str, s4_default_route: bool) -> Self {
        let Hosts { gw, c6, s4 } = Hosts::new(tag, s4_default_route);

        let tun = unique("r");
        let dir = TempDir::new("nat64reload");
        let config_path = dir.write("nat64.toml", &Self::config_text(&tun, nat64));
        let config = config_path.to_str().expect("utf-8 temp path").to_owned();
        let mut sixgate = Sixgate::start(
            Some(&gw),
            &["nat64", "--config", &config, "--admin", "127.0.0.1:0"],
            &["admin"],
        );
        sixgate.wait_for_log(
            &format!("nat64 running on tun {tun}"),
            Duration::from_secs(20),
        );
        Self {
            sixgate,
            tun,
            config: config_path,
            c6,
            s4,
            gw,
            dir,
        }
    }

    fn config_text(tun: &str, nat64: &str) -> String {
        format!(
            "# written by the nat64 reload tests\n[nat64]\ntun = \"{tun}\"\nprefix = \"64:ff9b:1::/96\"\n\
             manage_routes = true\n{nat64}\n"
        )
    }

    /// Writes a new `[nat64]` body, sends SIGHUP and waits for the log line
    /// of that reload (`needle`: what only that reload logs).
    fn reload(&mut self, nat64: &str, needle: &str) {
        std::fs::write(&self.config, Self::config_text(&self.tun, nat64)).unwrap();
        self.sixgate.signal("HUP");
        self.sixgate.wait_for_log(needle, Duration::from_secs(10));
    }

    /// `sixgate nat64 sessions` against the running instance, from gw.
    fn sessions(&self) -> String {
        let admin = self.sixgate.admin().to_string();
        let bin = sixgate_bin();
        self.gw.exec(&[
            bin.to_str().expect("utf-8 path"),
            "nat64",
            "sessions",
            "--admin",
            &admin,
        ])
    }

    fn metric(&self, sample: &str) -> u64 {
        let url = format!("http://{}/metrics", self.sixgate.admin());
        let body = self.gw.exec(&["curl", "-sS", "--max-time", "5", &url]);
        body.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no sample {sample} in /metrics:\n{body}"))
    }

    fn tun_routes(&self) -> String {
        self.gw.exec(&["ip", "route", "show", "dev", &self.tun])
    }

    /// One UDP datagram from c6 to the reporting server on s4, from source
    /// port `port`; returns the IPv4 source (`ADDR:PORT`) s4 saw, retrying
    /// a lost first exchange.
    fn udp_source_seen_by_s4(&self, port: u16) -> String {
        let mut last = String::new();
        let ok = eventually(Duration::from_secs(10), || {
            let out = self.c6.try_exec(&[
                "python3",
                "-c",
                UDP_CLIENT,
                S4_V6,
                "9000",
                &port.to_string(),
            ]);
            last = text(&out);
            out.status.success()
        });
        assert!(ok, "no answer from s4: {last}");
        last.trim().to_owned()
    }

    fn curl_from_s4(&self, addr: &str) -> Output {
        self.s4.try_exec(&[
            "curl",
            "-sS",
            "--max-time",
            "2",
            &format!("http://{addr}/index.html"),
        ])
    }
}

/// A UDP server that answers each datagram with the source address and port
/// it came from.
const UDP_REPORTER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    d, a = s.recvfrom(2048)
    s.sendto(("%s:%d" % a).encode(), a)
"#;

/// Sends one datagram from a fixed source port, prints the answer.
const UDP_CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[3])))
s.settimeout(1)
s.sendto(b"who am i", (sys.argv[1], int(sys.argv[2])))
print(s.recvfrom(2048)[0].decode())
"#;

#[test]
fn sighup_with_a_new_pool4_deletes_the_old_sessions_and_new_flows_leave_from_it() {
    if !common::have_root(
        "sighup_with_a_new_pool4_deletes_the_old_sessions_and_new_flows_leave_from_it",
    ) {
        return;
    }
    let mut t = Topology::start("p", &format!("pool4 = [\"{POOL_A}\"]"), true);
    let slog = t.dir.path().join("udp.log");
    let _server = spawn_logged(&t.s4, &["python3", "-c", UDP_REPORTER, S4, "9000"], &slog);
    wait_for_file_line(&slog, "listening", Duration::from_secs(10));
    let routes = t.tun_routes();
    assert!(routes.contains(POOL_A), "{routes}");
    assert!(!routes.contains(POOL_B), "{routes}");

    // A flow through A.
    let seen = t.udp_source_seen_by_s4(40001);
    assert!(seen.starts_with(&format!("{POOL_A}:")), "{seen}");
    let sessions = t.sessions();
    assert!(
        sessions.contains(&format!("{seen} -> {S4}:9000")),
        "{sessions}"
    );

    // pool4 becomes B only.
    t.reload(
        &format!("pool4 = [\"{POOL_B}\"]"),
        &format!("nat64 reloaded: pool4 {POOL_B} 61001-65535, 0 static"),
    );
    t.sixgate.wait_for_log(
        "sessions of deleted BIB entries freed",
        Duration::from_secs(10),
    );
    let sessions = t.sessions();
    assert!(!sessions.contains(POOL_A), "{sessions}");
    assert!(
        sessions.contains("UDP BIB entries: 0  sessions: 0"),
        "{sessions}"
    );
    assert_eq!(
        t.metric("sixgate_nat64_sessions_purged_total{proto=\"udp\"}"),
        1
    );
    assert_eq!(t.metric("sixgate_nat64_pool4_ports_used{proto=\"udp\"}"), 0);

    // Routes follow: B into the TUN device, A no more.
    let routes = t.tun_routes();
    assert!(routes.contains(POOL_B), "{routes}");
    assert!(!routes.contains(POOL_A), "{routes}");

    // The same client and port, and a new one, now leave from B.
    for port in [40001, 40002] {
        let seen = t.udp_source_seen_by_s4(port);
        assert!(seen.starts_with(&format!("{POOL_B}:")), "{seen}");
    }
    let sessions = t.sessions();
    assert!(
        sessions.contains("UDP BIB entries: 2  sessions: 2"),
        "{sessions}"
    );

    // And back to A: the B sessions go the same way.
    t.reload(
        &format!("pool4 = [\"{POOL_A}\"]"),
        &format!("nat64 reloaded: pool4 {POOL_A} 61001-65535, 0 static"),
    );
    assert!(
        eventually(Duration::from_secs(5), || !t.sessions().contains(POOL_B)),
        "{}",
        t.sessions()
    );
    assert_eq!(
        t.metric("sixgate_nat64_sessions_purged_total{proto=\"udp\"}"),
        3
    );
    let seen = t.udp_source_seen_by_s4(40003);
    assert!(seen.starts_with(&format!("{POOL_A}:")), "{seen}");
    let routes = t.tun_routes();
    assert!(
        routes.contains(POOL_A) && !routes.contains(POOL_B),
        "{routes}"
    );
}

#[test]
fn static_bib_entries_added_by_sighup_let_ipv4_in_and_removed_again_stop_it() {
    if !common::have_root(
        "static_bib_entries_added_by_sighup_let_ipv4_in_and_removed_again_stop_it",
    ) {
        return;
    }
    // Two workers, and two entries on pool4 ports 80 and 82, which belong to
    // different shards ((port >> 1) % 2): whichever shard c6's address hashes
    // to, one entry lives in the other, and the server's replies must be
    // routed there after the reload too.
    let body = format!("workers = 2\npool4 = [\"{POOL_A}\"]\n");
    let mut with_static = body.clone();
    for (port6, port4) in [(8080, 80), (8081, 82)] {
        with_static.push_str(&format!(
            "[[nat64.static_bib]]\nproto = \"tcp\"\nipv6 = \"[{C6}]:{port6}\"\nipv4 = \"{POOL_A}:{port4}\"\n"
        ));
    }
    let mut t = Topology::start("b", &body, true);
    let www = t.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from c6\n").unwrap();
    let mut servers = Vec::new();
    for port6 in ["8080", "8081"] {
        let log = t.dir.path().join(format!("http{port6}.log"));
        servers.push(spawn_logged(
            &t.c6,
            &[
                "python3",
                "-m",
                "http.server",
                "--bind",
                C6,
                "--directory",
                www.to_str().unwrap(),
                port6,
            ],
            &log,
        ));
        wait_for_file_line(&log, "Serving HTTP", Duration::from_secs(10));
    }
    let targets = [format!("{POOL_A}:80"), format!("{POOL_A}:82")];

    // No entries: unsolicited connections are kept out.
    for target in &targets {
        let out = t.curl_from_s4(target);
        assert!(!out.status.success(), "{}", text(&out));
    }
    let refused = t.metric("sixgate_nat64_drops_total{reason=\"no_bib_entry\"}");
    assert!(refused >= 2, "{refused}");

    // Added by SIGHUP: s4 reaches both web servers on c6.
    t.reload(
        &with_static,
        &format!("nat64 reloaded: pool4 {POOL_A} 61001-65535, 2 static BIB entries (2 added"),
    );
    for target in &targets {
        assert!(
            eventually(Duration::from_secs(10), || t.curl_from_s4(target).stdout
                == b"hello from c6\n"),
            "the static BIB entry {target} added by SIGHUP did not let s4 in"
        );
    }
    let sessions = t.sessions();
    for (port6, target) in [8080, 8081].iter().zip(&targets) {
        assert!(
            sessions.contains(&format!(
                "bib tcp [{C6}]:{port6} <-> {target} sessions=1 static"
            )),
            "{sessions}"
        );
    }

    // Removed by SIGHUP: the entries and their sessions go, s4 is kept out
    // again.
    t.reload(
        &body,
        &format!(
            "nat64 reloaded: pool4 {POOL_A} 61001-65535, 0 static BIB entries (0 added, 2 removed"
        ),
    );
    t.sixgate.wait_for_log(
        "sessions of deleted BIB entries freed",
        Duration::from_secs(10),
    );
    let sessions = t.sessions();
    assert!(!sessions.contains("static"), "{sessions}");
    assert!(
        sessions.contains("TCP BIB entries: 0  sessions: 0"),
        "{sessions}"
    );
    assert_eq!(
        t.metric("sixgate_nat64_sessions_purged_total{proto=\"tcp\"}"),
        2
    );
    let before = t.metric("sixgate_nat64_drops_total{reason=\"no_bib_entry\"}");
    for target in &targets {
        let out = t.curl_from_s4(target);
        assert!(!out.status.success(), "{}", text(&out));
    }
    let after = t.metric("sixgate_nat64_drops_total{reason=\"no_bib_entry\"}");
    assert!(after >= before + 2, "{before} -> {after}");
}

#[test]
fn sighup_with_a_new_pool4_replaces_the_masquerade_set() {
    if !common::have_root("sighup_with_a_new_pool4_replaces_the_masquerade_set") {
        return;
    }
    // s4 has no route to pool4: only the masquerade brings replies back.
    let mut t = Topology::start(
        "q",
        &format!("masquerade = true\npool4 = [\"{POOL_A}\"]"),
        false,
    );
    let table = format!("sixgate_nat64_{}", t.tun);
    let rules = t.gw.exec(&["nft", "list", "table", "ip", &table]);
    assert!(rules.contains(POOL_A), "{rules}");
    let out = t.c6.try_exec(&["ping", "-6", "-c", "1", "-W", "2", S4_V6]);
    assert!(out.status.success(), "{}", text(&out));
    t.reload(
        &format!("masquerade = true\npool4 = [\"{POOL_B}\"]"),
        &format!("nat64 reloaded: pool4 {POOL_B} 61001-65535"),
    );
    t.sixgate.wait_for_log(
        "replaced (masquerade of the new pool4)",
        Duration::from_secs(5),
    );
    let rules = t.gw.exec(&["nft", "list", "table", "ip", &table]);
    assert!(rules.contains(POOL_B) && !rules.contains(POOL_A), "{rules}");
    // A new flow leaves from B and is masqueraded on its way to s4.
    let out =
        t.c6.try_exec(&["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", S4_V6]);
    assert!(out.status.success(), "{}", text(&out));
    let sessions = t.sessions();
    assert!(
        sessions.contains(&format!("session icmp [{C6}]")),
        "{sessions}"
    );
    assert!(sessions.contains(&format!(" {POOL_B}:")), "{sessions}");
    assert!(!sessions.contains(POOL_A), "{sessions}");
}
