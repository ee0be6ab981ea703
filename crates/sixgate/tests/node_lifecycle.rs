//! `sixgate node` keeping its rules in place and owning only what it adds:
//! `watch` repairs drift and counts it, other tables and routes are left
//! alone, bad configs and failed applies change nothing. Each test runs the
//! real binary and the real `nft` inside its own "node" namespace.

mod common;

use std::time::{Duration, Instant};

use common::{have_root, sixgate_bin, veth, Netns, Sixgate, TempDir};

fn node_cmd(ns: &Netns, args: &[&str]) -> (bool, String, String) {
    let bin = sixgate_bin();
    let mut full = vec![bin.to_str().expect("utf-8 path")];
    full.extend_from_slice(args);
    let out = ns.try_exec(&full);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A "node" namespace whose uplink (a veth to a peer namespace) has a global
/// IPv6 address, plus a second interface for routes. Returns (node, peer,
/// uplink, tun-like interface).
fn node_with_uplink(global: bool) -> (Netns, Netns, String, String) {
    let node = Netns::new("node");
    let peer = Netns::new("peer");
    let (uplink, _) = veth(&node, &peer);
    node.exec(&["ip", "addr", "add", "fe80::1/64", "dev", &uplink, "nodad"]);
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
        "[node]\nuplink = \"{uplink}\"\nwatch_period = \"300ms\"\n\n\
         [[node.rewrites]]\npreset = \"azure-lb-probe\"\n\n\
         [[node.routes]]\nprefix = \"64:ff9b::/96\"\ndev = \"{tun}\"\n\n\
         [[node.routes]]\nprefix = \"192.0.2.0/24\"\ndev = \"{tun}\"\n{extra}"
    )
}

fn table(ns: &Netns) -> Option<String> {
    let out = ns.try_exec(&["nft", "-s", "list", "table", "ip6", "sixgate"]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn owned_routes(ns: &Netns) -> String {
    let mut all = ns.exec(&["ip", "-6", "route", "show", "proto", "166"]);
    all.push_str(&ns.exec(&["ip", "-4", "route", "show", "proto", "166"]));
    all
}

fn metric(ns: &Netns, sixgate: &Sixgate, name: &str) -> u64 {
    let url = format!("http://{}/metrics", sixgate.admin());
    let body = ns.exec(&["curl", "-sf", &url]);
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
fn watch_restores_flushed_or_deleted_rules_and_routes_and_counts_the_drift() {
    if !have_root("watch_restores_flushed_or_deleted_rules_and_routes_and_counts_the_drift") {
        return;
    }
    let (node, _peer, uplink, tun) = node_with_uplink(true);
    let dir = TempDir::new("node-watch");
    let path = dir.write("node.toml", &config(&uplink, &tun, ""));
    let path = path.to_str().expect("utf-8");
    let mut sixgate = Sixgate::start(
        Some(&node),
        &["node", "watch", "--config", path, "--admin", "127.0.0.1:0"],
        &["admin"],
    );
    sixgate.wait_for_log("node rules applied", Duration::from_secs(10));
    let applied = table(&node).expect("table after the first apply");
    let routes = owned_routes(&node);
    assert_eq!(routes.lines().count(), 3, "{routes}");
    let ready = node.exec(&["curl", "-s", &format!("http://{}/readyz", sixgate.admin())]);
    assert_eq!(ready.trim(), "ready");
    assert_eq!(
        metric(&node, &sixgate, "sixgate_node_drift_total{what=\"table\"}"),
        0
    );

    // Someone wipes every table of the node.
    node.exec(&["nft", "flush", "ruleset"]);
    sixgate.wait_for_log("(drift 1)", Duration::from_secs(5));
    wait_until("the table back", Duration::from_secs(5), || {
        table(&node).as_deref() == Some(applied.as_str())
    });

    // Someone deletes just the table.
    node.exec(&["nft", "delete", "table", "ip6", "sixgate"]);
    sixgate.wait_for_log("(drift 2)", Duration::from_secs(5));
    wait_until("the table back", Duration::from_secs(5), || {
        table(&node).as_deref() == Some(applied.as_str())
    });

    // Someone edits a chain.
    node.exec(&["nft", "add", "rule", "ip6", "sixgate", "prerouting", "drop"]);
    sixgate.wait_for_log("(drift 3)", Duration::from_secs(5));
    wait_until("the edit undone", Duration::from_secs(5), || {
        table(&node).as_deref() == Some(applied.as_str())
    });

    // Someone removes a route.
    node.exec(&["ip", "-6", "route", "del", "64:ff9b::/96"]);
    wait_until("the route back", Duration::from_secs(5), || {
        owned_routes(&node) == routes
    });

    wait_until("the metrics", Duration::from_secs(5), || {
        metric(&node, &sixgate, "sixgate_node_drift_total{what=\"routes\"}") == 1
    });
    assert_eq!(
        metric(&node, &sixgate, "sixgate_node_drift_total{what=\"table\"}"),
        3
    );
    assert_eq!(metric(&node, &sixgate, "sixgate_node_ipv6_rules_active"), 1);
    assert_eq!(metric(&node, &sixgate, "sixgate_node_applies_total"), 5);

    // Stopping leaves the rules in place.
    sixgate.signal("TERM");
    assert_eq!(sixgate.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(table(&node).as_deref(), Some(applied.as_str()));
}

#[test]
fn apply_and_delete_leave_other_owners_tables_and_routes_unchanged() {
    if !have_root("apply_and_delete_leave_other_owners_tables_and_routes_unchanged") {
        return;
    }
    let (node, _peer, uplink, tun) = node_with_uplink(true);
    // kube-proxy's table, and a table with sixgate's name in another family.
    let others = "table inet kube-proxy {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tct state invalid counter drop\n\t}\n}\ntable ip sixgate {\n\tchain x {\n\t\tip saddr 10.0.0.1 counter\n\t}\n}\n";
    let mut nft = node
        .command(&["nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nft");
    std::io::Write::write_all(nft.stdin.as_mut().expect("stdin"), others.as_bytes())
        .expect("write");
    drop(nft.stdin.take());
    assert!(nft.wait().expect("nft").success());
    node.exec(&[
        "ip",
        "-6",
        "route",
        "add",
        "2001:db8:77::/64",
        "dev",
        &tun,
        "proto",
        "static",
    ]);
    let ruleset_before = node.exec(&["nft", "list", "ruleset"]);
    let routes_before = node.exec(&["ip", "-6", "route", "show", "table", "all"]);

    let dir = TempDir::new("node-own");
    // Besides the TUN routes, one through a next hop on the uplink.
    let via = "\n[[node.routes]]\nprefix = \"2001:db8:64::/96\"\nvia = \"2001:db8:1::2\"\n";
    let path = dir.write("node.toml", &config(&uplink, &tun, via));
    let path = path.to_str().expect("utf-8");
    let (ok, out, err) = node_cmd(&node, &["node", "apply", "--config", path]);
    assert!(ok, "{out}{err}");
    assert!(table(&node).is_some());
    let routes = owned_routes(&node);
    assert!(
        routes.contains(&format!("2001:db8:64::/96 via 2001:db8:1::2 dev {uplink} ")),
        "{routes}"
    );
    assert_eq!(routes.lines().count(), 4, "{routes}");
    let ruleset = node.exec(&["nft", "list", "ruleset"]);
    for name in ["table inet kube-proxy", "table ip sixgate"] {
        let block = |text: &str| {
            let start = text.find(name).expect("table present");
            text[start..].split("\n}\n").next().unwrap_or("").to_owned()
        };
        assert_eq!(block(&ruleset), block(&ruleset_before), "{name} changed");
    }

    let (ok, _, err) = node_cmd(&node, &["node", "diff", "--config", path]);
    assert!(ok, "diff right after apply: {err}");

    let (ok, out, err) = node_cmd(&node, &["node", "delete"]);
    assert!(ok, "{out}{err}");
    assert_eq!(node.exec(&["nft", "list", "ruleset"]), ruleset_before);
    assert_eq!(
        node.exec(&["ip", "-6", "route", "show", "table", "all"]),
        routes_before
    );
    assert!(owned_routes(&node).trim().is_empty());
}

#[test]
fn bad_address_prefix_or_interface_is_refused_with_key_and_reason_before_anything_is_applied() {
    if !have_root(
        "bad_address_prefix_or_interface_is_refused_with_key_and_reason_before_anything_is_applied",
    ) {
        return;
    }
    let (node, _peer, uplink, tun) = node_with_uplink(true);
    let dir = TempDir::new("node-bad");
    let cases = [
        (
            format!("[node]\nuplink = \"{uplink}\"\n[[node.rewrites]]\nfrom = \"fe80::12345\"\nto = \"2001:db8::1\"\n"),
            "node.rewrites[0].from",
            "invalid IPv6 address",
        ),
        (
            format!("[node]\nuplink = \"{uplink}\"\n[node.egress]\npod_prefixes = [\"fd00:40::1/56\"]\n"),
            "node.egress.pod_prefixes[0]",
            "did you mean fd00:40::/56",
        ),
        (
            "[node]\nuplink = \"eth0;flush\"\n".to_owned(),
            "node.uplink",
            "an interface name takes letters",
        ),
        (
            format!("[node]\nuplink = \"{uplink}\"\n[[node.rewrites]]\npreset = \"azure-lb-probe\"\ninterface = \"nosuch0\"\n"),
            "node.rewrites[0].interface",
            "no interface named `nosuch0`",
        ),
        (
            format!("[node]\n[[node.routes]]\nprefix = \"64:ff9b::/96\"\nvia = \"192.0.2.1\"\ndev = \"{tun}\"\n"),
            "node.routes[0].via",
            "is not of the family",
        ),
    ];
    for (i, (text, key, reason)) in cases.iter().enumerate() {
        let path = dir.write(&format!("bad{i}.toml"), text);
        let (ok, out, err) = node_cmd(
            &node,
            &["node", "apply", "--config", path.to_str().expect("utf-8")],
        );
        assert!(!ok, "accepted:\n{text}\n{out}");
        assert!(
            err.contains(key) && err.contains(reason),
            "case {i}: want {key}: {reason}, got:\n{err}"
        );
        assert!(table(&node).is_none(), "case {i}: a table was created");
        assert!(
            owned_routes(&node).trim().is_empty(),
            "case {i}: a route was added"
        );
    }
}

#[test]
fn a_failed_apply_leaves_the_previous_rules_intact() {
    if !have_root("a_failed_apply_leaves_the_previous_rules_intact") {
        return;
    }
    let (node, _peer, uplink, tun) = node_with_uplink(true);
    let dir = TempDir::new("node-fail");
    let good = dir.write("good.toml", &config(&uplink, &tun, ""));
    let (ok, out, err) = node_cmd(
        &node,
        &["node", "apply", "--config", good.to_str().expect("utf-8")],
    );
    assert!(ok, "{out}{err}");
    let before = table(&node).expect("table");
    let routes_before = owned_routes(&node);

    // A new rewrite, and a route through a next hop the node cannot reach:
    // the kernel refuses the route, and the table must stay as it was.
    let bad = dir.write(
        "bad.toml",
        &config(
            &uplink,
            &tun,
            &format!(
                "\n[[node.rewrites]]\nfrom = \"fe80::77\"\nto = \"2001:db8:77::77\"\ninterface = \"{uplink}\"\n\
                 \n[[node.routes]]\nprefix = \"2001:db8:64::/96\"\nvia = \"2001:db8:99::1\"\n"
            ),
        ),
    );
    let (ok, out, err) = node_cmd(
        &node,
        &["node", "apply", "--config", bad.to_str().expect("utf-8")],
    );
    assert!(!ok, "bad apply succeeded:\n{out}");
    assert!(
        err.contains("node.routes[2]: cannot install route 2001:db8:64::/96"),
        "{err}"
    );
    assert_eq!(table(&node).as_deref(), Some(before.as_str()));
    assert!(!before.contains("fe80::77"));
    // The routes of the good config are still there.
    for line in routes_before.lines() {
        assert!(owned_routes(&node).contains(line), "{line} gone");
    }

    // diff tells the difference, with exit status 1.
    let (same, out, _) = node_cmd(
        &node,
        &["node", "diff", "--config", bad.to_str().expect("utf-8")],
    );
    assert!(!same);
    assert!(
        out.contains("+ \t\tiifname") && out.contains("fe80::77"),
        "{out}"
    );
}

#[test]
fn without_a_global_ipv6_address_on_the_uplink_the_ipv6_rules_are_skipped_with_one_log_line() {
    if !have_root(
        "without_a_global_ipv6_address_on_the_uplink_the_ipv6_rules_are_skipped_with_one_log_line",
    ) {
        return;
    }
    let (node, _peer, uplink, tun) = node_with_uplink(false);
    let dir = TempDir::new("node-noipv6");
    let path = dir.write("node.toml", &config(&uplink, &tun, ""));
    let (ok, out, err) = node_cmd(
        &node,
        &["node", "apply", "--config", path.to_str().expect("utf-8")],
    );
    assert!(ok, "{out}{err}");
    let skipped: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("IPv6 rules skipped"))
        .collect();
    assert_eq!(skipped.len(), 1, "{err}");
    assert!(
        skipped[0].contains(&format!("no global IPv6 address on uplink {uplink}")),
        "{err}"
    );
    assert!(table(&node).is_none());
    // The routes do not depend on it; the reply route of the rewrite does.
    let routes = owned_routes(&node);
    assert!(
        routes.contains("64:ff9b::/96") && routes.contains("192.0.2.0/24"),
        "{routes}"
    );
    assert!(!routes.contains("2603:1062"), "{routes}");
}
