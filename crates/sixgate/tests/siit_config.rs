//! `sixgate check` on `[siit]` sections: the shipped example passes, and a
//! bad section is refused with the file, line, key and reason, before
//! anything runs (no root needed).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{sixgate_bin, TempDir};

fn check(path: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(sixgate_bin())
        .args(["check", "--config"])
        .arg(path)
        .output()
        .expect("run sixgate check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Checks `text` and returns the `sixgate: ...` error line; fails if the
/// config passed.
fn refused(text: &str) -> (String, String) {
    let dir = TempDir::new("siitcfg");
    let path = dir.write("bad.toml", text);
    let (ok, _, err) = check(&path);
    assert!(!ok, "accepted:\n{text}");
    let line = err
        .lines()
        .find(|l| l.starts_with("sixgate: "))
        .unwrap_or_else(|| panic!("no error line in:\n{err}"))
        .to_owned();
    (line, path.display().to_string())
}

#[test]
fn the_shipped_example_passes_check() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples/siit.toml");
    let (ok, out, err) = check(&example);
    assert!(ok, "{err}");
    assert!(out.contains("ok (parts: siit)"), "{out}");
}

#[test]
fn eam_entry_with_unequal_suffixes_is_refused_with_file_line_key_and_reason() {
    let (err, file) = refused(
        "[siit]\npool6 = \"64:ff9b:1::/96\"\neam = [\n  { ipv4 = \"192.0.2.0/24\", ipv6 = \"2001:db8::/64\" },\n]\n",
    );
    // The toml parser locates an error inside one entry of an inline list at
    // the list itself (line 3, column 7).
    assert!(
        err.starts_with(&format!(
            "sixgate: {file}:3:7: siit.eam[0]: suffix lengths differ"
        )),
        "{err}"
    );
    assert!(err.contains("RFC 7757"), "{err}");
}

#[test]
fn unknown_key_in_an_eam_entry_is_refused() {
    let (err, file) = refused(
        "[siit]\neam = [ { ipv4 = \"192.0.2.6\", ipv6 = \"2001:db8::6\", rout = \"ipv4\" } ]\n",
    );
    assert!(err.starts_with(&format!("sixgate: {file}:2:")), "{err}");
    assert!(err.contains("siit.eam[0]"), "{err}");
    assert!(err.contains("unknown field `rout`"), "{err}");
}

#[test]
fn managed_routes_without_a_side_name_the_entry() {
    let (err, file) = refused(
        "[siit]\nmanage_routes = true\neam = [\n  { ipv4 = \"192.0.2.6\", ipv6 = \"2001:db8::6\", route = \"ipv4\" },\n  { ipv4 = \"192.0.2.7\", ipv6 = \"2001:db8::7\" },\n]\n",
    );
    assert!(
        err.starts_with(&format!(
            "sixgate: {file}:5:3: siit.eam[1].route: manage_routes = true needs"
        )),
        "{err}"
    );
}

#[test]
fn bad_values_name_their_key() {
    for (text, key, reason) in [
        (
            "[siit]\ntun = \"a-name-far-too-long\"\npool6 = \"64:ff9b:1::/96\"\n",
            "siit.tun",
            "longer than 15 bytes",
        ),
        (
            "[siit]\nmtu = 576\npool6 = \"64:ff9b:1::/96\"\n",
            "siit.mtu",
            "IPv6 needs at least 1280",
        ),
        (
            "[siit]\npool6 = \"64:ff9b:1::/80\"\n",
            "siit.pool6",
            "RFC 6052",
        ),
        (
            "[siit]\npool6 = \"64:ff9b:1::/96\"\nlowest_ipv6_mtu = 1000\n",
            "siit.lowest_ipv6_mtu",
            "1280",
        ),
        (
            "[siit]\npool6 = \"64:ff9b:1::/96\"\nown_ipv4 = \"192.0.2\"\n",
            "siit.own_ipv4",
            "invalid",
        ),
        (
            "[siit]\npool6 = \"64:ff9b:1::/96\"\nrfc6791_v4 = [\"192.0.2.1/24\"]\n",
            "siit.rfc6791_v4",
            "bits after /24 must be zero",
        ),
        (
            "[siit]\ntun = \"siit0\"\n",
            "siit.pool6",
            "nothing could be translated",
        ),
    ] {
        let (err, file) = refused(text);
        assert!(err.starts_with(&format!("sixgate: {file}:")), "{err}");
        assert!(err.contains(&format!(": {key}: ")), "want key {key}: {err}");
        assert!(err.contains(reason), "want {reason:?}: {err}");
    }
}
