//! SIGHUP applies a changed `[dns64]` section to the running server: the new
//! prefix is used at once and the cache (made under the old one) is emptied.

mod common;
mod dns64_support;

use std::time::Duration;

use dns64_support::*;

#[test]
fn sighup_applies_a_new_prefix_and_empties_the_cache() {
    let nsd = start_nsd();
    let mut s = start_sixgate(&[nsd.addr], "prefix = \"2001:db8:64::/96\"");
    assert_eq!(
        dig(s.addr, &["a-only.sixgate.test", "AAAA"]).data("AAAA"),
        vec!["2001:db8:64::c633:640a"]
    );
    let config = std::fs::read_to_string(s.dir.path().join("sixgate.toml")).unwrap();
    s.dir.write(
        "sixgate.toml",
        &config.replace("2001:db8:64::/96", "2001:db8:77::/96"),
    );
    s.sg.signal("HUP");
    s.sg.wait_for_log("dns64 reloaded", Duration::from_secs(10));
    assert_eq!(
        dig(s.addr, &["a-only.sixgate.test", "AAAA"]).data("AAAA"),
        vec!["2001:db8:77::c633:640a"]
    );
    // A bad file is refused and the running config kept.
    s.dir.write(
        "sixgate.toml",
        &config.replace("2001:db8:64::/96", "2001:db8:64::/95"),
    );
    s.sg.signal("HUP");
    s.sg.wait_for_log("reload failed", Duration::from_secs(10));
    assert_eq!(
        dig(s.addr, &["a-only.sixgate.test", "AAAA"]).data("AAAA"),
        vec!["2001:db8:77::c633:640a"]
    );
}
