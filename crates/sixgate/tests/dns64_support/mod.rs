//! What the dns64 binary tests share: an NSD authoritative server on a
//! loopback port with a zone made for the tests, `sixgate dns64` in front of
//! it, `dig` runs parsed into answers, and small fake forwarders (slow,
//! garbage) for the fault tests. Everything started is killed on drop.
#![allow(dead_code)] // each test file uses a different subset

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{Sixgate, TempDir};

/// The test zone. SOA negative TTL: min(300, 120) = 120.
pub const ZONE: &str = "\
$ORIGIN sixgate.test.
$TTL 300
@ 300 IN SOA ns admin 1 3600 600 86400 120
@ IN NS ns
ns IN A 127.0.0.1
a-only IN A 198.51.100.10
a-only-60 60 IN A 198.51.100.60
dual IN A 198.51.100.11
dual IN AAAA 2001:db8::11
v6only IN AAAA 2001:db8::12
alias IN CNAME mid
mid IN CNAME a-only
mapped IN A 198.51.100.13
mapped IN AAAA ::ffff:198.51.100.13
private IN A 10.1.2.3
private IN A 192.168.7.7
private-and-global IN A 10.1.2.3
private-and-global IN A 8.8.8.8
www.exempt IN A 198.51.100.20
www.exempt IN AAAA 2001:db8::20
short 1 IN A 198.51.100.30
mx IN MX 10 a-only
old IN DNAME new.sixgate.test.
www.new IN A 198.51.100.40
prefetch 10 IN A 198.51.100.50
";

pub const REVERSE_ZONE: &str = "\
$ORIGIN 100.51.198.in-addr.arpa.
$TTL 300
@ IN SOA ns.sixgate.test. admin.sixgate.test. 1 3600 600 86400 120
@ IN NS ns.sixgate.test.
10 IN PTR a-only.sixgate.test.
";

/// A zone whose answer does not fit 512 bytes: 40 A records.
pub fn big_zone() -> String {
    let mut z = String::from(
        "$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns admin 1 3600 600 86400 120\n@ IN NS ns\nns IN A 127.0.0.1\n",
    );
    for i in 1..=40 {
        z.push_str(&format!("many IN A 198.51.100.{i}\n"));
    }
    // 100 records: more than 1232 bytes, so NSD truncates it over UDP.
    for i in 1..=100 {
        z.push_str(&format!("huge IN A 198.51.101.{i}\n"));
    }
    z
}

/// A port free for both UDP and TCP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// A child process killed on drop.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a DNS server answers on `addr` (any answer to a SOA query).
pub fn answers(addr: SocketAddr) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let query = raw_query(0x4242, "sixgate.test.", 6, false);
    if socket.send_to(&query, addr).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    socket.recv_from(&mut buf).is_ok()
}

/// Starts NSD serving the test zones (and a configured zone without data,
/// `broken.test`, which NSD answers with SERVFAIL).
pub fn start_nsd() -> Daemon {
    for _ in 0..5 {
        let dir = TempDir::new("nsd");
        let port = free_port();
        dir.write("sixgate.test.zone", ZONE);
        dir.write("reverse.zone", REVERSE_ZONE);
        dir.write("big.test.zone", &big_zone());
        let d = dir.path().display();
        let conf = format!(
            "server:\n  ip-address: 127.0.0.1\n  port: {port}\n  server-count: 1\n  username: \"\"\n  chroot: \"\"\n  \
             zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  database: \"\"\n  xfrdfile: \"{d}/xfrd.state\"\n  \
             zonelistfile: \"{d}/zone.list\"\n  logfile: \"{d}/nsd.log\"\n  verbosity: 0\n  rrl-ratelimit: 0\n\
             remote-control:\n  control-enable: no\n\
             zone:\n  name: sixgate.test\n  zonefile: \"{d}/sixgate.test.zone\"\n\
             zone:\n  name: 100.51.198.in-addr.arpa\n  zonefile: \"{d}/reverse.zone\"\n\
             zone:\n  name: big.test\n  zonefile: \"{d}/big.test.zone\"\n\
             zone:\n  name: broken.test\n  zonefile: \"{d}/missing.zone\"\n"
        );
        let conf_path = dir.write("nsd.conf", &conf);
        let child = Command::new("nsd")
            .args(["-d", "-c"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nsd (Debian package nsd)");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let daemon = Daemon { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if answers(addr) {
                return daemon;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The port was taken in between, most likely: try another.
    }
    panic!("nsd did not start");
}

/// A running `sixgate dns64` with a `[dns64]` section made of `extra` lines
/// after `forwarders`.
pub struct Dns64 {
    pub sg: Sixgate,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

pub fn start_sixgate(forwarders: &[SocketAddr], extra: &str) -> Dns64 {
    let dir = TempDir::new("dns64");
    let fwd: Vec<String> = forwarders.iter().map(|a| format!("\"{a}\"")).collect();
    let listen = if extra.contains("listen") {
        String::new()
    } else {
        "listen = [\"127.0.0.1:0\"]\n".to_owned()
    };
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[dns64]\n{listen}forwarders = [{}]\n{extra}\n",
        fwd.join(", ")
    );
    let path = dir.write("sixgate.toml", &config);
    let sg = Sixgate::start(
        None,
        &["dns64", "--config", path.to_str().expect("utf-8")],
        &["admin", "dns64"],
    );
    let addr = sg.listening["dns64"];
    Dns64 { sg, addr, dir }
}

/// One record of a dig answer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rr {
    pub name: String,
    pub ttl: u32,
    pub rtype: String,
    pub data: String,
}

/// What dig printed, parsed.
#[derive(Debug, Clone)]
pub struct Dig {
    pub status: String,
    pub flags: Vec<String>,
    pub answer: Vec<Rr>,
    pub authority: Vec<Rr>,
    pub ede: Option<String>,
    pub text: String,
}

impl Dig {
    pub fn data(&self, rtype: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .answer
            .iter()
            .filter(|r| r.rtype == rtype)
            .map(|r| r.data.clone())
            .collect();
        v.sort();
        v
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// Runs `dig @addr -p port ARGS` and parses its output.
pub fn dig(addr: SocketAddr, args: &[&str]) -> Dig {
    let out = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args([
            "-p",
            &addr.port().to_string(),
            "+tries=1",
            "+time=5",
            "+nocookie",
        ])
        .args(args)
        .output()
        .expect("run dig (Debian package dnsutils)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_dig(&text)
}

pub fn parse_dig(text: &str) -> Dig {
    let mut dig = Dig {
        status: String::new(),
        flags: Vec::new(),
        answer: Vec::new(),
        authority: Vec::new(),
        ede: None,
        text: text.to_owned(),
    };
    let mut section = "";
    for line in text.lines() {
        if let Some(rest) = line.split_once("status: ").map(|(_, r)| r) {
            dig.status = rest.split(',').next().unwrap_or("").to_owned();
        }
        if let Some(rest) = line.strip_prefix(";; flags: ") {
            dig.flags = rest
                .split(';')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        }
        if let Some(rest) = line.strip_prefix("; EDE: ") {
            dig.ede = Some(rest.to_owned());
        }
        if line.starts_with(";; ANSWER SECTION") {
            section = "answer";
            continue;
        }
        if line.starts_with(";; AUTHORITY SECTION") {
            section = "authority";
            continue;
        }
        if line.starts_with(";;") || line.trim().is_empty() {
            if line.trim().is_empty() {
                section = "";
            }
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 5 && !line.starts_with(';') {
            let rr = Rr {
                name: words[0].to_lowercase(),
                ttl: words[1].parse().unwrap_or(0),
                rtype: words[3].to_owned(),
                data: words[4..].join(" "),
            };
            match section {
                "answer" => dig.answer.push(rr),
                "authority" => dig.authority.push(rr),
                _ => {}
            }
        }
    }
    assert!(!dig.status.is_empty(), "dig got no answer:\n{text}");
    dig
}

/// A query in wire form (RD set; with an OPT record when `edns`).
pub fn raw_query(id: u16, name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(u8::try_from(label.len()).expect("short label"));
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    q
}

/// A UDP "forwarder" run by a thread: for each query, `reply` says what to
/// send back (None: nothing). Stops on drop.
pub struct FakeForwarder {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    pub seen: Arc<AtomicUsize>,
    /// Most queries held at the same time (for the delaying proxy).
    pub max_concurrent: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FakeForwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl FakeForwarder {
    /// Answers every query with bytes made by `reply(query)`.
    pub fn new(mut reply: impl FnMut(&[u8]) -> Option<Vec<u8>> + Send + 'static) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let (s, n) = (Arc::clone(&stop), Arc::clone(&seen));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                if let Ok((len, peer)) = socket.recv_from(&mut buf) {
                    n.fetch_add(1, Ordering::Relaxed);
                    if let Some(out) = reply(&buf[..len]) {
                        let _ = socket.send_to(&out, peer);
                    }
                }
            }
        });
        Self {
            addr,
            stop,
            seen,
            max_concurrent: Arc::new(AtomicUsize::new(0)),
            thread: Some(thread),
        }
    }

    /// Passes every query on to `upstream` after `delay`, and the answer back.
    pub fn delaying(upstream: SocketAddr, delay: Duration) -> Self {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").expect("bind"));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let max_concurrent = Arc::new(AtomicUsize::new(0));
        let (s, n, m) = (
            Arc::clone(&stop),
            Arc::clone(&seen),
            Arc::clone(&max_concurrent),
        );
        let thread = std::thread::spawn(move || {
            let current = Arc::new(AtomicUsize::new(0));
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                if let Ok((len, peer)) = socket.recv_from(&mut buf) {
                    n.fetch_add(1, Ordering::Relaxed);
                    let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    let query = buf[..len].to_vec();
                    let (socket, current) = (Arc::clone(&socket), Arc::clone(&current));
                    std::thread::spawn(move || {
                        std::thread::sleep(delay);
                        let up = UdpSocket::bind("127.0.0.1:0").expect("bind");
                        up.set_read_timeout(Some(Duration::from_secs(2)))
                            .expect("timeout");
                        let mut answer = [0u8; 65535];
                        if up.send_to(&query, upstream).is_ok() {
                            if let Ok((alen, _)) = up.recv_from(&mut answer) {
                                let _ = socket.send_to(&answer[..alen], peer);
                            }
                        }
                        current.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            }
        });
        Self {
            addr,
            stop,
            seen,
            max_concurrent,
            thread: Some(thread),
        }
    }
}

/// The resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// A metric's value from a `/metrics` text (the sum over all its label sets).
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name_and_labels)
                && l[name_and_labels.len()..].starts_with([' ', '{', ',', '}'])
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn path_exists(p: &str) -> bool {
    Path::new(p).exists()
}
