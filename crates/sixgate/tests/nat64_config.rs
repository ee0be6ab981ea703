//! `sixgate check` and `sixgate nat64` on config files, without root.

mod common;

use std::process::Command;

use common::{sixgate_bin, TempDir};

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(sixgate_bin())
        .args(args)
        .output()
        .expect("run sixgate");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_example_config_passes_check() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/examples/nat64.toml"
    );
    let (ok, out) = run(&["check", "--config", example]);
    assert!(ok, "{out}");
    assert!(out.contains("parts: nat64"), "{out}");
}

#[test]
fn documentation_pool4_under_the_well_known_prefix_is_refused_with_file_line_and_key() {
    let dir = TempDir::new("nat64cfg");
    let path = dir.write(
        "bad.toml",
        "[nat64]\ntun = \"x\"\npool4 = [\"192.0.2.1\"]\n",
    );
    let (ok, out) = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("bad.toml:"), "{out}");
    assert!(out.contains("nat64.pool4"), "{out}");
    assert!(out.contains("RFC 6052 §3.1"), "{out}");
}

#[test]
fn a_bad_static_bib_entry_is_refused_before_anything_runs() {
    let dir = TempDir::new("nat64cfg");
    let path = dir.write(
        "bad.toml",
        "[nat64]\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"192.0.2.1\"]\n\
         [[nat64.static_bib]]\nproto = \"sctp\"\nipv6 = \"[2001:db8::1]:80\"\nipv4 = \"192.0.2.1:80\"\n",
    );
    let (ok, out) = run(&["nat64", "--config", path.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("nat64.static_bib"), "{out}");
    assert!(out.contains("sctp"), "{out}");
}

#[test]
fn sessions_without_a_running_sixgate_says_so() {
    // Port 9 (discard) on loopback: nothing listens there in the test
    // environment, so the connection is refused at once.
    let (ok, out) = run(&["nat64", "sessions", "--admin", "127.0.0.1:9"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("cannot reach the admin port 127.0.0.1:9"),
        "{out}"
    );
}
