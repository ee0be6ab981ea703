//! RFC 6146 §3.5.2.2 end to end: an ESTABLISHED TCP session idle for
//! TCP_EST gets a probe toward its IPv6 endpoint; a live endpoint answers and
//! keeps the session, a silent one lets it expire after TCP_TRANS.
//!
//! ```text
//!  c6 (IPv6 only)              gw: sixgate nat64, TUN            s4 (IPv4 only)
//!  2001:db8:6::2/64  -------  2001:db8:6::1 | 198.51.100.1  -------  198.51.100.2/24
//! ```
//!
//! The topology of `nat64_support` (c6 reaches s4 as
//! `64:ff9b:1::c633:6402`, pool4 `192.0.2.1`), with TCP_EST of 3 s and
//! TCP_TRANS of 4 s (`allow_short_timeouts`) so that it runs in seconds.

mod common;
mod nat64_support;

use std::time::{Duration, Instant};

use common::{
    eventually, sixgate_bin, spawn_logged, unique, wait_for_file_line, Background, Netns, Sixgate,
    TempDir,
};
use nat64_support::{Hosts, C6, S4, S4_V6};

const POOL4: &str = "192.0.2.1";
const PORT: &str = "7007";
const TCP_EST: Duration = Duration::from_secs(3);
const TCP_TRANS: Duration = Duration::from_secs(4);

/// The running topology; fields drop in order: programs first, sixgate,
/// then the namespaces.
struct Topology {
    _server: Background,
    sixgate: Sixgate,
    c6: Netns,
    _s4: Netns,
    gw: Netns,
    dir: TempDir,
}

impl Topology {
    fn start(tag: &str, extra: &str) -> Self {
        let Hosts { gw, c6, s4 } = Hosts::new(tag, true);

        let dir = TempDir::new("nat64probe");
        let server = dir.write("echo_server.py", ECHO_SERVER);
        let server_log = dir.path().join("server.log");
        let server = spawn_logged(
            &s4,
            &["python3", server.to_str().expect("utf-8"), S4, PORT],
            &server_log,
        );
        wait_for_file_line(&server_log, "listening", Duration::from_secs(10));

        let tun = unique("p");
        let text = format!(
            "[nat64]\ntun = \"{tun}\"\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"{POOL4}\"]\n\
             manage_routes = true\n{extra}\nallow_short_timeouts = true\n\
             [nat64.timeouts]\ntcp_est = \"{}s\"\ntcp_trans = \"{}s\"\n",
            TCP_EST.as_secs(),
            TCP_TRANS.as_secs()
        );
        let config = dir.write("nat64.toml", &text);
        let config = config.to_str().expect("utf-8 temp path").to_owned();
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
            _server: server,
            sixgate,
            c6,
            _s4: s4,
            gw,
            dir,
        }
    }

    /// The line of `sixgate nat64 sessions` for the TCP session to the echo
    /// server, if there is one.
    fn tcp_session(&self) -> Option<String> {
        let admin = self.sixgate.admin().to_string();
        let bin = sixgate_bin();
        let out = self.gw.exec(&[
            bin.to_str().expect("utf-8 path"),
            "nat64",
            "sessions",
            "--admin",
            &admin,
        ]);
        let to = format!("-> {S4}:{PORT} ");
        out.lines()
            .find(|l| l.trim_start().starts_with("session tcp") && l.contains(&to))
            .map(str::to_owned)
    }

    fn metric(&self, sample: &str) -> u64 {
        let url = format!("http://{}/metrics", self.sixgate.admin());
        let body = self.gw.exec(&["curl", "-sS", "--max-time", "5", &url]);
        body.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no sample {sample} in /metrics:\n{body}"))
    }

    /// Starts the client in c6: it connects, echoes once, and echoes again
    /// when the file `go` appears in the test directory.
    fn client(&self) -> (Background, std::path::PathBuf) {
        let script = self.dir.write("client.py", CLIENT);
        let log = self.dir.path().join("client.log");
        let client = spawn_logged(
            &self.c6,
            &[
                "python3",
                script.to_str().expect("utf-8"),
                S4_V6,
                PORT,
                self.dir.path().to_str().expect("utf-8"),
            ],
            &log,
        );
        (client, log)
    }
}

const ECHO_SERVER: &str = r#"
import socket, sys, threading
s = socket.socket(socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
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

/// One TCP connection, no keep-alive: echoes "one", waits for the file
/// `go`, echoes "two", then holds the connection until killed.
const CLIENT: &str = r#"
import os, socket, sys, time
host, port, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6)
s.settimeout(10)
s.connect((host, port))
def echo(word):
    s.sendall(word)
    got = b""
    while len(got) < len(word):
        chunk = s.recv(64)
        if not chunk:
            break
        got += chunk
    return got == word
print("first echo %s" % echo(b"one\n"), flush=True)
go = os.path.join(d, "go")
deadline = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.05)
try:
    print("second echo %s" % echo(b"two\n"), flush=True)
except OSError as e:
    print("second echo failed %r" % e, flush=True)
time.sleep(60)
"#;

#[test]
fn an_idle_tcp_connection_is_probed_and_its_answer_keeps_the_session() {
    if !common::have_root("an_idle_tcp_connection_is_probed_and_its_answer_keeps_the_session") {
        return;
    }
    // Offloads on (the default): the probe goes out behind a virtio-net
    // header.
    let t = Topology::start("p", "");
    // A probe on c6's wire: from s4's synthesized address, TCP (next header
    // 6, no extension header), flags exactly ACK (byte 13 of the TCP
    // header), sequence and acknowledgment numbers zero.
    let dump_log = t.dir.path().join("tcpdump.log");
    let filter = format!(
        "ip6 src {S4_V6} and ip6 dst {C6} and ip6[6] == 6 and ip6[53] == 0x10 \
         and ip6[44:4] == 0 and ip6[48:4] == 0"
    );
    let _dump = spawn_logged(
        &t.c6,
        &["tcpdump", "-i", "any", "-nn", "-l", "-c", "1", &filter],
        &dump_log,
    );
    wait_for_file_line(&dump_log, "listening on", Duration::from_secs(10));

    let (_client, log) = t.client();
    wait_for_file_line(&log, "first echo True", Duration::from_secs(10));
    let quiet = Instant::now();
    let line = t.tcp_session().expect("the TCP session is listed");
    assert!(line.contains("ESTABLISHED"), "{line}");

    // TCP_EST later the probe reaches c6, whose TCP answers it.
    let dump = wait_for_file_line(&dump_log, "1 packet captured", Duration::from_secs(15));
    assert!(
        dump.contains(&format!("{S4_V6}.{PORT} > {C6}.")) && dump.contains("win 8192"),
        "{dump}"
    );
    assert!(
        quiet.elapsed() >= TCP_EST - Duration::from_millis(500),
        "probed {:?} after the last packet",
        quiet.elapsed()
    );
    // A second probe one TCP_EST after the answer: the answer brought the
    // session back to ESTABLISHED (a session in TRANS is not probed again,
    // it expires).
    assert!(
        eventually(Duration::from_secs(15), || t
            .metric("sixgate_nat64_tcp_probes_total")
            >= 2),
        "no second probe"
    );
    // Idle longer than TCP_EST + TCP_TRANS, and still there, ESTABLISHED
    // (between a probe and its answer it is in TRANS for a moment).
    while quiet.elapsed() < TCP_EST + TCP_TRANS + Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut last = None;
    assert!(
        eventually(Duration::from_secs(5), || {
            last = t.tcp_session();
            last.as_deref().is_some_and(|l| l.contains("ESTABLISHED"))
        }),
        "the session is not ESTABLISHED: {last:?}"
    );
    assert_eq!(
        t.metric("sixgate_nat64_sessions_expired_total{proto=\"tcp\"}"),
        0
    );
    assert_eq!(t.metric("sixgate_nat64_tun_errors_total{op=\"write\"}"), 0);

    // And the connection still carries data.
    t.dir.write("go", "");
    wait_for_file_line(&log, "second echo True", Duration::from_secs(10));
}

#[test]
fn a_silent_endpoint_lets_the_probed_session_expire_after_tcp_trans() {
    if !common::have_root("a_silent_endpoint_lets_the_probed_session_expire_after_tcp_trans") {
        return;
    }
    // Offloads off (the probe is written bare), two workers (the timer task
    // expires and probes every shard).
    let t = Topology::start("q", "offload = false\nworkers = 2");
    let (_client, log) = t.client();
    wait_for_file_line(&log, "first echo True", Duration::from_secs(10));
    // c6's end goes silent: nothing from s4 reaches its TCP any more, so
    // nothing answers the probe (the process and its socket stay).
    let rules = t.dir.write(
        "silence.nft",
        &format!(
            "table inet sgprobe {{\n  chain input {{\n    type filter hook input priority 0;\n    \
             ip6 saddr {S4_V6} drop\n  }}\n}}\n"
        ),
    );
    t.c6.exec(&["nft", "-f", rules.to_str().expect("utf-8")]);
    let quiet = Instant::now();

    let mut saw_trans = false;
    let gone = eventually(Duration::from_secs(20), || match t.tcp_session() {
        Some(line) => {
            saw_trans |= line.contains(" TRANS ");
            false
        }
        None => true,
    });
    let took = quiet.elapsed();
    assert!(gone, "the session did not expire");
    assert!(saw_trans, "the session was never seen in TRANS");
    // TCP_EST, then TCP_TRANS (the last packet went a moment before
    // `quiet`; expiry rounds up to whole seconds and the timer ticks).
    assert!(
        took >= TCP_EST + TCP_TRANS - Duration::from_millis(500),
        "expired {took:?} after the last packet"
    );
    assert!(took < Duration::from_secs(14), "expired after {took:?}");
    assert_eq!(t.metric("sixgate_nat64_tcp_probes_total"), 1);
    assert_eq!(
        t.metric("sixgate_nat64_sessions_expired_total{proto=\"tcp\"}"),
        1
    );
}
