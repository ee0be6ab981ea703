//! SIIT end to end: an IPv6-only host and an IPv4-only host talk through the
//! real `sixgate siit` in a namespace, with ping, curl, nc and tracepath.
//! Each test builds its own namespaces (see `siit_net`), torn down on drop.

mod common;
mod siit_net;

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use common::{have_root, Netns};
use siit_net::{
    config_text, eventually, http_server, metric_value, random_file, sha256, text, Options,
    Topology, GW4, H4, H4_AS_V6, H6, H6B_AS_V4, H6_AS_V4, OWN_V4, OWN_V6,
};

#[test]
fn ping_crosses_the_translator_both_ways() {
    if !have_root("ping_crosses_the_translator_both_ways") {
        return;
    }
    let net = Topology::start("ping", Options::default());
    let out = net
        .h6
        .try_exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", H4_AS_V6]);
    assert!(out.status.success(), "h6 -> h4:\n{}", text(&out));
    assert!(text(&out).contains("3 received"), "{}", text(&out));

    let out = net
        .h4
        .try_exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", H6_AS_V4]);
    assert!(out.status.success(), "h4 -> h6:\n{}", text(&out));
    assert!(text(&out).contains("3 received"), "{}", text(&out));
}

/// A 12 MiB file over HTTP, IPv6 client -> IPv4 server and the reverse;
/// returns the topology for more checks.
fn curl_both_ways(tag: &str, options: Options) -> Topology {
    let net = Topology::start(tag, options);
    let served = net.dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    let blob = served.join("blob.bin");
    random_file(&blob, 12 * 1024 * 1024);
    let want = sha256(&blob);

    // IPv6 client -> IPv4 server.
    let server4 = http_server(&net.h4, H4, &served);
    let got = net.dir.path().join("from-h4.bin");
    let url = format!("http://[{H4_AS_V6}]:8080/blob.bin");
    let out = net.h6.try_exec(&[
        "curl",
        "-sS",
        "-g",
        "--max-time",
        "60",
        "-o",
        got.to_str().expect("utf-8"),
        &url,
    ]);
    assert!(out.status.success(), "curl {url}:\n{}", text(&out));
    assert_eq!(sha256(&got), want, "the file fetched from h4 differs");
    drop(server4);

    // IPv4 client -> IPv6 server.
    let server6 = http_server(&net.h6, H6, &served);
    let got = net.dir.path().join("from-h6.bin");
    let url = format!("http://{H6_AS_V4}:8080/blob.bin");
    let out = net.h4.try_exec(&[
        "curl",
        "-sS",
        "--max-time",
        "60",
        "-o",
        got.to_str().expect("utf-8"),
        &url,
    ]);
    assert!(out.status.success(), "curl {url}:\n{}", text(&out));
    assert_eq!(sha256(&got), want, "the file fetched from h6 differs");
    drop(server6);
    net
}

/// Without offloads, one packet per read, and over two queues.
#[test]
fn curl_moves_12_mb_packet_by_packet_through_two_queues_with_matching_sha256() {
    if !have_root("curl_moves_12_mb_packet_by_packet_through_two_queues_with_matching_sha256") {
        return;
    }
    let net = curl_both_ways(
        "curl",
        Options {
            queues: 2,
            plain: true,
            ..Options::default()
        },
    );
    let link = net.gw.exec(&["ip", "-d", "link", "show", &net.tun]);
    assert!(link.contains("multi_queue"), "{link}");
}

#[test]
fn curl_moves_12_mb_as_tcp_super_packets_with_tun_offloads() {
    if !have_root("curl_moves_12_mb_as_tcp_super_packets_with_tun_offloads") {
        return;
    }
    let net = curl_both_ways("gso", Options::default());
    let link = net.gw.exec(&["ip", "-d", "link", "show", &net.tun]);
    assert!(link.contains("vnet_hdr on"), "{link}");
    // The transfers went through as super-packets, translated whole.
    let gso = net.metric("sixgate_siit_gso_packets_total");
    assert!(gso > 0, "no TCP super-packet was translated");
    let errors = net.metric("sixgate_siit_tun_errors_total{op=\"vnet_header\"}");
    assert_eq!(errors, 0);
}

#[test]
fn ipv6_hosts_reach_each_other_through_their_ipv4_forms_by_hairpinning() {
    if !have_root("ipv6_hosts_reach_each_other_through_their_ipv4_forms_by_hairpinning") {
        return;
    }
    let net = Topology::start(
        "hairpin",
        Options {
            second_v6_host: true,
            ..Options::default()
        },
    );
    // h6 knows h6b only by its IPv4 address 192.0.2.8, written under pool6
    // (what a DNS64 would hand out): RFC 7757 §4.2, 6->4->6 in one pass.
    let h6b_pool6 = "64:ff9b:1::c000:208";
    let out = net
        .h6
        .try_exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", h6b_pool6]);
    assert!(out.status.success(), "h6 -> h6b:\n{}", text(&out));
    let hairpins = net.metric("sixgate_siit_packets_total{direction=\"hairpin\"}");
    assert!(
        hairpins >= 6,
        "3 requests and 3 replies hairpinned, got {hairpins}"
    );

    // h4 still reaches h6b by its EAM address, without a hairpin.
    let out = net
        .h4
        .try_exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", H6B_AS_V4]);
    assert!(out.status.success(), "h4 -> h6b:\n{}", text(&out));
}

/// A UDP echo server in python, bound to `addr:port`, in `ns`.
fn udp_echo(ns: &Netns, addr: &str, port: u16) -> common::Background {
    let family = if addr.contains(':') {
        "AF_INET6"
    } else {
        "AF_INET"
    };
    let program = format!(
        "import socket\n\
         s = socket.socket(socket.{family}, socket.SOCK_DGRAM)\n\
         s.bind(('{addr}', {port}))\n\
         while True:\n    data, peer = s.recvfrom(65535)\n    s.sendto(b'echo:' + data, peer)\n"
    );
    ns.spawn(&["python3", "-c", &program])
}

/// `printf PAYLOAD | nc -u -w 1 ADDR PORT` in `ns`: what came back.
fn nc_udp(ns: &Netns, addr: &str, port: u16, payload: &str) -> String {
    let mut child = ns
        .command(&["nc", "-u", "-w", "1", addr, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nc");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(payload.as_bytes())
        .expect("write to nc");
    let out = child.wait_with_output().expect("nc output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// With offloads (the default) the kernel hands UDP over with partial
/// checksums, which the driver completes before translation.
#[test]
fn udp_datagrams_are_echoed_across_the_translator_both_ways() {
    if !have_root("udp_datagrams_are_echoed_across_the_translator_both_ways") {
        return;
    }
    let net = udp_both_ways("udp", Options::default());
    let errors = net.metric("sixgate_siit_tun_errors_total{op=\"vnet_header\"}");
    assert_eq!(errors, 0);
}

#[test]
fn udp_datagrams_are_echoed_both_ways_packet_by_packet() {
    if !have_root("udp_datagrams_are_echoed_both_ways_packet_by_packet") {
        return;
    }
    udp_both_ways(
        "udpplain",
        Options {
            plain: true,
            ..Options::default()
        },
    );
}

fn udp_both_ways(tag: &str, options: Options) -> Topology {
    let net = Topology::start(tag, options);
    let _echo4 = udp_echo(&net.h4, H4, 5353);
    let _echo6 = udp_echo(&net.h6, H6, 5353);

    // The server may need a moment to bind; retry the first exchange.
    let token = format!("h6-to-h4-{}", std::process::id());
    let mut reply = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            reply = nc_udp(&net.h6, H4_AS_V6, 5353, &token);
            reply.contains(&format!("echo:{token}"))
        }),
        "no UDP echo from h4 through the translator, got {reply:?}"
    );

    let token = format!("h4-to-h6-{}", std::process::id());
    assert!(
        eventually(Duration::from_secs(10), || {
            reply = nc_udp(&net.h4, H6_AS_V4, 5353, &token);
            reply.contains(&format!("echo:{token}"))
        }),
        "no UDP echo from h6 through the translator, got {reply:?}"
    );

    // A datagram larger than any link: fragmented by the sender, translated
    // fragment by fragment, reassembled by the receiver.
    let big = "x".repeat(4000);
    let want = big.len() + "echo:".len();
    let mut got = 0;
    assert!(
        eventually(Duration::from_secs(10), || {
            got = nc_udp(&net.h4, H6_AS_V4, 5353, &big).len();
            got == want
        }),
        "4000-byte datagram 4->6: {got} bytes came back, not {want}"
    );
    assert!(
        eventually(Duration::from_secs(10), || {
            got = nc_udp(&net.h6, H4_AS_V6, 5353, &big).len();
            got == want
        }),
        "4000-byte datagram 6->4: {got} bytes came back, not {want}"
    );
    net
}

#[test]
fn tracepath_shows_the_translator_as_a_hop() {
    if !have_root("tracepath_shows_the_translator_as_a_hop") {
        return;
    }
    let net = Topology::start("trace", Options::default());

    // IPv6 host -> IPv4 host: the gateway's kernel (IPv6), the translator
    // itself (its own IPv6 address), the gateway's kernel again (IPv4, seen
    // through pool6), then h4.
    let out = net.h6.try_exec(&["tracepath", "-n", "-m", "8", H4_AS_V6]);
    let trace = text(&out);
    assert!(out.status.success(), "{trace}");
    assert!(
        trace.contains(OWN_V6),
        "no translator hop {OWN_V6}:\n{trace}"
    );
    assert!(trace.contains(H4_AS_V6), "h4 not reached:\n{trace}");
    let gw4_as_v6 = "64:ff9b:1::c633:6401"; // 198.51.100.1 under pool6
    assert!(
        trace.contains(gw4_as_v6),
        "no IPv4-side hop {gw4_as_v6} ({GW4} under pool6):\n{trace}"
    );

    // IPv4 host -> IPv6 host: the translator answers from its own IPv4
    // address; the gateway's IPv6 hop has no IPv4 mapping and shows up with
    // an RFC 6791 pool address.
    let out = net.h4.try_exec(&["tracepath", "-n", "-m", "8", H6_AS_V4]);
    let trace = text(&out);
    assert!(out.status.success(), "{trace}");
    assert!(
        trace.contains(OWN_V4),
        "no translator hop {OWN_V4}:\n{trace}"
    );
    assert!(trace.contains(H6_AS_V4), "h6 not reached:\n{trace}");
    let rfc6791_hop = trace
        .split_whitespace()
        .filter_map(|word| word.parse::<std::net::Ipv4Addr>().ok())
        .find(|addr| matches!(addr.octets(), [192, 0, 2, last] if last >= 128));
    assert!(
        rfc6791_hop.is_some(),
        "no hop from the RFC 6791 pool 192.0.2.128/25:\n{trace}"
    );
}

#[test]
fn metrics_count_packets_by_direction_and_drops_by_reason() {
    if !have_root("metrics_count_packets_by_direction_and_drops_by_reason") {
        return;
    }
    // Through `sixgate run` this time: the same part, started by the
    // every-section command.
    let net = Topology::start(
        "metrics",
        Options {
            via_run: true,
            ..Options::default()
        },
    );
    let out = net
        .h6
        .try_exec(&["ping", "-c", "4", "-i", "0.2", "-W", "2", H4_AS_V6]);
    assert!(out.status.success(), "{}", text(&out));

    let (status, body) = net.admin_get("/metrics");
    assert_eq!(status, 200);
    // 4 echo requests 6->4 and 4 replies 4->6, at least (the kernel may add
    // its own chatter on the TUN device).
    let six_to_four = metric_value(&body, "sixgate_siit_packets_total{direction=\"6to4\"}");
    let four_to_six = metric_value(&body, "sixgate_siit_packets_total{direction=\"4to6\"}");
    assert!(six_to_four >= 4, "6to4 = {six_to_four}\n{body}");
    assert!(four_to_six >= 4, "4to6 = {four_to_six}\n{body}");

    // A source that is neither in the EAM table nor under pool6 cannot be
    // translated: each such packet is dropped and counted by that reason.
    let sample = "sixgate_siit_drops_total{reason=\"untranslatable_source\"}";
    let before = metric_value(&body, sample);
    let stray = "2001:db8:6::99";
    let dev = net
        .h6
        .exec(&["ip", "-6", "-o", "route", "get", H4_AS_V6])
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .expect("route to h4 has a dev")
        .to_owned();
    net.h6.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        &format!("{stray}/64"),
        "dev",
        &dev,
        "nodad",
    ]);
    let out = net.h6.try_exec(&[
        "ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", stray, H4_AS_V6,
    ]);
    assert!(
        !out.status.success(),
        "an untranslatable source got through:\n{}",
        text(&out)
    );
    let after = net.metric(sample);
    assert!(after >= before + 3, "{sample}: {before} -> {after}");
    let drops = net.metric("sixgate_siit_packets_total{direction=\"drop\"}");
    assert!(drops >= 3, "drop verdicts: {drops}");

    // The admin port also shows the table in force.
    let (status, table) = net.admin_get("/siit");
    assert_eq!(status, 200, "{table}");
    assert!(
        table.contains(&format!("eam {H4}/32 <-> {H4_AS_V6}/128")),
        "{table}"
    );
    assert!(
        table.contains(&format!("route {H6_AS_V4}/32 dev {}", net.tun)),
        "{table}"
    );
}

#[test]
fn sighup_reloads_the_eam_table_and_its_routes() {
    if !have_root("sighup_reloads_the_eam_table_and_its_routes") {
        return;
    }
    let mut net = Topology::start("reload", Options::default());
    let ping = |ns: &Netns, addr: &str| {
        ns.try_exec(&["ping", "-c", "1", "-W", "1", addr])
            .status
            .success()
    };
    assert!(
        ping(&net.h4, H6_AS_V4),
        "h6 unreachable as {H6_AS_V4} before the reload"
    );

    // h6 moves from 192.0.2.6 to 192.0.2.9 in the EAM table.
    let renumbered = "192.0.2.9";
    let text = config_text(&net.tun).replace(
        &format!("ipv4 = \"{H6_AS_V4}\""),
        &format!("ipv4 = \"{renumbered}\""),
    );
    assert!(text.contains(renumbered));
    std::fs::write(net.dir.path().join("siit.toml"), text).expect("rewrite the config");
    net.sixgate.signal("HUP");
    net.sixgate
        .wait_for_log("siit reloaded", Duration::from_secs(10));

    let routes = net.gw.exec(&["ip", "-4", "route", "show", "dev", &net.tun]);
    assert!(
        routes.contains(renumbered),
        "no route to {renumbered}:\n{routes}"
    );
    assert!(
        !routes.contains(H6_AS_V4),
        "stale route to {H6_AS_V4}:\n{routes}"
    );
    assert!(
        ping(&net.h4, renumbered),
        "h6 unreachable as {renumbered} after the reload"
    );
    assert!(
        !ping(&net.h4, H6_AS_V4),
        "h6 still reachable as {H6_AS_V4} after the reload"
    );
    assert!(
        ping(&net.h6, H4_AS_V6),
        "h4 unreachable from h6 after the reload"
    );
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_managed_routes() {
    if !have_root("sigterm_stops_cleanly_and_removes_the_managed_routes") {
        return;
    }
    let mut net = Topology::start("term", Options::default());
    let routes4 = net.gw.exec(&["ip", "-4", "route", "show", "dev", &net.tun]);
    let routes6 = net.gw.exec(&["ip", "-6", "route", "show", "dev", &net.tun]);
    for want in [H6_AS_V4, OWN_V4, "192.0.2.128/25"] {
        assert!(routes4.contains(want), "no route {want}:\n{routes4}");
    }
    for want in ["64:ff9b:1::/96", H4_AS_V6, OWN_V6] {
        assert!(routes6.contains(want), "no route {want}:\n{routes6}");
    }

    net.sixgate.signal("TERM");
    let code = net.sixgate.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "log:\n{}", net.sixgate.log_lines.join("\n"));
    let log = net.sixgate.log_lines.join("\n");
    for route in ["64:ff9b:1::/96", "192.0.2.6/32", "2001:db8:46::2/128"] {
        assert!(
            log.contains(&format!("removed route {route} dev {}", net.tun)),
            "route {route} not removed by sixgate:\n{log}"
        );
    }
    assert!(log.contains("siit stopped"), "{log}");
    assert!(!log.contains("cannot remove route"), "{log}");

    // Nothing left: no route through the device and no device.
    for family in ["-4", "-6"] {
        let left = net
            .gw
            .exec(&["ip", family, "route", "show", "table", "all"]);
        assert!(!left.contains(&net.tun), "routes left behind:\n{left}");
    }
    let link = net.gw.try_exec(&["ip", "link", "show", &net.tun]);
    assert!(!link.status.success(), "the TUN device outlived sixgate");
}
