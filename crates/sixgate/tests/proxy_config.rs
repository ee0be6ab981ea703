//! `sixgate check` on proxy configs: the shipped example passes, mistakes
//! are refused with the file, line, key and reason.

mod common;

use common::{sixgate_bin, TempDir};

fn check(text: &str) -> (bool, String) {
    let dir = TempDir::new("proxycfg");
    let path = dir.write("c.toml", text);
    let out = std::process::Command::new(sixgate_bin())
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), all)
}

#[test]
fn shipped_example_config_is_valid() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/examples/proxy.toml"
    );
    let (ok, out) = check(&std::fs::read_to_string(path).unwrap());
    assert!(ok, "{out}");
}

#[test]
fn route_on_an_unknown_listener_names_the_line_and_key() {
    let (ok, out) = check(
        "[proxy]\n[[proxy.listeners]]\nname = \"a\"\n[[proxy.routes]]\nname = \"r\"\n\
         listener = \"b\"\nbackends = [\"127.0.0.1:1\"]\n",
    );
    assert!(!ok);
    assert!(out.contains("c.toml:6:"), "{out}");
    assert!(
        out.contains("proxy.routes[0].listener: no listener is named \"b\""),
        "{out}"
    );
}

#[test]
fn bad_prefix_backend_and_sni_are_refused_while_reading() {
    for (text, needle) in [
        ("[proxy]\n[[proxy.listeners]]\nallow = [\"fd00::1/8\"]\n[[proxy.routes]]\nname = \"r\"\nbackends = [\"h:1\"]\n", "host bits"),
        ("[proxy]\n[[proxy.routes]]\nname = \"r\"\nbackends = [\"nowhere\"]\n", "NAME:PORT"),
        ("[proxy]\n[[proxy.routes]]\nname = \"r\"\nsni = [\"a b\"]\nbackends = [\"h:1\"]\n", "host name"),
        ("[proxy]\n[[proxy.routes]]\nname = \"r\"\nbalance = \"random\"\nbackends = [\"h:1\"]\n", "unknown variant"),
    ] {
        let (ok, out) = check(text);
        assert!(!ok, "{text}");
        assert!(out.contains(needle), "{needle}: {out}");
    }
}
