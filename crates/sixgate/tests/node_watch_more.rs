//! `sixgate node watch` following changes that are not drift (a new config on
//! SIGHUP, an IPv6 address appearing on the uplink), and repairing drift
//! where `unshare` is not available (the fallback comparison).

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{have_root, sixgate_bin, veth, Netns, Sixgate, TempDir};

fn node_with_uplink(global: bool) -> (Netns, Netns, String, String) {
    let node = Netns::new("node");
    let peer = Netns::new("peer");
    let (uplink, _) = veth(&node, &peer);
    if global {
        node.exec(&[
            "ip",
            "addr",
            "add",
            "2001:db8:1::1/64",
            "dev",
            &uplink,
            "nodad",
        ]);
    }
    let tun = common::unique("t");
    node.exec(&["ip", "tuntap", "add", "dev", &tun, "mode", "tun"]);
    node.exec(&["ip", "link", "set", &tun, "up"]);
    (node, peer, uplink, tun)
}

fn config(uplink: &str, tun: &str, extra: &str) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[node]\nuplink = \"{uplink}\"\nwatch_period = \"300ms\"\n\n\
         [[node.rewrites]]\npreset = \"azure-lb-probe\"\n\n\
         [[node.routes]]\nprefix = \"64:ff9b::/96\"\ndev = \"{tun}\"\n{extra}"
    )
}

fn table(ns: &Netns) -> Option<String> {
    let out = ns.try_exec(&["nft", "-s", "list", "table", "ip6", "sixgate"]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn metric(ns: &Netns, sixgate: &Sixgate, name: &str) -> u64 {
    let body = ns.exec(&[
        "curl",
        "-sf",
        &format!("http://{}/metrics", sixgate.admin()),
    ]);
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{body}"))
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_applies_a_new_config_without_counting_drift() {
    if !have_root("sighup_applies_a_new_config_without_counting_drift") {
        return;
    }
    let (node, _peer, uplink, tun) = node_with_uplink(true);
    let dir = TempDir::new("node-hup");
    let path = dir.write("node.toml", &config(&uplink, &tun, ""));
    let path = path.to_str().expect("utf-8").to_owned();
    let mut sixgate = Sixgate::start(
        Some(&node),
        &["node", "watch", "--config", &path],
        &["admin"],
    );
    sixgate.wait_for_log("node rules applied", Duration::from_secs(10));

    dir.write(
        "node.toml",
        &config(
            &uplink,
            &tun,
            &format!("\n[[node.routes]]\nprefix = \"192.0.2.0/24\"\ndev = \"{tun}\"\n"),
        ),
    );
    sixgate.signal("HUP");
    sixgate.wait_for_log("node: config reloaded", Duration::from_secs(5));
    wait_until("the new route", Duration::from_secs(5), || {
        node.exec(&["ip", "-4", "route", "show", "proto", "166"])
            .contains(&format!("192.0.2.0/24 dev {tun}"))
    });
    assert_eq!(
        metric(&node, &sixgate, "sixgate_node_drift_total{what=\"routes\"}"),
        0
    );
    assert_eq!(
        metric(&node, &sixgate, "sixgate_node_drift_total{what=\"table\"}"),
        0
    );
}

#[test]
fn ipv6_rules_follow_a_global_address_that_appears_on_the_uplink() {
    if !have_root("ipv6_rules_follow_a_global_address_that_appears_on_the_uplink") {
        return;
    }
    let (node, _peer, uplink, tun) = node_with_uplink(false);
    let dir = TempDir::new("node-later");
    let path = dir.write("node.toml", &config(&uplink, &tun, ""));
    let mut sixgate = Sixgate::start(
        Some(&node),
        &["node", "watch", "--config", path.to_str().expect("utf-8")],
        &["admin"],
    );
    sixgate.wait_for_log("IPv6 rules skipped", Duration::from_secs(10));
    sixgate.wait_for_log("node rules applied", Duration::from_secs(10));
    assert!(table(&node).is_none());
    assert_eq!(metric(&node, &sixgate, "sixgate_node_ipv6_rules_active"), 0);

    node.exec(&[
        "ip",
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        &uplink,
        "nodad",
    ]);
    sixgate.wait_for_log("IPv6 rules on", Duration::from_secs(5));
    wait_until("the table", Duration::from_secs(5), || {
        table(&node).is_some()
    });
    wait_until("the gauge", Duration::from_secs(5), || {
        metric(&node, &sixgate, "sixgate_node_ipv6_rules_active") == 1
    });
    assert_eq!(
        metric(&node, &sixgate, "sixgate_node_drift_total{what=\"table\"}"),
        0
    );
    let skipped = sixgate
        .log_lines
        .iter()
        .filter(|l| l.contains("IPv6 rules skipped"))
        .count();
    assert_eq!(skipped, 1, "one line, not one per check");
}

/// `sixgate node watch` with only `nft` and `ip` on its PATH: no `unshare`
/// for the exact comparison, as in a container without CAP_SYS_ADMIN.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?}"),
            }
        }
    }
}

impl Watch {
    /// The lines logged so far and not read yet.
    fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(program: &str) -> String {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let path = format!("{dir}/{program}");
        if std::path::Path::new(&path).exists() {
            return path;
        }
    }
    panic!("{program} not found");
}

#[test]
fn without_unshare_watch_still_repairs_a_deleted_table() {
    if !have_root("without_unshare_watch_still_repairs_a_deleted_table") {
        return;
    }
    let (node, _peer, uplink, tun) = node_with_uplink(true);
    let dir = TempDir::new("node-nounshare");
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).expect("bin dir");
    for program in ["nft", "ip"] {
        std::os::unix::fs::symlink(which(program), bin_dir.join(program)).expect("symlink");
    }
    let path = dir.write("node.toml", &config(&uplink, &tun, ""));
    let bin = sixgate_bin();
    let mut child = node
        .command(&[
            "/usr/bin/env",
            &format!("PATH={}", bin_dir.display()),
            bin.to_str().expect("utf-8"),
            "node",
            "watch",
            "--config",
            path.to_str().expect("utf-8"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sixgate");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[sixgate] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let watch = Watch { child, lines };
    watch.wait_for(
        "cannot list the rules in a throwaway namespace",
        Duration::from_secs(10),
    );
    watch.wait_for("node rules applied", Duration::from_secs(10));
    let applied = table(&node).expect("table");
    // A quiet period: the read-back comparison must not see drift where there is none.
    std::thread::sleep(Duration::from_secs(1));
    let quiet = watch.drain();
    assert!(
        !quiet.iter().any(|l| l.contains("by someone else")),
        "drift reported with nothing changed: {quiet:?}"
    );
    node.exec(&["nft", "delete", "table", "ip6", "sixgate"]);
    let line = watch.wait_for("by someone else", Duration::from_secs(5));
    assert!(line.contains("(drift 1)"), "{line}");
    wait_until("the table back", Duration::from_secs(5), || {
        table(&node).as_deref() == Some(applied.as_str())
    });
}

#[test]
fn watch_retries_a_failed_apply_and_is_ready_once_it_succeeds() {
    if !have_root("watch_retries_a_failed_apply_and_is_ready_once_it_succeeds") {
        return;
    }
    let (node, _peer, uplink, _) = node_with_uplink(true);
    // The route's TUN device does not exist yet (the nat64 part creates it).
    let tun = common::unique("late");
    let dir = TempDir::new("node-retry");
    let path = dir.write("node.toml", &config(&uplink, &tun, ""));
    let mut sixgate = Sixgate::start(
        Some(&node),
        &["node", "watch", "--config", path.to_str().expect("utf-8")],
        &["admin"],
    );
    let line = sixgate.wait_for_log("retrying in", Duration::from_secs(10));
    assert!(
        line.contains(&format!("node.routes[0].dev: no interface named `{tun}`")),
        "{line}"
    );
    let readyz = format!("http://{}/readyz", sixgate.admin());
    assert!(node
        .exec(&["curl", "-s", &readyz])
        .contains("not ready: node"));
    assert!(table(&node).is_none(), "nothing applied while refused");
    wait_until("a second failure", Duration::from_secs(5), || {
        metric(
            &node,
            &sixgate,
            "sixgate_node_apply_failures_total{stage=\"refused\"}",
        ) >= 2
    });

    node.exec(&["ip", "tuntap", "add", "dev", &tun, "mode", "tun"]);
    node.exec(&["ip", "link", "set", &tun, "up"]);
    sixgate.wait_for_log("node rules applied", Duration::from_secs(10));
    assert!(table(&node).is_some());
    wait_until("ready", Duration::from_secs(5), || {
        node.exec(&["curl", "-s", &readyz]).trim() == "ready"
    });
}
