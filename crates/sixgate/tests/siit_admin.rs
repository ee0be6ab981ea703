//! `sixgate run` with a `[siit]` section serves `/healthz`, `/readyz` and
//! `/metrics` on the admin port: not ready while the part is still setting
//! up, ready once it runs, and a clean exit on SIGTERM.
//!
//! To hold the part in its set-up long enough to look at `/readyz`, sixgate
//! runs with an `ip` first in its PATH that waits 2 s before adding a route
//! and then runs the real `ip`.

mod common;

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{have_root, sh, sixgate_bin, unique, Netns, TempDir};

/// sixgate started with a custom PATH, its stderr lines on a channel; killed
/// on drop.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Running {
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        if let Some(line) = self.log.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no log line with {needle:?}; log:\n{}", self.log.join("\n"))
            });
            self.log.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(ns: &Netns, admin: &str, path: &str) -> (u16, String) {
    let url = format!("http://{admin}{path}");
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

#[test]
fn run_with_siit_serves_health_readiness_and_metrics() {
    if !have_root("run_with_siit_serves_health_readiness_and_metrics") {
        return;
    }
    let ns = Netns::new("siitadm");
    let dir = TempDir::new("siitadm");
    let real_ip = sh("sh", &["-c", "command -v ip"]).trim().to_owned();
    let wrapper = dir.write(
        "ip",
        &format!(
            "#!/bin/sh\ncase \"$*\" in *\"route add\"*) sleep 2 ;; esac\nexec {real_ip} \"$@\"\n"
        ),
    );
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let tun = unique("a");
    let config = dir.write(
        "siit.toml",
        &format!(
            "[siit]\ntun = \"{tun}\"\nmanage_routes = true\npool6 = \"64:ff9b:1::/96\"\n\
             eam = [ {{ ipv4 = \"192.0.2.6\", ipv6 = \"2001:db8:6::2\", route = \"ipv4\" }} ]\n"
        ),
    );
    let path = format!(
        "PATH={}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = ns
        .command(&["env", &path, sixgate_bin().to_str().expect("utf-8")])
        .args(["run", "--config", config.to_str().expect("utf-8")])
        .args(["--admin", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sixgate");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[sixgate] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut sixgate = Running {
        child,
        lines,
        log: Vec::new(),
    };

    let line = sixgate.wait_for("admin listening on ");
    let admin = line
        .rsplit_once("admin listening on ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .expect("admin address")
        .to_owned();

    // The TUN device is open, the route is being added: alive, not ready.
    sixgate.wait_for(&format!("siit opened tun {tun}"));
    let (status, body) = get(&ns, &admin, "/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = get(&ns, &admin, "/readyz");
    assert_eq!(status, 503, "/readyz during set-up: {body}");
    assert!(body.contains("siit"), "{body}");

    // Running: ready, and the part's metrics are served.
    sixgate.wait_for(&format!("siit running on tun {tun}"));
    let (status, body) = get(&ns, &admin, "/readyz");
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let (status, body) = get(&ns, &admin, "/metrics");
    assert_eq!(status, 200);
    for sample in [
        "sixgate_siit_packets_total{direction=\"4to6\"}",
        "sixgate_siit_packets_total{direction=\"6to4\"}",
        "sixgate_siit_drops_total{reason=\"untranslatable_destination\"}",
        "# TYPE sixgate_siit_drops_total counter",
    ] {
        assert!(body.contains(sample), "no {sample} in /metrics:\n{body}");
    }

    sh("kill", &["-TERM", &sixgate.child.id().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = sixgate.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "sixgate did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    sixgate.wait_for("siit stopped");
}
