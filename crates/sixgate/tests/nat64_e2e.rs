//! Stateful NAT64 end to end, in network namespaces, with real tools.
//!
//! ```text
//!  c6 (IPv6 only)              gw: sixgate nat64, TUN            s4 (IPv4 only)
//!  2001:db8:6::2/64  -------  2001:db8:6::1 | 198.51.100.1  -------  198.51.100.2/24
//! ```
//!
//! c6 reaches s4 as `64:ff9b:1::c633:6402` (RFC 6052 under the local-use
//! prefix `64:ff9b:1::/96`, RFC 8215: the documentation addresses used here
//! are not global, and the well-known prefix may not carry them, RFC 6052
//! §3.1). pool4 is `192.0.2.1`; s4 routes it back through gw. Every route
//! into the TUN device is added by sixgate (`manage_routes = true`).

mod common;
mod nat64_support;

use std::time::{Duration, Instant};

use common::{
    eventually, random_file, sha256, sixgate_bin, spawn_logged, text, unique, wait_for_file_line,
    Netns, Sixgate, TempDir,
};
use nat64_support::{Hosts, C6, GW6, S4, S4_V6};

const POOL4: &str = "192.0.2.1";

/// The running topology; fields drop in order: sixgate first.
struct Topology {
    sixgate: Sixgate,
    tun: String,
    config: std::path::PathBuf,
    config_text: String,
    c6: Netns,
    s4: Netns,
    gw: Netns,
    dir: TempDir,
}

impl Topology {
    /// `extra` is appended to the `[nat64]` section (it may open
    /// subsections). `s4_default_route`: whether s4 routes everything (pool4
    /// included) through gw.
    fn start(tag: &str, pool4: &str, extra: &str, s4_default_route: bool) -> Self {
        let Hosts { gw, c6, s4 } = Hosts::new(tag, s4_default_route);

        let tun = unique("n");
        let dir = TempDir::new("nat64");
        let text = format!(
            "# written by the nat64 namespace tests\n[nat64]\ntun = \"{tun}\"\nprefix = \"64:ff9b:1::/96\"\n\
             pool4 = [{pool4}]\nmanage_routes = true\n{extra}\n"
        );
        let config_path = dir.write("nat64.toml", &text);
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
            config_text: text,
            c6,
            s4,
            gw,
            dir,
        }
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

    /// Turns checksum offload off on gw's links: the kernel then computes
    /// every checksum it left partial before a packet leaves gw, and the
    /// receiving host checks it. (Between namespaces a partial checksum is
    /// otherwise trusted as it is, and a wrong one written by sixgate
    /// would go unnoticed.)
    fn checksums_on_the_wire(&self) {
        let links = self.gw.exec(&["ip", "-o", "link", "show", "type", "veth"]);
        for line in links.lines() {
            let name = line
                .split(':')
                .nth(1)
                .and_then(|n| n.trim().split('@').next());
            let name = name.expect("ip -o link: index: name@peer: ...");
            self.gw.exec(&["ethtool", "-K", name, "tx", "off"]);
        }
    }

    fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.sixgate.admin());
        self.gw.exec(&["curl", "-sS", "--max-time", "5", &url])
    }

    fn metric(&self, sample: &str) -> u64 {
        let body = self.metrics();
        body.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no sample {sample} in /metrics:\n{body}"))
    }
}

/// A TCP echo server (one thread per connection) for the connection tests.
const ECHO_SERVER: &str = r#"
import socket, sys, threading
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(2048)
print("listening", flush=True)
def serve(c):
    with c:
        while True:
            d = c.recv(4096)
            if not d:
                return
            c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Opens N TCP connections concurrently, echoes on each, reports, holds them
/// until a file exists, echoes again, reports.
const CONN_CLIENT: &str = r#"
import concurrent.futures, os, socket, sys, time
host, port, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def connect(i):
    s = socket.socket(socket.AF_INET6)
    s.settimeout(8)
    start = time.monotonic()
    try:
        s.connect((host, port))
        return s
    except OSError as e:
        s.close()
        return "%s(errno=%s) after %.1fs" % (type(e).__name__, e.errno, time.monotonic() - start)
with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
    results = list(pool.map(connect, range(n)))
socks = [r for r in results if not isinstance(r, str)]
errors = [r for r in results if isinstance(r, str)]
def echo(word):
    ok = 0
    for s in socks:
        try:
            s.sendall(word)
            if s.recv(64) == word:
                ok += 1
        except OSError:
            pass
    return ok
print("connected %d echoed %d errors %r" % (len(socks), echo(b"one\n"), errors), flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.05)
print("second echo %d" % echo(b"two\n"), flush=True)
"#;

#[test]
fn curl_fetches_a_page_and_a_12_mb_file_with_a_matching_checksum() {
    if !common::have_root("curl_fetches_a_page_and_a_12_mb_file_with_a_matching_checksum") {
        return;
    }
    let t = Topology::start("h", &format!("\"{POOL4}\""), "offload = false", true);
    let www = t.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from s4\n").unwrap();
    random_file(&www.join("big.bin"), 12 * 1024 * 1024 + 17);
    let _server = spawn_logged(
        &t.s4,
        &[
            "python3",
            "-m",
            "http.server",
            "--bind",
            S4,
            "--directory",
            www.to_str().unwrap(),
            "8080",
        ],
        &t.dir.path().join("http.log"),
    );
    assert!(
        eventually(Duration::from_secs(10), || t
            .s4
            .try_exec(&[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                "1",
                &format!("http://{S4}:8080/")
            ])
            .status
            .success()),
        "the HTTP server on s4 did not come up"
    );
    let url = format!("http://[{S4_V6}]:8080/");
    let page = t.c6.exec(&[
        "curl",
        "-sS",
        "-g",
        "--max-time",
        "10",
        &format!("{url}index.html"),
    ]);
    assert_eq!(page, "hello from s4\n");
    let got = t.dir.path().join("got.bin");
    t.c6.exec(&[
        "curl",
        "-sS",
        "-g",
        "--max-time",
        "60",
        "-o",
        got.to_str().unwrap(),
        &format!("{url}big.bin"),
    ]);
    assert_eq!(sha256(&got), sha256(&www.join("big.bin")));
    // The flows went through the state: TCP sessions were created.
    assert!(t.metric("sixgate_nat64_sessions_created_total{proto=\"tcp\"}") >= 2);
    assert!(t.metric("sixgate_nat64_packets_total{direction=\"4to6\"}") > 8000);
}

#[test]
fn dig_gets_answers_over_udp_and_tcp() {
    if !common::have_root("dig_gets_answers_over_udp_and_tcp") {
        return;
    }
    let t = Topology::start("d", &format!("\"{POOL4}\""), "", true);
    let zone_dir = t.dir.path().join("nsd");
    std::fs::create_dir_all(&zone_dir).unwrap();
    let zd = zone_dir.to_str().unwrap();
    std::fs::write(
        zone_dir.join("example.test.zone"),
        "$ORIGIN example.test.\n$TTL 60\n@ IN SOA ns hostmaster 1 60 60 60 60\n@ IN NS ns\nns IN A 198.51.100.2\n\
         www IN A 203.0.113.80\nbig IN TXT \"one\" \"two\"\n",
    )
    .unwrap();
    let conf = zone_dir.join("nsd.conf");
    std::fs::write(
        &conf,
        format!(
            "server:\n  ip-address: {S4}\n  port: 53\n  server-count: 1\n  username: \"\"\n  chroot: \"\"\n  \
             zonesdir: \"{zd}\"\n  pidfile: \"{zd}/nsd.pid\"\n  database: \"\"\n  zonelistfile: \"{zd}/zone.list\"\n  \
             xfrdfile: \"{zd}/xfrd.state\"\n  xfrdir: \"{zd}\"\n  logfile: \"{zd}/nsd.log\"\n  rrl-ratelimit: 0\n\
             remote-control:\n  control-enable: no\nzone:\n  name: \"example.test\"\n  zonefile: \"example.test.zone\"\n"
        ),
    )
    .unwrap();
    let _nsd = spawn_logged(
        &t.s4,
        &["nsd", "-d", "-c", conf.to_str().unwrap()],
        &zone_dir.join("stdout"),
    );
    assert!(
        eventually(Duration::from_secs(10), || t
            .s4
            .try_exec(&[
                "dig",
                "+short",
                "+time=1",
                "+tries=1",
                &format!("@{S4}"),
                "www.example.test"
            ])
            .stdout
            .starts_with(b"203.0.113.80")),
        "nsd on s4 did not come up: {}",
        std::fs::read_to_string(zone_dir.join("nsd.log")).unwrap_or_default()
    );
    let server = format!("@{S4_V6}");
    for transport in ["+notcp", "+tcp"] {
        let out = t.c6.exec(&[
            "dig",
            "+short",
            "+time=2",
            "+tries=2",
            transport,
            &server,
            "www.example.test",
            "A",
        ]);
        assert_eq!(out.trim(), "203.0.113.80", "{transport}");
    }
    let sessions = t.sessions();
    assert!(
        sessions.contains(&format!("session udp [{C6}]:")),
        "{sessions}"
    );
    assert!(sessions.contains(&format!("-> {S4}:53")), "{sessions}");
    assert!(sessions.contains("session tcp"), "{sessions}");
}

#[test]
fn ping_and_tracepath_cross_the_translator() {
    if !common::have_root("ping_and_tracepath_cross_the_translator") {
        return;
    }
    let t = Topology::start("p", &format!("\"{POOL4}\""), "", true);
    let out =
        t.c6.try_exec(&["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", S4_V6]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("3 received"), "{}", text(&out));
    // The identifier was mapped: one ICMP session, listed.
    let sessions = t.sessions();
    assert!(
        sessions.contains(&format!("session icmp [{C6}]:")),
        "{sessions}"
    );
    let out = t.c6.try_exec(&["tracepath", "-6", "-n", "-m", "6", S4_V6]);
    let trace = text(&out);
    assert!(trace.contains("reached"), "{trace}");
    assert!(trace.contains(GW6), "the kernel hop of gw: {trace}");
    // The translator's own hop answers from its address under the prefix.
    assert!(
        trace.contains("64:ff9b:1::c000:201"),
        "the translator hop: {trace}"
    );
}

#[test]
fn five_hundred_concurrent_tcp_connections_all_work_and_are_all_listed() {
    if !common::have_root("five_hundred_concurrent_tcp_connections_all_work_and_are_all_listed") {
        return;
    }
    let t = Topology::start("c", &format!("\"{POOL4}\""), "", true);
    let server = t.dir.write("echo.py", ECHO_SERVER);
    let client = t.dir.write("client.py", CONN_CLIENT);
    let slog = t.dir.path().join("server.log");
    let _server = spawn_logged(
        &t.s4,
        &["python3", server.to_str().unwrap(), S4, "7000"],
        &slog,
    );
    wait_for_file_line(&slog, "listening", Duration::from_secs(10));
    let go = t.dir.path().join("go");
    let clog = t.dir.path().join("client.log");
    let _client = spawn_logged(
        &t.c6,
        &[
            "python3",
            client.to_str().unwrap(),
            S4_V6,
            "7000",
            "500",
            go.to_str().unwrap(),
        ],
        &clog,
    );
    let log = wait_for_file_line(&clog, "connected", Duration::from_secs(60));
    assert!(log.contains("connected 500 echoed 500 errors []"), "{log}");
    let sessions = t.sessions();
    let listed = sessions
        .lines()
        .filter(|l| l.contains("session tcp") && l.contains(&format!("-> {S4}:7000 ESTABLISHED")))
        .count();
    assert_eq!(listed, 500, "{sessions}");
    assert!(
        sessions.contains("TCP BIB entries: 500  sessions: 500"),
        "{sessions}"
    );
    std::fs::write(&go, "").unwrap();
    let log = wait_for_file_line(&clog, "second echo", Duration::from_secs(30));
    assert!(log.contains("second echo 500"), "{log}");
    assert_eq!(t.metric("sixgate_nat64_sessions{proto=\"tcp\"}"), 500);
}

#[test]
fn sessions_expire_on_time_under_short_timeouts() {
    if !common::have_root("sessions_expire_on_time_under_short_timeouts") {
        return;
    }
    let t = Topology::start(
        "e",
        &format!("\"{POOL4}\""),
        "allow_short_timeouts = true\n[nat64.timeouts]\nicmp = \"2s\"\nudp = \"3s\"\n",
        true,
    );
    let out = t.c6.try_exec(&["ping", "-6", "-c", "1", "-W", "2", S4_V6]);
    assert!(out.status.success(), "{}", text(&out));
    // A UDP flow too (nobody listens; the session exists all the same).
    t.c6.exec(&[
        "sh",
        "-c",
        &format!("echo x | nc -u -w1 {S4_V6} 9999 || true"),
    ]);
    let created = Instant::now();
    let s = t.sessions();
    assert!(
        s.contains("session icmp") && s.contains("session udp"),
        "{s}"
    );
    // Still there before the timeout...
    std::thread::sleep(Duration::from_millis(1000));
    assert!(t.sessions().contains("session udp"), "UDP gone too early");
    // ...gone after it (plus the one-second rounding and the timer tick).
    assert!(
        eventually(Duration::from_secs(8), || !t
            .sessions()
            .contains("session icmp")),
        "the ICMP session did not expire"
    );
    assert!(
        eventually(Duration::from_secs(8), || !t
            .sessions()
            .contains("session udp")),
        "the UDP session did not expire"
    );
    let took = created.elapsed();
    assert!(took >= Duration::from_secs(2), "expired after {took:?}");
    assert!(took < Duration::from_secs(7), "expired after {took:?}");
    assert_eq!(
        t.metric("sixgate_nat64_sessions_expired_total{proto=\"icmp\"}"),
        1
    );
    assert_eq!(
        t.metric("sixgate_nat64_sessions_expired_total{proto=\"udp\"}"),
        1
    );
    assert_eq!(t.metric("sixgate_nat64_pool4_ports_used{proto=\"udp\"}"), 0);
}

#[test]
fn a_pool_of_10_ports_refuses_the_11th_flow_and_keeps_the_first_10() {
    if !common::have_root("a_pool_of_10_ports_refuses_the_11th_flow_and_keeps_the_first_10") {
        return;
    }
    let t = Topology::start(
        "l",
        &format!("\"{POOL4} tcp 2000-2009\", \"{POOL4} udp\", \"{POOL4} icmp\""),
        "",
        true,
    );
    let server = t.dir.write("echo.py", ECHO_SERVER);
    let client = t.dir.write("client.py", CONN_CLIENT);
    let slog = t.dir.path().join("server.log");
    let _server = spawn_logged(
        &t.s4,
        &["python3", server.to_str().unwrap(), S4, "7000"],
        &slog,
    );
    wait_for_file_line(&slog, "listening", Duration::from_secs(10));
    let go = t.dir.path().join("go");
    let clog = t.dir.path().join("client.log");
    let _client = spawn_logged(
        &t.c6,
        &[
            "python3",
            client.to_str().unwrap(),
            S4_V6,
            "7000",
            "11",
            go.to_str().unwrap(),
        ],
        &clog,
    );
    let log = wait_for_file_line(&clog, "connected", Duration::from_secs(30));
    assert!(log.contains("connected 10 echoed 10"), "{log}");
    // The 11th is refused with an error, not left to time out.
    assert!(
        log.contains("errno=113"),
        "EHOSTUNREACH from the ICMPv6 error: {log}"
    );
    assert!(!log.contains("timed out"), "{log}");
    assert!(t.metric("sixgate_nat64_drops_total{reason=\"pool4_exhausted\"}") >= 1);
    assert_eq!(
        t.metric("sixgate_nat64_pool4_ports_used{proto=\"tcp\"}"),
        10
    );
    std::fs::write(&go, "").unwrap();
    let log = wait_for_file_line(&clog, "second echo", Duration::from_secs(30));
    assert!(
        log.contains("second echo 10"),
        "the first ten keep working: {log}"
    );
}

#[test]
fn unsolicited_ipv4_is_kept_out_unless_a_static_bib_entry_lets_it_in() {
    if !common::have_root("unsolicited_ipv4_is_kept_out_unless_a_static_bib_entry_lets_it_in") {
        return;
    }
    let t = Topology::start(
        "u",
        &format!("\"{POOL4}\""),
        &format!("[[nat64.static_bib]]\nproto = \"tcp\"\nipv6 = \"[{C6}]:8080\"\nipv4 = \"{POOL4}:80\"\n"),
        true,
    );
    let www = t.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from c6\n").unwrap();
    let _server = spawn_logged(
        &t.c6,
        &[
            "python3",
            "-m",
            "http.server",
            "--bind",
            C6,
            "--directory",
            www.to_str().unwrap(),
            "8080",
        ],
        &t.dir.path().join("http.log"),
    );
    // Unsolicited: TCP and UDP toward pool4 ports nobody holds.
    let out = t.s4.try_exec(&[
        "curl",
        "-sS",
        "--max-time",
        "2",
        &format!("http://{POOL4}:61234/"),
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    t.s4.exec(&[
        "sh",
        "-c",
        &format!("echo x | nc -u -w1 {POOL4} 61235 || true"),
    ]);
    assert!(t.metric("sixgate_nat64_drops_total{reason=\"no_bib_entry\"}") >= 2);
    assert_eq!(t.metric("sixgate_nat64_sessions{proto=\"tcp\"}"), 0);
    assert_eq!(t.metric("sixgate_nat64_sessions{proto=\"udp\"}"), 0);
    // The static entry lets an IPv4 client reach the IPv6 server.
    assert!(
        eventually(Duration::from_secs(10), || t
            .s4
            .try_exec(&[
                "curl",
                "-sS",
                "--max-time",
                "2",
                &format!("http://{POOL4}:80/index.html")
            ])
            .stdout
            == b"hello from c6\n"),
        "the static BIB entry did not let s4 in"
    );
    let sessions = t.sessions();
    assert!(
        sessions.contains(&format!("bib tcp [{C6}]:8080 <-> {POOL4}:80")),
        "{sessions}"
    );
    assert!(sessions.contains("static"), "{sessions}");
}

#[test]
fn masquerade_reaches_a_server_that_has_no_route_to_pool4_and_is_removed_at_exit() {
    if !common::have_root(
        "masquerade_reaches_a_server_that_has_no_route_to_pool4_and_is_removed_at_exit",
    ) {
        return;
    }
    let mut t = Topology::start("m", &format!("\"{POOL4}\""), "masquerade = true", false);
    let table = format!("sixgate_nat64_{}", t.tun);
    let tables = t.gw.exec(&["nft", "list", "tables"]);
    assert!(tables.contains(&table), "{tables}");
    let out =
        t.c6.try_exec(&["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", S4_V6]);
    assert!(out.status.success(), "{}", text(&out));
    // Routes and table go away on SIGTERM.
    let routes = t.gw.exec(&["ip", "route", "show", "dev", &t.tun]);
    assert!(routes.contains(POOL4), "{routes}");
    t.sixgate.signal("TERM");
    assert_eq!(t.sixgate.wait_exit(Duration::from_secs(10)), Some(0));
    let tables = t.gw.exec(&["nft", "list", "tables"]);
    assert!(!tables.contains(&table), "{tables}");
    let links = t.gw.exec(&["ip", "link", "show"]);
    assert!(!links.contains(&t.tun), "{links}");
    let routes6 = t.gw.exec(&["ip", "-6", "route", "show"]);
    assert!(!routes6.contains("64:ff9b:1::"), "{routes6}");
}

#[test]
fn hairpinning_joins_two_ipv6_hosts_through_a_pool4_address() {
    if !common::have_root("hairpinning_joins_two_ipv6_hosts_through_a_pool4_address") {
        return;
    }
    // A second IPv6 host (an address of its own on c6's link) serves HTTP,
    // published at 192.0.2.1:80 by a static BIB entry. c6 reaches it at
    // that pool4 address under the prefix: 6->4, then straight back 4->6.
    const WEB6: &str = "2001:db8:6::3";
    let t = Topology::start(
        "r",
        &format!("\"{POOL4}\""),
        &format!("[[nat64.static_bib]]\nproto = \"tcp\"\nipv6 = \"[{WEB6}]:8080\"\nipv4 = \"{POOL4}:80\"\n"),
        true,
    );
    let dev = t.c6.exec(&[
        "sh",
        "-c",
        "ip -o -6 addr show scope global | awk '{print $2; exit}'",
    ]);
    t.c6.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        &format!("{WEB6}/64"),
        "dev",
        dev.trim(),
        "nodad",
    ]);
    let www = t.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello through the hairpin\n").unwrap();
    let _server = spawn_logged(
        &t.c6,
        &[
            "python3",
            "-m",
            "http.server",
            "--bind",
            WEB6,
            "--directory",
            www.to_str().unwrap(),
            "8080",
        ],
        &t.dir.path().join("http.log"),
    );
    let url = "http://[64:ff9b:1::c000:201]:80/index.html";
    assert!(
        eventually(Duration::from_secs(10), || t
            .c6
            .try_exec(&[
                "curl",
                "-sS",
                "-g",
                "--max-time",
                "2",
                "--interface",
                C6,
                url
            ])
            .stdout
            == b"hello through the hairpin\n"),
        "no answer through the hairpin"
    );
    assert!(t.metric("sixgate_nat64_packets_total{direction=\"hairpin\"}") >= 3);
    // Two TCP sessions: the client's (to T:80) and the server's (from T:t).
    let sessions = t.sessions();
    assert!(
        sessions.contains(&format!("session tcp [{C6}]:")),
        "{sessions}"
    );
    assert!(
        sessions.contains(&format!("session tcp [{WEB6}]:8080 {POOL4}:80 -> {POOL4}:")),
        "{sessions}"
    );
}

#[test]
fn sighup_applies_new_timeouts_to_running_sessions() {
    if !common::have_root("sighup_applies_new_timeouts_to_running_sessions") {
        return;
    }
    let mut t = Topology::start(
        "s",
        &format!("\"{POOL4}\""),
        "allow_short_timeouts = true\n[nat64.timeouts]\nicmp = \"30s\"\n",
        true,
    );
    let out = t.c6.try_exec(&["ping", "-6", "-c", "1", "-W", "2", S4_V6]);
    assert!(out.status.success(), "{}", text(&out));
    let s = t.sessions();
    assert!(s.contains("session icmp"), "{s}");
    // 30 s from the ping, rounded up to whole seconds.
    assert!(
        ["expires_in=29s", "expires_in=30s", "expires_in=31s"]
            .iter()
            .any(|e| s.contains(e)),
        "{s}"
    );
    let shorter = t.config_text.replace("icmp = \"30s\"", "icmp = \"1s\"");
    std::fs::write(&t.config, shorter).unwrap();
    t.sixgate.signal("HUP");
    t.sixgate
        .wait_for_log("timeouts and limits reloaded", Duration::from_secs(10));
    assert!(
        eventually(Duration::from_secs(5), || !t
            .sessions()
            .contains("session icmp")),
        "the ICMP session kept its old timeout"
    );
}

#[test]
fn two_workers_on_two_queues_carry_every_flow_and_list_every_session() {
    if !common::have_root("two_workers_on_two_queues_carry_every_flow_and_list_every_session") {
        return;
    }
    let t = Topology::start("w", &format!("\"{POOL4}\""), "workers = 2", true);
    let server = t.dir.write("echo.py", ECHO_SERVER);
    let client = t.dir.write("client.py", CONN_CLIENT);
    let slog = t.dir.path().join("server.log");
    let _server = spawn_logged(
        &t.s4,
        &["python3", server.to_str().unwrap(), S4, "7000"],
        &slog,
    );
    wait_for_file_line(&slog, "listening", Duration::from_secs(10));
    let go = t.dir.path().join("go");
    let clog = t.dir.path().join("client.log");
    let _client = spawn_logged(
        &t.c6,
        &[
            "python3",
            client.to_str().unwrap(),
            S4_V6,
            "7000",
            "200",
            go.to_str().unwrap(),
        ],
        &clog,
    );
    let log = wait_for_file_line(&clog, "connected", Duration::from_secs(60));
    assert!(log.contains("connected 200 echoed 200 errors []"), "{log}");
    let sessions = t.sessions();
    let listed = sessions
        .lines()
        .filter(|l| l.contains(&format!("-> {S4}:7000 ESTABLISHED")))
        .count();
    assert_eq!(listed, 200, "{sessions}");
    std::fs::write(&go, "").unwrap();
    let log = wait_for_file_line(&clog, "second echo", Duration::from_secs(30));
    assert!(log.contains("second echo 200"), "{log}");
    let out =
        t.c6.try_exec(&["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", S4_V6]);
    assert!(out.status.success(), "{}", text(&out));
    // Hosts are spread over the shards: pings from 16 source addresses all
    // get through, and their identifiers come from both shards' halves of
    // pool4 (each shard owns the ports whose (port >> 1) % 2 is its index).
    let dev = t.c6.exec(&[
        "sh",
        "-c",
        "ip -o -6 addr show scope global | awk '{print $2; exit}'",
    ]);
    let addrs: Vec<String> = (0..16).map(|i| format!("2001:db8:6::1{i:02x}")).collect();
    for addr in &addrs {
        t.c6.exec(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("{addr}/64"),
            "dev",
            dev.trim(),
            "nodad",
        ]);
    }
    // An address is usable at once, but the kernel joins its solicited-node
    // group a moment later: until then gw's neighbour solicitation for it
    // goes unheard and the first reply is lost. Wait for the groups.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let groups = t.c6.exec(&["ip", "-6", "maddr", "show", "dev", dev.trim()]);
        let joined = (0..16).all(|i| groups.contains(&format!("ff02::1:ff00:1{i:02x}")));
        if joined {
            break;
        }
        assert!(Instant::now() < deadline, "solicited-node groups: {groups}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for addr in &addrs {
        let out =
            t.c6.try_exec(&["ping", "-6", "-c", "1", "-W", "2", "-I", addr, S4_V6]);
        assert!(out.status.success(), "from {addr}: {}", text(&out));
    }
    let sessions = t.sessions();
    let ids: Vec<u16> = sessions
        .lines()
        .filter(|l| l.starts_with("  session icmp"))
        .filter_map(|l| {
            l.split_whitespace()
                .nth(3)?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(ids.len() >= 16, "{sessions}");
    assert!(
        ids.iter().any(|p| (p >> 1) % 2 == 0) && ids.iter().any(|p| (p >> 1) % 2 == 1),
        "{ids:?}"
    );
    let detail = t.gw.exec(&["ip", "-d", "link", "show", &t.tun]);
    assert!(detail.contains("multi_queue"), "{detail}");
}

/// A UDP echo server.
const UDP_ECHO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
"#;

/// Sends datagrams of the given sizes and checks each comes back intact.
const UDP_CLIENT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(3)
ok = []
for size in map(int, sys.argv[3:]):
    data = bytes((i * 7 + size) % 256 for i in range(size))
    good = False
    for attempt in range(3):
        s.sendto(data, (sys.argv[1], int(sys.argv[2])))
        try:
            if s.recvfrom(65535)[0] == data:
                good = True
                break
        except socket.timeout:
            pass
    ok.append("%d:%s" % (size, "ok" if good else "LOST"))
print(" ".join(ok))
"#;

#[test]
fn fragmented_udp_datagrams_cross_both_ways() {
    if !common::have_root("fragmented_udp_datagrams_cross_both_ways") {
        return;
    }
    for (tag, extra) in [("f", ""), ("g", "workers = 2")] {
        let t = Topology::start(tag, &format!("\"{POOL4}\""), extra, true);
        let server = t.dir.write("udp_echo.py", UDP_ECHO);
        let client = t.dir.write("udp_client.py", UDP_CLIENT);
        let slog = t.dir.path().join("server.log");
        let _server = spawn_logged(
            &t.s4,
            &["python3", server.to_str().unwrap(), S4, "9000"],
            &slog,
        );
        wait_for_file_line(&slog, "listening", Duration::from_secs(10));
        let out = t.c6.exec(&[
            "python3",
            client.to_str().unwrap(),
            S4_V6,
            "9000",
            "100",
            "3000",
            "8000",
        ]);
        assert_eq!(
            out.trim(),
            "100:ok 3000:ok 8000:ok",
            "{extra:?}\n{}\n{}\nserver: {}",
            t.sessions(),
            t.metrics()
                .lines()
                .filter(|l| l.starts_with("sixgate_nat64_") && !l.ends_with(" 0"))
                .collect::<Vec<_>>()
                .join("\n"),
            std::fs::read_to_string(&slog).unwrap_or_default()
        );
        assert_eq!(
            t.metric("sixgate_nat64_drops_total{reason=\"fragment\"}"),
            0,
            "{extra:?}"
        );
    }
}

#[test]
fn offloads_carry_tcp_super_packets_udp_and_icmp() {
    if !common::have_root("offloads_carry_tcp_super_packets_udp_and_icmp") {
        return;
    }
    let t = Topology::start("o", &format!("\"{POOL4}\""), "offload = true", true);
    let www = t.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    random_file(&www.join("big.bin"), 12 * 1024 * 1024 + 5);
    let _server = spawn_logged(
        &t.s4,
        &[
            "python3",
            "-m",
            "http.server",
            "--bind",
            S4,
            "--directory",
            www.to_str().unwrap(),
            "8080",
        ],
        &t.dir.path().join("http.log"),
    );
    assert!(
        eventually(Duration::from_secs(10), || t
            .s4
            .try_exec(&[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                "1",
                &format!("http://{S4}:8080/")
            ])
            .status
            .success()),
        "the HTTP server on s4 did not come up"
    );
    let got = t.dir.path().join("got.bin");
    t.c6.exec(&[
        "curl",
        "-sS",
        "-g",
        "--max-time",
        "60",
        "-o",
        got.to_str().unwrap(),
        &format!("http://[{S4_V6}]:8080/big.bin"),
    ]);
    assert_eq!(sha256(&got), sha256(&www.join("big.bin")));
    assert!(
        t.metric("sixgate_nat64_gso_packets_total") > 0,
        "no super-packet went through whole"
    );
    assert_eq!(
        t.metric("sixgate_nat64_tun_errors_total{op=\"vnet_header\"}"),
        0
    );
    let out =
        t.c6.try_exec(&["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", S4_V6]);
    assert!(out.status.success(), "{}", text(&out));
    let server = t.dir.write("udp_echo.py", UDP_ECHO);
    let client = t.dir.write("udp_client.py", UDP_CLIENT);
    let slog = t.dir.path().join("server.log");
    let _udp = spawn_logged(
        &t.s4,
        &["python3", server.to_str().unwrap(), S4, "9000"],
        &slog,
    );
    wait_for_file_line(&slog, "listening", Duration::from_secs(10));
    let out = t.c6.exec(&[
        "python3",
        client.to_str().unwrap(),
        S4_V6,
        "9000",
        "100",
        "3000",
    ]);
    assert_eq!(out.trim(), "100:ok 3000:ok");
}

/// Receives `count` datagrams of `size` bytes (a sequence number and a
/// pattern it decides), then sends them all back to the sender in
/// UDP_SEGMENT sends of 40. Prints what arrived intact.
const UDP_GSO_SERVER: &str = r#"
import socket, struct, sys
UDP_SEGMENT = 103
addr, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def body(seq):
    return struct.pack("!I", seq) + bytes((seq * 13 + i) % 256 for i in range(size - 4))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((addr, port))
s.settimeout(10)
print("listening", flush=True)
got, bad, peer = set(), 0, None
try:
    while len(got) < count:
        d, peer = s.recvfrom(65535)
        seq = struct.unpack("!I", d[:4])[0]
        if d == body(seq):
            got.add(seq)
        else:
            bad += 1
except socket.timeout:
    pass
print("received %d bad %d" % (len(got), bad), flush=True)
s.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, size)
for start in range(0, count, 40):
    s.sendto(b"".join(body(q) for q in range(start, min(start + 40, count))), peer)
"#;

/// The other end of UDP_GSO_SERVER, over IPv6: sends the datagrams 40 at a
/// time with UDP_SEGMENT (`segment`) or one by one as fast as it can
/// (`single`), then waits for them all to come back.
const UDP_COUNTED_CLIENT: &str = r#"
import socket, struct, sys
UDP_SEGMENT = 103
addr, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
segment = sys.argv[5] == "segment"
def body(seq):
    return struct.pack("!I", seq) + bytes((seq * 13 + i) % 256 for i in range(size - 4))
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.settimeout(10)
if segment:
    s.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, size)
    for start in range(0, count, 40):
        s.sendto(b"".join(body(q) for q in range(start, min(start + 40, count))), (addr, port))
else:
    for seq in range(count):
        s.sendto(body(seq), (addr, port))
got, bad = set(), 0
try:
    while len(got) < count:
        d = s.recv(65535)
        seq = struct.unpack("!I", d[:4])[0]
        if d == body(seq):
            got.add(seq)
        else:
            bad += 1
except socket.timeout:
    pass
print("back %d bad %d" % (len(got), bad), flush=True)
"#;

impl Topology {
    /// `count` datagrams of `size` bytes from c6 to s4 and back (see
    /// UDP_GSO_SERVER and UDP_COUNTED_CLIENT, `how` = `segment` or
    /// `single`): what the server and the client say arrived, and the
    /// non-zero sixgate counters for the failure messages.
    fn udp_round_trip(
        &self,
        port: u16,
        count: usize,
        size: usize,
        how: &str,
    ) -> (String, String, String) {
        let server = self.dir.write("gso_server.py", UDP_GSO_SERVER);
        let client = self.dir.write("counted_client.py", UDP_COUNTED_CLIENT);
        let slog = self.dir.path().join(format!("server-{port}.log"));
        let (port, count, size) = (port.to_string(), count.to_string(), size.to_string());
        let _server = spawn_logged(
            &self.s4,
            &[
                "python3",
                server.to_str().unwrap(),
                S4,
                &port,
                &count,
                &size,
            ],
            &slog,
        );
        wait_for_file_line(&slog, "listening", Duration::from_secs(10));
        let back = self.c6.exec(&[
            "python3",
            client.to_str().unwrap(),
            S4_V6,
            &port,
            &count,
            &size,
            how,
        ]);
        let received = wait_for_file_line(&slog, "received", Duration::from_secs(15));
        let counters = self
            .metrics()
            .lines()
            .filter(|l| l.starts_with("sixgate_nat64_") && !l.ends_with(" 0"))
            .collect::<Vec<_>>()
            .join("\n");
        (received, back, counters)
    }
}

#[test]
fn udp_super_packets_are_cut_translated_and_joined_again_both_ways() {
    if !common::have_root("udp_super_packets_are_cut_translated_and_joined_again_both_ways") {
        return;
    }
    let t = Topology::start("u", &format!("\"{POOL4}\""), "offload = true", true);
    t.checksums_on_the_wire();
    // Senders on both ends hand their kernels 40 datagrams at a time
    // (UDP_SEGMENT): the super-packets reach the TUN device whole, sixgate
    // cuts each into datagrams, translates them and joins them again.
    let (received, back, counters) = t.udp_round_trip(9100, 200, 200, "segment");
    assert!(
        received.contains("received 200 bad 0"),
        "{received}\n{counters}"
    );
    assert_eq!(back.trim(), "back 200 bad 0", "{counters}");
    // Both directions were read as super-packets (10 sends in all) and
    // written as super-packets.
    assert!(
        t.metric("sixgate_nat64_udp_gso_read_total") >= 2,
        "{counters}"
    );
    assert!(
        t.metric("sixgate_nat64_udp_coalesced_total") >= 2 * 40,
        "{counters}"
    );
    assert_eq!(
        t.metric("sixgate_nat64_tun_errors_total{op=\"vnet_header\"}"),
        0
    );
    assert_eq!(t.metric("sixgate_nat64_tun_errors_total{op=\"write\"}"), 0);
}

#[test]
fn a_burst_of_single_datagrams_all_arrive_intact() {
    if !common::have_root("a_burst_of_single_datagrams_all_arrive_intact") {
        return;
    }
    let t = Topology::start("b", &format!("\"{POOL4}\""), "offload = true", true);
    t.checksums_on_the_wire();
    let (received, back, counters) = t.udp_round_trip(9200, 300, 120, "single");
    assert!(
        received.contains("received 300 bad 0"),
        "{received}\n{counters}"
    );
    assert_eq!(back.trim(), "back 300 bad 0", "{counters}");
    assert_eq!(t.metric("sixgate_nat64_tun_errors_total{op=\"write\"}"), 0);
}

/// Sends one UDP datagram as hand-made fragments, the last fragment first,
/// through a raw socket (`client 4|6 SRC DST DPORT SIZE`), and waits for
/// its echo on a UDP socket bound to the datagram's source port; or echoes
/// UDP over IPv6 (`server6 ADDR PORT`).
const REVERSED_FRAGMENTS: &str = r#"
import socket, struct, sys

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def udp(src, dst, sport, dport, data, v6):
    length = 8 + len(data)
    hdr = struct.pack("!HHHH", sport, dport, length, 0)
    if v6:
        pseudo = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                  + struct.pack("!I3xB", length, 17))
    else:
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!xBH", 17, length)
    c = csum(pseudo + hdr + data) or 0xffff
    return struct.pack("!HHHH", sport, dport, length, c) + data

def fragments(src, dst, upper, size, ident, v6):
    out = []
    n = (len(upper) + size - 1) // size
    for i in range(n):
        chunk = upper[i * size:(i + 1) * size]
        more = 1 if i + 1 < n else 0
        units = i * size // 8
        if v6:
            fh = struct.pack("!BBHI", 17, 0, (units << 3) | more, ident)
            ip = (struct.pack("!IHBB", 6 << 28, len(fh) + len(chunk), 44, 64)
                  + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst))
            out.append(ip + fh + chunk)
        else:
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(chunk), ident & 0xffff,
                             (more << 13) | units, 64, 17, 0,
                             socket.inet_aton(src), socket.inet_aton(dst))
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            out.append(ip + chunk)
    return out

if sys.argv[1] == "server6":
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind((sys.argv[2], int(sys.argv[3])))
    print("listening", flush=True)
    while True:
        d, a = s.recvfrom(65535)
        s.sendto(d, a)

v6 = sys.argv[2] == "6"
src, dst, dport, size = sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
family = socket.AF_INET6 if v6 else socket.AF_INET
rx = socket.socket(family, socket.SOCK_DGRAM)
rx.bind((src, 0))
rx.settimeout(3)
sport = rx.getsockname()[1]
raw = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
data = bytes((i * 11 + 5) % 256 for i in range(size))
result = "LOST"
for attempt in range(3):
    ident = 0x5e00 + attempt
    frags = fragments(src, dst, udp(src, dst, sport, dport, data, v6), 1000, ident, v6)
    for f in reversed(frags):
        raw.sendto(f, (dst, 0))
    try:
        got, _ = rx.recvfrom(65535)
        result = "ok" if got == data else "CORRUPT %d bytes" % len(got)
        break
    except socket.timeout:
        pass
print("fragments %d echo %s" % (len(frags), result), flush=True)
"#;

#[test]
fn reversed_ipv6_fragments_from_c6_reach_s4_and_the_echo_comes_back() {
    if !common::have_root("reversed_ipv6_fragments_from_c6_reach_s4_and_the_echo_comes_back") {
        return;
    }
    for (tag, workers) in [("r", ""), ("v", "workers = 2")] {
        let t = Topology::start(tag, &format!("\"{POOL4}\""), workers, true);
        let server = t.dir.write("udp_echo.py", UDP_ECHO);
        let script = t.dir.write("reversed.py", REVERSED_FRAGMENTS);
        let slog = t.dir.path().join("server.log");
        let _server = spawn_logged(
            &t.s4,
            &["python3", server.to_str().unwrap(), S4, "9000"],
            &slog,
        );
        wait_for_file_line(&slog, "listening", Duration::from_secs(10));
        let out = t.c6.exec(&[
            "python3",
            script.to_str().unwrap(),
            "client",
            "6",
            C6,
            S4_V6,
            "9000",
            "2500",
        ]);
        assert_eq!(
            out.trim(),
            "fragments 3 echo ok",
            "{workers:?}\n{}",
            t.metrics()
        );
        // The two later fragments came first and waited for the first.
        assert!(
            t.metric("sixgate_nat64_packets_total{direction=\"held\"}") >= 2,
            "{workers:?}"
        );
        for reason in ["fragment", "fragment_timeout", "fragment_queue_full"] {
            let sample = format!("sixgate_nat64_drops_total{{reason=\"{reason}\"}}");
            assert_eq!(t.metric(&sample), 0, "{workers:?} {reason}");
        }
        assert_eq!(t.metric("sixgate_nat64_held_fragments"), 0, "{workers:?}");
    }
}

#[test]
fn reversed_ipv4_fragments_from_s4_reach_c6_through_a_static_entry_with_one_and_two_workers() {
    if !common::have_root(
        "reversed_ipv4_fragments_from_s4_reach_c6_through_a_static_entry_with_one_and_two_workers",
    ) {
        return;
    }
    for (tag, workers) in [("w", "workers = 2\n"), ("q", "")] {
        let t = Topology::start(
            tag,
            &format!("\"{POOL4}\""),
            &format!(
                "{workers}[[nat64.static_bib]]\nproto = \"udp\"\nipv6 = \"[{C6}]:9000\"\nipv4 = \"{POOL4}:9000\"\n"
            ),
            true,
        );
        let script = t.dir.write("reversed.py", REVERSED_FRAGMENTS);
        let slog = t.dir.path().join("server.log");
        let _server = spawn_logged(
            &t.c6,
            &["python3", script.to_str().unwrap(), "server6", C6, "9000"],
            &slog,
        );
        wait_for_file_line(&slog, "listening", Duration::from_secs(10));
        let out = t.s4.exec(&[
            "python3",
            script.to_str().unwrap(),
            "client",
            "4",
            S4,
            POOL4,
            "9000",
            "2500",
        ]);
        assert_eq!(
            out.trim(),
            "fragments 3 echo ok",
            "{workers:?}\n{}",
            t.metrics()
        );
        assert!(
            t.metric("sixgate_nat64_packets_total{direction=\"held\"}") >= 2,
            "{workers:?}"
        );
        for reason in ["fragment", "fragment_timeout", "fragment_queue_full"] {
            let sample = format!("sixgate_nat64_drops_total{{reason=\"{reason}\"}}");
            assert_eq!(t.metric(&sample), 0, "{workers:?} {reason}");
        }
    }
}
