//! Helpers shared by the `proxy_*` tests: the proxy under test, backends
//! (openssl s_server, nginx, small in-test TCP servers), certificates and
//! metrics.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{sh, Background, Sixgate, TempDir};

/// A port on 127.0.0.1 that was free a moment ago (for programs that cannot
/// listen on port 0 and say where they are).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A proxy under test, started from `config` (a `[proxy]` section and its
/// tables; the admin port is added).
pub struct Proxy {
    pub sg: Sixgate,
    pub dir: TempDir,
    pub config: PathBuf,
}

impl Proxy {
    pub fn start(tag: &str, config: &str) -> Self {
        let dir = TempDir::new(tag);
        let text = format!("[admin]\nlisten = \"127.0.0.1:0\"\n\n{config}");
        let path = dir.write("sixgate.toml", &text);
        let sg = Sixgate::start(
            None,
            &["proxy", "--config", path.to_str().expect("utf-8")],
            &["admin", "proxy"],
        );
        Self {
            sg,
            dir,
            config: path,
        }
    }

    /// The address of the listener named `name` (waits for its line).
    pub fn listener(&mut self, name: &str) -> SocketAddr {
        let line = self
            .sg
            .wait_for_log(&format!("(listener {name})"), Duration::from_secs(10));
        line.split_once("proxy listening on ")
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// The value of one series on `/metrics` (`name{labels}` exactly as
    /// written out), or 0 when it is not there.
    pub fn metric(&self, series: &str) -> u64 {
        let (status, body) = self.sg.get("/metrics");
        assert_eq!(status, 200, "{body}");
        body.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    }

    /// Replaces the config file, sends SIGHUP and waits for reload number
    /// `n` (1 for the first) to be applied.
    pub fn reload(&mut self, config: &str, n: u32) {
        let text = format!("[admin]\nlisten = \"127.0.0.1:0\"\n\n{config}");
        std::fs::write(&self.config, text).expect("write config");
        self.sg.signal("HUP");
        self.sg
            .wait_for_log(&format!("(reload {n})"), Duration::from_secs(10));
    }
}

/// A self-signed certificate for `name`, made with `openssl req`.
pub struct Cert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn self_signed(dir: &TempDir, name: &str) -> Cert {
    let cert = dir.path().join(format!("{name}.crt"));
    let key = dir.path().join(format!("{name}.key"));
    sh(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            &format!("subjectAltName=DNS:{name}"),
            "-keyout",
            key.to_str().expect("utf-8"),
            "-out",
            cert.to_str().expect("utf-8"),
        ],
    );
    Cert { cert, key }
}

/// `openssl s_server -www` on 127.0.0.1 with `cert`: an IPv4-only TLS backend.
pub fn s_server(cert: &Cert) -> (Background, SocketAddr) {
    let port = free_port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert.cert)
        .arg("-key")
        .arg(&cert.key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openssl s_server");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let bg = Background(child);
    wait_listening(addr);
    (bg, addr)
}

/// `curl -6` to `https://NAME:PORT/` through `proxy`, trusting only `ca`:
/// succeeds only if the server presented the certificate in `ca`.
pub fn curl_tls(proxy: SocketAddr, name: &str, ca: &Cert) -> std::process::Output {
    let port = proxy.port();
    Command::new("curl")
        .args(["-6", "-sS", "--max-time", "10", "--cacert"])
        .arg(&ca.cert)
        .arg("--resolve")
        .arg(format!("{name}:{port}:{}", proxy.ip()))
        .arg(format!("https://{name}:{port}/"))
        .output()
        .expect("run curl")
}

/// A small TCP server in a thread: for each connection it calls `serve`.
/// Dropping it (or `stop`) closes the listening socket, like a killed
/// backend: new connections are refused.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(bind: &str, serve: impl Fn(TcpStream) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind(bind).expect("bind test server");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let serve = Arc::new(serve);
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let serve = Arc::clone(&serve);
                        std::thread::spawn(move || serve(stream));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// A server that writes `name` and a newline to every client, then closes.
    pub fn named(name: &'static str) -> Self {
        Self::start("127.0.0.1:0", move |mut s| {
            let _ = s.write_all(format!("{name}\n").as_bytes());
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connects to `addr`, optionally sends `send`, and reads until the server
/// closes (or 5 s pass).
pub fn exchange(addr: SocketAddr, send: &[u8]) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    if !send.is_empty() {
        s.write_all(send).expect("send");
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the peer closes `s` within `limit`; returns how long it took.
pub fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(start.elapsed()), // reset counts as closed
        }
    }
    None
}
