//! Path MTU discovery across the translator: a 1280-byte link sits on the
//! IPv6 side, between the translator and the IPv6 host.
//!
//! ```text
//!  h6 --1500-- r6 --1280-- gw (sixgate) --1500-- h4
//! ```
//!
//! h6 announces a TCP MSS for a 1500-byte path, so h4 sends full 1500-byte
//! IPv4 segments with DF set. Translated, they are 1520-byte IPv6 packets that
//! do not fit the 1280-byte link: the gateway's kernel answers with an ICMPv6
//! Packet Too Big (MTU 1280) to the IPv6 form of h4's address, which routes
//! into the TUN device. Only if sixgate translates it into an ICMPv4
//! Fragmentation Needed with MTU 1260 (RFC 7915 §5.2: minus 20) does h4 lower
//! its segments and the transfer complete.

mod common;
mod siit_net;

use common::have_root;
use siit_net::{http_server, random_file, sha256, text, Options, Topology, H4, H4_AS_V6, H6_AS_V4};

#[test]
fn large_download_completes_across_a_1280_byte_link_because_ptb_is_translated() {
    if !have_root("large_download_completes_across_a_1280_byte_link_because_ptb_is_translated") {
        return;
    }
    download_across_a_narrow_link("pmtu", false);
}

/// The same without TUN offloads, one packet per read.
#[test]
fn large_download_completes_across_a_1280_byte_link_packet_by_packet() {
    if !have_root("large_download_completes_across_a_1280_byte_link_packet_by_packet") {
        return;
    }
    download_across_a_narrow_link("pmtuplain", true);
}

/// With offloads (the default), h4's super-packets are translated whole and
/// cut by the kernel into segments too big for the narrow link, which
/// answers with Packet Too Big: PMTUD must converge all the same.
fn download_across_a_narrow_link(tag: &str, plain: bool) {
    let net = Topology::start(
        tag,
        Options {
            narrow_v6_link: Some(1280),
            plain,
            ..Options::default()
        },
    );
    let served = net.dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    let blob = served.join("blob.bin");
    random_file(&blob, 12 * 1024 * 1024);
    let _server = http_server(&net.h4, H4, &served);

    // Before: h4 knows no smaller MTU towards h6.
    let before = net.h4.exec(&["ip", "-4", "route", "get", H6_AS_V4]);
    assert!(!before.contains("mtu 1260"), "{before}");

    let got = net.dir.path().join("got.bin");
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
    assert_eq!(sha256(&got), sha256(&blob), "the file arrived damaged");

    // h4 learnt the path MTU from the translated Fragmentation Needed:
    // 1280 on the IPv6 side is 1260 on the IPv4 side.
    let after = net.h4.exec(&["ip", "-4", "route", "get", H6_AS_V4]);
    assert!(
        after.contains("mtu 1260"),
        "h4 has no PMTU of 1260 towards {H6_AS_V4}:\n{after}"
    );
}
