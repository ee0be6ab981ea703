//! Helpers for the binary and network-namespace tests.
//!
//! - [`Sixgate`] starts the real binary, reads its `... listening on ADDR`
//!   log lines, and kills it on drop.
//! - [`Netns`] is a network namespace named `sg-<pid>-<tag>` that is deleted
//!   on drop, so a failing test leaves nothing behind. `scripts/test` removes
//!   stale `sg-*` namespaces from earlier runs before the tests start.
#![allow(dead_code)] // each test file uses a different subset

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn sixgate_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sixgate"))
}

/// Whether root-only tests can run. Without root they are skipped with a
/// message, unless `SIXGATE_REQUIRE_ROOT_TESTS=1` (set by `scripts/test`),
/// which turns the skip into a failure so CI never passes by skipping.
pub fn have_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var_os("SIXGATE_REQUIRE_ROOT_TESTS").is_none(),
            "{test} needs root (SIXGATE_REQUIRE_ROOT_TESTS is set)"
        );
        eprintln!("skipping {test}: needs root");
    }
    root
}

/// Runs a command to completion; panics with its output when it fails.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and returns its output whatever its status.
pub fn try_sh(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this test process: interface names must stay
/// within 15 bytes.
pub fn unique(tag: &str) -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    format!("sg{}{tag}{n}", std::process::id() % 100_000)
}

/// A network namespace, deleted (with its interfaces) on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        let name = format!(
            "sg-{}-{tag}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        sh("ip", &["netns", "add", &name]);
        let ns = Self { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The `ip netns exec NAME` prefix followed by `args`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// Runs a command in the namespace; panics with its output when it fails.
    pub fn exec(&self, args: &[&str]) -> String {
        let out = self.try_exec(args);
        assert!(
            out.status.success(),
            "in {}: {args:?} failed ({}):\n{}{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn try_exec(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {args:?} in {}: {e}", self.name))
    }

    /// Starts a background process in the namespace, killed on drop.
    pub fn spawn(&self, args: &[&str]) -> Background {
        let child = self
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}"));
        Background(child)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever still runs inside, then remove the namespace.
        let _ = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|out| {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            });
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Joins two namespaces with a veth pair; returns the two interface names.
pub fn veth(a: &Netns, b: &Netns) -> (String, String) {
    let (ia, ib) = (unique("a"), unique("b"));
    sh(
        "ip",
        &[
            "link", "add", &ia, "netns", &a.name, "type", "veth", "peer", "name", &ib, "netns",
            &b.name,
        ],
    );
    a.exec(&["ip", "link", "set", &ia, "up"]);
    b.exec(&["ip", "link", "set", &ib, "up"]);
    (ia, ib)
}

/// A child process killed on drop.
pub struct Background(pub Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `sixgate`, killed on drop. Its stderr is collected; the
/// `WHAT listening on ADDR` lines are parsed into [`Sixgate::listening`].
pub struct Sixgate {
    child: Child,
    pub listening: HashMap<String, SocketAddr>,
    log: mpsc::Receiver<String>,
    pub log_lines: Vec<String>,
}

impl Sixgate {
    /// Starts `sixgate ARGS...` (optionally inside `netns`) and waits until
    /// every name in `wait_for` has logged `NAME listening on ADDR`.
    pub fn start(netns: Option<&Netns>, args: &[&str], wait_for: &[&str]) -> Self {
        let bin = sixgate_bin();
        let mut command = vec![bin.to_str().expect("utf-8 path")];
        command.extend_from_slice(args);
        Self::start_command(netns, &command, wait_for)
    }

    /// Like [`Sixgate::start`], for a command line that runs sixgate in some
    /// other way (under `setpriv`, a copy of the binary, ...).
    pub fn start_command(netns: Option<&Netns>, command: &[&str], wait_for: &[&str]) -> Self {
        let mut cmd = match netns {
            Some(ns) => ns.command(command),
            None => {
                let mut c = Command::new(command[0]);
                c.args(&command[1..]);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sixgate");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[sixgate] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut me = Self {
            child,
            listening: HashMap::new(),
            log: rx,
            log_lines: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !wait_for.iter().all(|w| me.listening.contains_key(*w)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match me.log.recv_timeout(left) {
                Ok(line) => me.note(line),
                Err(_) => panic!(
                    "sixgate did not report {wait_for:?} listening; log so far:\n{}",
                    me.log_lines.join("\n")
                ),
            }
        }
        me
    }

    fn note(&mut self, line: String) {
        if let Some((before, after)) = line.split_once(" listening on ") {
            let what = before.split_whitespace().last().unwrap_or("").to_owned();
            if let Some(addr) = after.split_whitespace().next().and_then(|a| a.parse().ok()) {
                self.listening.insert(what, addr);
            }
        }
        self.log_lines.push(line);
    }

    /// Reads log lines until one contains `needle`, or panics after `timeout`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(line) = self.log_lines.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.note(line.clone());
                    if hit {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with {needle:?}; log:\n{}",
                    self.log_lines.join("\n")
                ),
            }
        }
    }

    pub fn admin(&self) -> SocketAddr {
        self.listening["admin"]
    }

    /// `GET path` on the admin port: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.admin(), path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `HUP`, ...) and, for TERM/INT, waits for exit.
    pub fn signal(&mut self, sig: &str) {
        sh("kill", &[&format!("-{sig}"), &self.child.id().to_string()]);
    }

    /// Waits for the process to exit, returning its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                while let Ok(line) = self.log.try_recv() {
                    self.note(line);
                }
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "sixgate did not exit in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sixgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect admin");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Writes `text` to a fresh file in a temporary directory that lives as long as the returned guard.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sixgate-test-{}-{tag}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write temp file");
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Output as text, stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Retries `probe` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if probe() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sha256sum FILE` → the hex digest.
pub fn sha256(path: &std::path::Path) -> String {
    sh("sha256sum", &[path.to_str().expect("utf-8 path")])
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Writes `len` pseudo-random bytes (xorshift64*, fixed seed) to `path`.
pub fn random_file(path: &std::path::Path, len: usize) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    bytes.truncate(len);
    std::fs::write(path, bytes).expect("write the test file");
}

/// Starts `args` in `ns` with stdout and stderr in `log`.
pub fn spawn_logged(ns: &Netns, args: &[&str], log: &Path) -> Background {
    let file = std::fs::File::create(log).expect("create the log file");
    let err = file.try_clone().expect("clone the log file");
    let child = ns
        .command(args)
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}"));
    Background(child)
}

pub fn wait_for_file_line(path: &Path, needle: &str, timeout: Duration) -> String {
    let mut last = String::new();
    let found = eventually(timeout, || {
        last = std::fs::read_to_string(path).unwrap_or_default();
        last.contains(needle)
    });
    assert!(
        found,
        "{needle:?} never appeared in {}:\n{last}",
        path.display()
    );
    last
}
