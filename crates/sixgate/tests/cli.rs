//! The binary's plain commands: `check`, `addr`, `version`, and `run` refusals.

mod common;

use common::{sixgate_bin, TempDir};
use std::process::Command;

fn sixgate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(sixgate_bin())
        .args(args)
        .output()
        .expect("run sixgate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn addr_embed_uses_the_well_known_prefix_by_default() {
    let (ok, out, _) = sixgate(&["addr", "embed", "93.184.216.34"]);
    assert!(ok);
    assert_eq!(out.trim(), "64:ff9b::5db8:d822");
}

#[test]
fn addr_embed_follows_rfc6052_for_a_48() {
    let (ok, out, _) = sixgate(&[
        "addr",
        "embed",
        "192.0.2.33",
        "--prefix",
        "2001:db8:122::/48",
    ]);
    assert!(ok);
    assert_eq!(out.trim(), "2001:db8:122:c000:2:2100::");
}

#[test]
fn addr_embed_refuses_private_ipv4_under_the_well_known_prefix() {
    let (ok, _, err) = sixgate(&["addr", "embed", "10.0.0.1"]);
    assert!(!ok);
    assert!(err.contains("RFC 6052 §3.1"), "{err}");
}

#[test]
fn addr_extract_inverts_embed() {
    let (ok, out, _) = sixgate(&[
        "addr",
        "extract",
        "64:ff9b:1::c000:221",
        "-p",
        "64:ff9b:1::/96",
    ]);
    assert!(ok);
    assert_eq!(out.trim(), "192.0.2.33");
    let (ok, _, err) = sixgate(&["addr", "extract", "2001:db8::1"]);
    assert!(!ok);
    assert!(err.contains("not inside 64:ff9b::/96"), "{err}");
}

#[test]
fn check_accepts_a_valid_config() {
    let dir = TempDir::new("check");
    let path = dir.write("ok.toml", "[admin]\nlisten = \"127.0.0.1:0\"\n");
    let (ok, out, err) = sixgate(&["check", "--config", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains(": ok"), "{out}");
}

#[test]
fn check_refuses_an_unknown_key_with_file_line_and_key() {
    let dir = TempDir::new("check");
    let path = dir.write("bad.toml", "[admin]\nlisten = \"127.0.0.1:0\"\nport = 3\n");
    let (ok, _, err) = sixgate(&["check", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    let expected = format!("{}:3:1: admin.port: unknown field `port`", path.display());
    assert!(err.contains(&expected), "{err}");
}

#[test]
fn check_refuses_a_missing_file() {
    let (ok, _, err) = sixgate(&["check", "--config", "/nonexistent/sixgate.toml"]);
    assert!(!ok);
    assert!(
        err.contains("/nonexistent/sixgate.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn run_without_any_part_says_so() {
    let dir = TempDir::new("run");
    let path = dir.write("empty.toml", "[admin]\nlisten = \"127.0.0.1:0\"\n");
    let (ok, _, err) = sixgate(&["run", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("nothing to run"), "{err}");
}
