//! The differential test: `sixgate dns64` and Unbound's dns64 module
//! (Debian's `unbound`, our own instance and config on a loopback port)
//! forward to the same NSD and are asked the same questions. Where RFC 6147
//! and Unbound agree the answers must match; where they differ (the list in
//! docs/dns64.md), the difference must still be there, so the list stays true.

mod common;
mod dns64_support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use dns64_support::*;

/// Starts Unbound with `module-config: "dns64 iterator"`, forwarding to `nsd`.
fn start_unbound(nsd: SocketAddr, prefix: &str) -> Daemon {
    for _ in 0..5 {
        let dir = TempDir::new("unbound");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  \
             directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 0\n  \
             num-threads: 1\n  module-config: \"dns64 iterator\"\n  dns64-prefix: {prefix}\n  \
             do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n  qname-minimisation: no\n  \
             local-zone: \"test.\" nodefault\n  local-zone: \"100.51.198.in-addr.arpa.\" nodefault\n  \
             local-zone: \"8.b.d.0.1.0.0.2.ip6.arpa.\" nodefault\n\
             remote-control:\n  control-enable: no\n\
             forward-zone:\n  name: \".\"\n  forward-addr: {}@{}\n",
            nsd.ip(),
            nsd.port()
        );
        let path = dir.write("unbound.conf", &conf);
        let child = Command::new("unbound")
            .args(["-d", "-c"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start unbound (Debian package unbound)");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let daemon = Daemon { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if answers(addr) {
                return daemon;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("unbound did not start");
}

/// What is compared: the RCODE and the answer records without their TTLs.
fn shape(d: &Dig) -> (String, Vec<(String, String, String)>) {
    let mut records: Vec<(String, String, String)> = d
        .answer
        .iter()
        .map(|r| (r.name.clone(), r.rtype.clone(), r.data.clone()))
        .collect();
    records.sort();
    (d.status.clone(), records)
}

const PREFIX: &str = "2001:db8:64::/96";

#[test]
fn sixgate_and_unbound_agree_where_the_rfc_and_unbound_agree() {
    let nsd = start_nsd();
    let unbound = start_unbound(nsd.addr, PREFIX);
    let s = start_sixgate(&[nsd.addr], &format!("prefix = \"{PREFIX}\""));
    let cases: &[&[&str]] = &[
        &["a-only.sixgate.test", "AAAA"],
        &["a-only-60.sixgate.test", "AAAA"],
        &["dual.sixgate.test", "AAAA"],
        &["v6only.sixgate.test", "AAAA"],
        &["alias.sixgate.test", "AAAA"],
        &["www.old.sixgate.test", "AAAA"],
        &["private.sixgate.test", "AAAA"],
        &["private-and-global.sixgate.test", "AAAA"],
        &["nonexistent.sixgate.test", "AAAA"],
        &["www.broken.test", "AAAA"],
        &["www.exempt.sixgate.test", "AAAA"],
        &["a-only.sixgate.test", "A"],
        &["dual.sixgate.test", "A"],
        &["mx.sixgate.test", "MX"],
        &["nonexistent.sixgate.test", "A"],
        &["+tcp", "many.big.test", "AAAA"],
        &["+tcp", "many.big.test", "A"],
        &["+dnssec", "+cdflag", "a-only.sixgate.test", "AAAA"],
        &["+dnssec", "a-only.sixgate.test", "AAAA"],
    ];
    for case in cases {
        let ours = dig(s.addr, case);
        let theirs = dig(unbound.addr, case);
        assert_eq!(
            shape(&ours),
            shape(&theirs),
            "{case:?}\n--- sixgate:\n{}\n--- unbound:\n{}",
            ours.text,
            theirs.text
        );
    }
    // PTR under the prefix: both resolve to the same name (the shape differs, see below).
    let ours = dig(s.addr, &["-x", "2001:db8:64::c633:640a"]);
    let theirs = dig(unbound.addr, &["-x", "2001:db8:64::c633:640a"]);
    assert_eq!(ours.data("PTR"), theirs.data("PTR"));
    assert_eq!(ours.data("PTR"), vec!["a-only.sixgate.test."]);
}

#[test]
fn known_differences_from_unbound_still_hold() {
    let nsd = start_nsd();
    let unbound = start_unbound(nsd.addr, PREFIX);
    let s = start_sixgate(&[nsd.addr], &format!("prefix = \"{PREFIX}\""));

    // 1. RFC 6147 §5.1.7: TTL = min(A TTL, SOA negative TTL). Unbound keeps the A TTL.
    let ours = dig(s.addr, &["a-only.sixgate.test", "AAAA"]);
    let theirs = dig(unbound.addr, &["a-only.sixgate.test", "AAAA"]);
    assert_eq!(ours.answer[0].ttl, 120);
    assert_eq!(theirs.answer[0].ttl, 300);

    // 2. RFC 6147 §5.1.4: ::ffff:0:0/96 AAAA are excluded by default. Unbound returns them.
    let ours = dig(s.addr, &["mapped.sixgate.test", "AAAA"]);
    let theirs = dig(unbound.addr, &["mapped.sixgate.test", "AAAA"]);
    assert_eq!(ours.data("AAAA"), vec!["2001:db8:64::c633:640d"]);
    assert_eq!(theirs.data("AAAA"), vec!["::ffff:198.51.100.13"]);

    // 3. RFC 8880 §7.2: ipv4only.arpa is answered locally. Unbound asks upstream.
    let ours = dig(s.addr, &["ipv4only.arpa", "AAAA"]);
    let theirs = dig(unbound.addr, &["ipv4only.arpa", "AAAA"]);
    assert_eq!(
        ours.data("AAAA"),
        vec!["2001:db8:64::c000:aa", "2001:db8:64::c000:ab"]
    );
    assert!(theirs.data("AAAA").is_empty(), "{}", theirs.text);

    // 4. RFC 6147 §5.3.1: PTR under the prefix is a CNAME to in-addr.arpa.
    //    Unbound answers a PTR owned by the ip6.arpa name instead.
    let ours = dig(s.addr, &["-x", "2001:db8:64::c633:640a"]);
    let theirs = dig(unbound.addr, &["-x", "2001:db8:64::c633:640a"]);
    assert_eq!(ours.data("CNAME"), vec!["10.100.51.198.in-addr.arpa."]);
    assert!(theirs.data("CNAME").is_empty());

    // 5. RFC 8914 / RFC 6147 §5.5: sixgate says "Synthesized" in an Extended DNS Error.
    let ours = dig(s.addr, &["a-only.sixgate.test", "AAAA"]);
    let theirs = dig(unbound.addr, &["a-only.sixgate.test", "AAAA"]);
    assert!(ours.ede.is_some());
    assert!(theirs.ede.is_none());
}

#[test]
fn under_the_well_known_prefix_unbound_synthesizes_private_ipv4_and_sixgate_does_not() {
    // 6. RFC 6052 §3.1: 64:ff9b::/96 must not carry non-global IPv4 addresses.
    let nsd = start_nsd();
    let unbound = start_unbound(nsd.addr, "64:ff9b::/96");
    let s = start_sixgate(&[nsd.addr], "prefix = \"64:ff9b::/96\"");
    let ours = dig(s.addr, &["private-and-global.sixgate.test", "AAAA"]);
    let theirs = dig(unbound.addr, &["private-and-global.sixgate.test", "AAAA"]);
    assert_eq!(ours.data("AAAA"), vec!["64:ff9b::808:808"]);
    assert_eq!(
        theirs.data("AAAA"),
        vec!["64:ff9b::808:808", "64:ff9b::a01:203"]
    );
    // Where only global addresses are involved they agree.
    assert_eq!(
        shape(&dig(s.addr, &["dual.sixgate.test", "AAAA"])),
        shape(&dig(unbound.addr, &["dual.sixgate.test", "AAAA"]))
    );
}
