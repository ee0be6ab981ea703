//! `sixgate node` with real traffic through network namespaces and the real
//! `nft`: the load balancer probe rewrite (seed 004) and IPv6 egress SNAT
//! (seed 003). `sixgate node` runs inside the test's "node" namespace, where
//! nft only sees that namespace's ruleset.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};

use common::{have_root, sixgate_bin, veth, Netns, TempDir};

const PROBE_FROM: &str = "fe80::1234:5678:9abc";
const PROBE_TO: &str = "2603:1062:0:1:fe80:1234:5678:9abc";

/// A TCP server in a namespace that answers each connection with
/// `peer <source address>` and closes it; killed on drop.
struct PeerEcho(Child);

impl PeerEcho {
    fn start(ns: &Netns, port: u16) -> Self {
        let script = "import socket,sys\n\
            s=socket.socket(socket.AF_INET6)\n\
            s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
            s.bind(('::',int(sys.argv[1])))\n\
            s.listen(8)\n\
            print('ready',flush=True)\n\
            while True:\n\
            \x20   c,a=s.accept()\n\
            \x20   c.sendall(('peer %s\\n'%a[0]).encode())\n\
            \x20   c.close()\n";
        let mut child = ns
            .command(&["python3", "-c", script, &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("server output");
        assert_eq!(line.trim(), "ready", "server did not start");
        Self(child)
    }
}

impl Drop for PeerEcho {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connects from `ns` (bound to `source`, scoped to `ifname` when it is
/// link-local) to `[dest]:port`: `Ok(what the server saw)` or `Err(why not)`.
fn connect(
    ns: &Netns,
    source: Option<(&str, &str)>,
    dest: &str,
    port: u16,
) -> Result<String, String> {
    let script = "import socket,sys\n\
        s=socket.socket(socket.AF_INET6)\n\
        s.settimeout(2)\n\
        if sys.argv[3]:\n\
        \x20   s.bind((sys.argv[3],0,0,socket.if_nametoindex(sys.argv[4])))\n\
        s.connect((sys.argv[1],int(sys.argv[2])))\n\
        print(s.recv(200).decode().strip())\n";
    let (src, ifname) = source.unwrap_or(("", ""));
    let out = ns
        .command(&[
            "python3",
            "-c",
            script,
            dest,
            &port.to_string(),
            src,
            ifname,
        ])
        .output()
        .expect("run python3 client");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("")
            .to_owned())
    }
}

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

fn addr(ns: &Netns, ifname: &str, address: &str) {
    ns.exec(&["ip", "addr", "add", address, "dev", ifname, "nodad"]);
}

/// The packets counted by the rule with this comment, from `sixgate node show`.
fn rule_packets(show: &str, comment: &str) -> u64 {
    let line = show
        .lines()
        .find(|l| l.contains(&format!("comment \"{comment}\"")))
        .unwrap_or_else(|| panic!("no rule {comment:?} in:\n{show}"));
    let after = line.split("counter packets ").nth(1).expect("counter");
    after
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("packet count")
}

#[test]
fn lb_probe_from_link_local_reaches_a_pod_only_with_the_rewrite() {
    if !have_root("lb_probe_from_link_local_reaches_a_pod_only_with_the_rewrite") {
        return;
    }
    // lb [fe80::1234:5678:9abc] --- [fe80::1, 2001:db8:1::1] node [2001:db8:40::1] --- [2001:db8:40::2] pod
    let lb = Netns::new("lb");
    let node = Netns::new("node");
    let pod = Netns::new("pod");
    let (lb_if, uplink) = veth(&lb, &node);
    let (pod_side, pod_if) = veth(&node, &pod);
    addr(&lb, &lb_if, &format!("{PROBE_FROM}/64"));
    addr(&node, &uplink, "fe80::1/64");
    addr(&node, &uplink, "2001:db8:1::1/64");
    addr(&node, &pod_side, "2001:db8:40::1/64");
    addr(&pod, &pod_if, "2001:db8:40::2/64");
    node.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    lb.exec(&[
        "ip",
        "-6",
        "route",
        "add",
        "2001:db8::/32",
        "via",
        "fe80::1",
        "dev",
        &lb_if,
    ]);
    pod.exec(&[
        "ip",
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8:40::1",
    ]);
    let _server = PeerEcho::start(&pod, 8080);
    // A service on the node itself (kube-proxy's health check with
    // externalTrafficPolicy: Local) is probed too, and must keep working.
    let _local = PeerEcho::start(&node, 8081);
    let probe = Some((PROBE_FROM, lb_if.as_str()));

    // Without the rules the node refuses to forward a link-local source.
    let before = connect(&lb, probe, "2001:db8:40::2", 8080);
    assert!(before.is_err(), "connected without the rewrite: {before:?}");
    assert_eq!(
        connect(&lb, probe, "2001:db8:1::1", 8081).expect("probe to the node itself"),
        format!("peer {PROBE_FROM}")
    );

    // The documented preset, with egress SNAT on as well: the pod's answers to
    // the global probe address must not be masqueraded.
    let dir = TempDir::new("node-probe");
    let config = dir.write(
        "node.toml",
        &format!(
            "[node]\nuplink = \"{uplink}\"\n\n[[node.rewrites]]\npreset = \"azure-lb-probe\"\n\n\
             [node.egress]\npod_prefixes = [\"2001:db8:40::/64\"]\n"
        ),
    );
    let config = config.to_str().expect("utf-8 path");
    let (ok, out, err) = node_cmd(&node, &["node", "apply", "--config", config]);
    assert!(ok, "apply failed:\n{out}{err}");

    let seen = connect(&lb, probe, "2001:db8:40::2", 8080).expect("probe through the node");
    assert_eq!(
        seen,
        format!("peer {PROBE_TO}"),
        "the pod must see the global source"
    );
    // The node's own answers go out untracked and rewritten back as well.
    assert_eq!(
        connect(&lb, probe, "2001:db8:1::1", 8081).expect("probe to the node itself"),
        format!("peer {PROBE_TO}")
    );

    let (ok, show, err) = node_cmd(&node, &["node", "show"]);
    assert!(ok, "{err}");
    assert!(rule_packets(&show, "rewrite 0 in") >= 2, "{show}");
    // The answers were rewritten back to the link-local on their way out:
    // the connection above could not have completed otherwise.
    assert!(rule_packets(&show, "rewrite 0 reply out") >= 2, "{show}");
    assert!(
        rule_packets(&show, "rewrite 0 local reply notrack") >= 2,
        "{show}"
    );
    assert_eq!(rule_packets(&show, "egress snat"), 0, "{show}");
    assert!(
        show.contains(&format!(
            "{PROBE_TO}/128 via {PROBE_FROM} dev {uplink} proto 166"
        )),
        "{show}"
    );

    // delete takes it all away again: the probe fails as before.
    let (ok, out, err) = node_cmd(&node, &["node", "delete"]);
    assert!(ok, "delete failed:\n{out}{err}");
    assert!(node.exec(&["nft", "list", "ruleset"]).trim().is_empty());
    assert!(node
        .exec(&["ip", "-6", "route", "show", "proto", "166"])
        .trim()
        .is_empty());
    let after = connect(&lb, probe, "2001:db8:40::2", 8080);
    assert!(after.is_err(), "connected after delete: {after:?}");
}

/// A pod with a ULA behind a node with egress `snat`; the outside must see
/// `seen_outside` and a cluster address the pod itself.
fn egress(snat: &str, seen_outside: &str) {
    // pod [fd00:40::2] --- [fd00:40::1] node [2001:db8:1::1] --- [2001:db8:1::2, fd00:99::2] outside
    let pod = Netns::new("pod");
    let node = Netns::new("node");
    let outside = Netns::new("out");
    let (pod_if, pod_side) = veth(&pod, &node);
    let (uplink, out_if) = veth(&node, &outside);
    addr(&pod, &pod_if, "fd00:40::2/64");
    addr(&node, &pod_side, "fd00:40::1/64");
    if snat != "masquerade" {
        // The outside must reach the SNAT address on the link. Added first:
        // Linux prefers the newest address of a prefix, so masquerade would
        // pick 2001:db8:1::1 and the test tells the two apart.
        addr(&node, &uplink, &format!("{snat}/64"));
    }
    addr(&node, &uplink, "2001:db8:1::1/64");
    addr(&outside, &out_if, "2001:db8:1::2/64");
    addr(&outside, &out_if, "fd00:99::2/64");
    node.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    node.exec(&["ip", "-6", "route", "add", "fd00:99::/64", "dev", &uplink]);
    pod.exec(&["ip", "-6", "route", "add", "default", "via", "fd00:40::1"]);
    // The outside knows the way back to the pods only from its cluster address.
    outside.exec(&[
        "ip",
        "-6",
        "rule",
        "add",
        "from",
        "fd00:99::2",
        "lookup",
        "100",
    ]);
    outside.exec(&[
        "ip",
        "-6",
        "route",
        "add",
        "fd00:40::/64",
        "via",
        "2001:db8:1::1",
        "table",
        "100",
    ]);
    let _server = PeerEcho::start(&outside, 8080);

    let before = connect(&pod, None, "2001:db8:1::2", 8080);
    assert!(
        before.is_err(),
        "reached the outside without SNAT: {before:?}"
    );

    let dir = TempDir::new("node-egress");
    let config = dir.write(
        "node.toml",
        &format!(
            "[node]\nuplink = \"{uplink}\"\n\n[node.egress]\npod_prefixes = [\"fd00:40::/64\"]\n\
             cluster_prefixes = [\"fd00::/8\"]\nsnat = \"{snat}\"\n"
        ),
    );
    let (ok, out, err) = node_cmd(
        &node,
        &["node", "apply", "--config", config.to_str().expect("utf-8")],
    );
    assert!(ok, "apply failed:\n{out}{err}");

    assert_eq!(
        connect(&pod, None, "2001:db8:1::2", 8080).expect("pod to the outside"),
        format!("peer {seen_outside}")
    );
    assert_eq!(
        connect(&pod, None, "fd00:99::2", 8080).expect("pod to a cluster address"),
        "peer fd00:40::2"
    );
    let (_, show, _) = node_cmd(&node, &["node", "show"]);
    assert!(rule_packets(&show, "egress snat") >= 1, "{show}");
}

#[test]
fn pod_with_a_ula_reaches_the_outside_as_the_node_but_the_cluster_as_itself() {
    if !have_root("pod_with_a_ula_reaches_the_outside_as_the_node_but_the_cluster_as_itself") {
        return;
    }
    egress("masquerade", "2001:db8:1::1");
}

#[test]
fn egress_snat_to_an_address_is_what_the_outside_sees() {
    if !have_root("egress_snat_to_an_address_is_what_the_outside_sees") {
        return;
    }
    egress("2001:db8:1::100", "2001:db8:1::100");
}
