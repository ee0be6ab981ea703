//! The `[dns64]` section: the shipped example loads, and bad values are
//! refused at start with the file, line, key and reason.

mod common;

use std::process::Command;

use common::{sixgate_bin, TempDir};

fn check(path: &std::path::Path) -> (bool, String) {
    let out = Command::new(sixgate_bin())
        .args(["check", "--config"])
        .arg(path)
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
fn example_config_is_valid() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples/dns64.toml");
    let (ok, text) = check(&example);
    assert!(ok, "{text}");
    assert!(text.contains("dns64"), "{text}");
}

#[test]
fn bad_values_name_their_key_and_line() {
    let dir = TempDir::new("dns64cfg");
    let cases = [
        (
            "[dns64]\nprefix = \"64:ff9b::/95\"\n",
            "dns64.prefix",
            ":2:",
        ),
        ("[dns64]\nallow = [\"10.0.0.1/8\"]\n", "dns64.allow", ":2:"),
        ("[dns64]\naaaa = \"sometimes\"\n", "dns64.aaaa", ":2:"),
        ("[dns64]\nexempt = [\"bad..name\"]\n", "dns64.exempt", ":2:"),
        (
            "[dns64]\nupstream_timeout_ms = 0\n",
            "dns64.upstream_timeout_ms",
            "",
        ),
        ("[dns64]\nlisten = []\n", "dns64.listen", ""),
        ("[dns64]\ncolour = \"blue\"\n", "colour", ":2:"),
    ];
    for (i, (text, key, line)) in cases.iter().enumerate() {
        let path = dir.write(&format!("bad{i}.toml"), text);
        let (ok, out) = check(&path);
        assert!(!ok, "{text} was accepted");
        assert!(out.contains(key), "{text}: {out}");
        assert!(out.contains(line), "{text}: {out}");
    }
}
