//! `sixgate run` without `--config`: the embedded default, as root and not.
//! Each run happens in a namespace of its own, so the default ports (53,
//! 7779) and the TUN device do not meet the host's.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::Duration;

use common::{have_root, sixgate_bin, Netns, Sixgate, TempDir};

#[test]
fn the_printed_default_config_passes_check() {
    let out = Command::new(sixgate_bin())
        .args(["run", "--print-default-config"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let dir = TempDir::new("default");
    let path = dir.write("default.toml", &String::from_utf8_lossy(&out.stdout));
    let check = Command::new(sixgate_bin())
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("check");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains("nat64") && stdout.contains("dns64"),
        "{stdout}"
    );
}

#[test]
fn run_without_config_as_root_synthesises_ipv4only_arpa_and_serves_metrics() {
    if !have_root("run_without_config_as_root_synthesises_ipv4only_arpa_and_serves_metrics") {
        return;
    }
    let ns = Netns::new("default");
    let mut sixgate = Sixgate::start(Some(&ns), &["run"], &["admin", "dns64"]);
    sixgate.wait_for_log("nat64 running on tun", Duration::from_secs(10));
    // RFC 7050/8880: the resolver answers ipv4only.arpa itself, from its
    // well-known 192.0.0.170 and .171 under the NAT64 prefix.
    let answer = ns.exec(&[
        "dig",
        "+short",
        "+time=2",
        "+tries=1",
        "AAAA",
        "ipv4only.arpa",
        "@::1",
    ]);
    let mut lines: Vec<&str> = answer.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["64:ff9b::c000:aa", "64:ff9b::c000:ab"], "{answer}");
    let metrics = ns.exec(&["curl", "-sf", "http://127.0.0.1:7779/metrics"]);
    assert!(
        metrics.contains("sixgate_dns64_"),
        "no dns64 metrics:\n{metrics}"
    );
    assert!(
        metrics.contains("sixgate_nat64_"),
        "no nat64 metrics:\n{metrics}"
    );
    let ready = ns.exec(&["curl", "-s", "http://127.0.0.1:7779/readyz"]);
    assert_eq!(ready.trim(), "ready");
}

#[test]
fn run_without_config_and_without_root_serves_dns64_and_says_why_nat64_is_off() {
    if !have_root("run_without_config_and_without_root_serves_dns64_and_says_why_nat64_is_off") {
        return;
    }
    // The build directory may not be reachable for an unprivileged user:
    // run a copy from a world-readable directory.
    let dir = TempDir::new("unprivileged");
    let bin = dir.path().join("sixgate");
    std::fs::copy(sixgate_bin(), &bin).expect("copy the binary");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod binary");
    let bin = bin.to_str().expect("utf-8 path");

    let ns = Netns::new("nonroot");
    let mut sixgate = Sixgate::start_command(
        Some(&ns),
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin,
            "run",
        ],
        &["admin", "dns64"],
    );
    sixgate.wait_for_log("nat64 is off: it needs root", Duration::from_secs(5));
    sixgate.wait_for_log(
        "dns64 listens on port 5353 instead of 53",
        Duration::from_secs(5),
    );
    let answer = ns.exec(&[
        "dig",
        "+short",
        "+time=2",
        "+tries=1",
        "-p",
        "5353",
        "AAAA",
        "ipv4only.arpa",
        "@::1",
    ]);
    assert!(answer.contains("64:ff9b::c000:aa"), "{answer}");
}
