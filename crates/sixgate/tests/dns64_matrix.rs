//! The RFC 6147 test matrix: a real `sixgate dns64` forwarding to a real NSD
//! on loopback, asked with `dig`. One test per rule.

mod common;
mod dns64_support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use dns64_support::*;

const NSP: &str = "prefix = \"2001:db8:64::/96\"";

fn setup(extra: &str) -> (Daemon, Dns64) {
    let nsd = start_nsd();
    let dns64 = start_sixgate(&[nsd.addr], extra);
    (nsd, dns64)
}

#[test]
fn a_only_name_gets_a_synthesized_aaaa_with_ttl_capped_by_the_soa() {
    let (_nsd, s) = setup(NSP);
    let d = dig(s.addr, &["a-only.sixgate.test", "AAAA"]);
    assert_eq!(d.status, "NOERROR");
    assert_eq!(d.data("AAAA"), vec!["2001:db8:64::c633:640a"]);
    // RFC 6147 §5.1.7: min(A TTL 300, SOA negative TTL min(300, 120)) = 120.
    assert_eq!(d.answer[0].ttl, 120);
    // A TTL below the SOA's: the A TTL.
    let d = dig(s.addr, &["a-only-60.sixgate.test", "AAAA"]);
    assert_eq!(d.data("AAAA"), vec!["2001:db8:64::c633:643c"]);
    assert!(
        d.answer[0].ttl <= 60 && d.answer[0].ttl > 50,
        "{:?}",
        d.answer
    );
}

#[test]
fn dual_stack_name_keeps_its_native_aaaa_with_prefer_native() {
    let (_nsd, s) = setup(NSP);
    let d = dig(s.addr, &["dual.sixgate.test", "AAAA"]);
    assert_eq!(d.status, "NOERROR");
    assert_eq!(d.data("AAAA"), vec!["2001:db8::11"]);
}

#[test]
fn aaaa_only_name_keeps_its_aaaa() {
    let (_nsd, s) = setup(NSP);
    let d = dig(s.addr, &["v6only.sixgate.test", "AAAA"]);
    assert_eq!(d.data("AAAA"), vec!["2001:db8::12"]);
}

#[test]
fn synthesize_all_replaces_native_aaaa_except_in_exempt_zones_and_without_a() {
    let (_nsd, s) = setup(&format!(
        "{NSP}\naaaa = \"synthesize-all\"\nexempt = [\"exempt.sixgate.test\"]"
    ));
    assert_eq!(
        dig(s.addr, &["dual.sixgate.test", "AAAA"]).data("AAAA"),
        vec!["2001:db8:64::c633:640b"]
    );
    assert_eq!(
        dig(s.addr, &["www.exempt.sixgate.test", "AAAA"]).data("AAAA"),
        vec!["2001:db8::20"]
    );
    assert_eq!(
        dig(s.addr, &["v6only.sixgate.test", "AAAA"]).data("AAAA"),
        vec!["2001:db8::12"]
    );
}

#[test]
fn cname_chain_into_an_a_only_name_is_followed_and_kept() {
    let (_nsd, s) = setup(NSP);
    let d = dig(s.addr, &["alias.sixgate.test", "AAAA"]);
    assert_eq!(d.status, "NOERROR");
    let chain: Vec<(String, String, String)> = d
        .answer
        .iter()
        .map(|r| (r.name.clone(), r.rtype.clone(), r.data.clone()))
        .collect();
    assert_eq!(
        chain,
        vec![
            (
                "alias.sixgate.test.".into(),
                "CNAME".into(),
                "mid.sixgate.test.".into()
            ),
            (
                "mid.sixgate.test.".into(),
                "CNAME".into(),
                "a-only.sixgate.test.".into()
            ),
            (
                "a-only.sixgate.test.".into(),
                "AAAA".into(),
                "2001:db8:64::c633:640a".into()
            ),
        ]
    );
}

#[test]
fn dname_chain_is_followed_and_kept() {
    let (_nsd, s) = setup(NSP);
    let d = dig(s.addr, &["www.old.sixgate.test", "AAAA"]);
    assert_eq!(d.status, "NOERROR");
    assert_eq!(d.data("DNAME"), vec!["new.sixgate.test."]);
    assert_eq!(d.data("CNAME"), vec!["www.new.sixgate.test."]);
    assert_eq!(d.data("AAAA"), vec!["2001:db8:64::c633:6428"]);
}

#[test]
fn nxdomain_stays_nxdomain_with_its_soa() {
    let (_nsd, s) = setup(NSP);
    let d = dig(s.addr, &["nonexistent.sixgate.test", "AAAA"]);
    assert_eq!(d.status, "NXDOMAIN");
    assert!(d.answer.is_empty());
    assert_eq!(d.authority.first().map(|r| r.rtype.as_str()), Some("SOA"));
}

#[test]
fn servfail_from_the_authority_gives_servfail() {
    let (_nsd, s) = setup(NSP);
    // NSD has broken.test configured without data: SERVFAIL for AAAA and A.
    let d = dig(s.addr, &["www.broken.test", "AAAA"]);
    assert_eq!(d.status, "SERVFAIL");
}

#[test]
fn ipv4_mapped_aaaa_is_treated_as_absent_and_synthesized() {
    let (_nsd, s) = setup(NSP);
    let d = dig(s.addr, &["mapped.sixgate.test", "AAAA"]);
    assert_eq!(d.data("AAAA"), vec!["2001:db8:64::c633:640d"]);
}

#[test]
fn well_known_prefix_never_carries_private_ipv4() {
    let (_nsd, s) = setup("prefix = \"64:ff9b::/96\"");
    let d = dig(s.addr, &["private-and-global.sixgate.test", "AAAA"]);
    assert_eq!(d.data("AAAA"), vec!["64:ff9b::808:808"]);
    let d = dig(s.addr, &["private.sixgate.test", "AAAA"]);
    assert_eq!(d.status, "NOERROR");
    assert!(d.answer.is_empty(), "{}", d.text);
}

#[test]
fn network_specific_prefix_carries_private_ipv4() {
    let (_nsd, s) = setup(NSP);
    let d = dig(s.addr, &["private.sixgate.test", "AAAA"]);
    assert_eq!(
        d.data("AAAA"),
        vec!["2001:db8:64::a01:203", "2001:db8:64::c0a8:707"]
    );
}

#[test]
fn mapped_ranges_limit_which_ipv4_is_synthesized() {
    let (_nsd, s) = setup(&format!("{NSP}\nmapped = [\"10.0.0.0/8\"]"));
    assert_eq!(
        dig(s.addr, &["private.sixgate.test", "AAAA"]).data("AAAA"),
        vec!["2001:db8:64::a01:203"]
    );
    let d = dig(s.addr, &["a-only.sixgate.test", "AAAA"]);
    assert_eq!((d.status.as_str(), d.answer.len()), ("NOERROR", 0));
}

#[test]
fn ipv4only_arpa_is_answered_from_the_prefix() {
    let (_nsd, s) = setup(NSP);
    let d = dig(s.addr, &["ipv4only.arpa", "AAAA"]);
    assert_eq!(
        d.data("AAAA"),
        vec!["2001:db8:64::c000:aa", "2001:db8:64::c000:ab"]
    );
    let d = dig(s.addr, &["ipv4only.arpa", "A"]);
    assert_eq!(d.data("A"), vec!["192.0.0.170", "192.0.0.171"]);
}

#[test]
fn ptr_under_the_prefix_is_a_cname_to_in_addr_arpa_and_resolved() {
    let (_nsd, s) = setup(NSP);
    let d = dig(s.addr, &["-x", "2001:db8:64::c633:640a"]);
    assert_eq!(d.status, "NOERROR");
    assert_eq!(d.data("CNAME"), vec!["10.100.51.198.in-addr.arpa."]);
    assert_eq!(d.data("PTR"), vec!["a-only.sixgate.test."]);
}

#[test]
fn other_types_are_forwarded_unchanged() {
    let (_nsd, s) = setup(NSP);
    assert_eq!(
        dig(s.addr, &["dual.sixgate.test", "A"]).data("A"),
        vec!["198.51.100.11"]
    );
    assert_eq!(
        dig(s.addr, &["mx.sixgate.test", "MX"]).data("MX"),
        vec!["10 a-only.sixgate.test."]
    );
}

#[test]
fn synthesized_answer_has_extended_error_synthesized_and_no_ad() {
    let (_nsd, s) = setup(NSP);
    let d = dig(
        s.addr,
        &["+dnssec", "+adflag", "a-only.sixgate.test", "AAAA"],
    );
    assert_eq!(d.data("AAAA").len(), 1);
    assert!(!d.has_flag("ad"));
    assert_eq!(
        d.ede.as_deref().map(|e| e.starts_with("29")),
        Some(true),
        "{}",
        d.text
    );
    // A real answer does not carry it.
    let d = dig(s.addr, &["dual.sixgate.test", "AAAA"]);
    assert_eq!(d.ede, None);
}

#[test]
fn dnssec_ok_with_checking_disabled_gets_no_synthesis() {
    let (_nsd, s) = setup(NSP);
    let d = dig(
        s.addr,
        &["+dnssec", "+cdflag", "a-only.sixgate.test", "AAAA"],
    );
    assert_eq!(d.status, "NOERROR");
    assert!(d.answer.is_empty(), "{}", d.text);
}

#[test]
fn clients_outside_the_allow_list_are_refused() {
    let (_nsd, s) = setup(&format!("{NSP}\nallow = [\"10.0.0.0/8\"]"));
    assert_eq!(
        dig(s.addr, &["a-only.sixgate.test", "AAAA"]).status,
        "REFUSED"
    );
}

#[test]
fn malformed_query_gets_formerr() {
    let (_nsd, s) = setup(NSP);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut q = raw_query(0xbeef, "a-only.sixgate.test", 28, false);
    q[5] = 2; // two questions, one present
    socket.send_to(&q, s.addr).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    assert!(n >= 12);
    assert_eq!(&buf[..2], &[0xbe, 0xef]);
    assert_eq!(buf[2] & 0x80, 0x80, "QR");
    assert_eq!(buf[3] & 0x0f, 1, "FORMERR");
}

#[test]
fn large_answer_is_truncated_over_udp_and_whole_over_tcp() {
    let (_nsd, s) = setup(NSP);
    let d = dig(s.addr, &["+noedns", "+ignore", "many.big.test", "A"]);
    assert!(d.has_flag("tc"), "{}", d.text);
    assert!(d.answer.is_empty());
    // The client's EDNS buffer size is honoured: 40 A records fit 1232 bytes.
    let d = dig(s.addr, &["+bufsize=1232", "+ignore", "many.big.test", "A"]);
    assert!(!d.has_flag("tc"));
    assert_eq!(d.answer.len(), 40);
    let d = dig(s.addr, &["+bufsize=600", "+ignore", "many.big.test", "A"]);
    assert!(d.has_flag("tc"), "{}", d.text);
    let d = dig(s.addr, &["+tcp", "+noedns", "many.big.test", "A"]);
    assert!(!d.has_flag("tc"));
    assert_eq!(d.answer.len(), 40);
    // 40 synthesized AAAA records do not fit 512 bytes either.
    let d = dig(s.addr, &["+noedns", "+ignore", "many.big.test", "AAAA"]);
    assert!(d.has_flag("tc"));
    assert_eq!(
        dig(s.addr, &["+tcp", "many.big.test", "AAAA"]).answer.len(),
        40
    );
}

#[test]
fn one_tcp_connection_carries_several_pipelined_queries() {
    let (_nsd, s) = setup(NSP);
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let names = [
        "a-only.sixgate.test",
        "dual.sixgate.test",
        "v6only.sixgate.test",
    ];
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let q = raw_query(100 + u16::try_from(i).unwrap(), name, 28, true);
        out.extend_from_slice(&u16::try_from(q.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&q);
    }
    stream.write_all(&out).unwrap();
    let mut ids = Vec::new();
    for _ in 0..names.len() {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut msg).unwrap();
        assert_eq!(msg[3] & 0x0f, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([msg[6], msg[7]]), 1, "one answer each");
        ids.push(u16::from_be_bytes([msg[0], msg[1]]));
    }
    ids.sort_unstable();
    assert_eq!(ids, vec![100, 101, 102]);
}

#[test]
fn answers_and_negative_answers_are_cached() {
    let (nsd, s) = setup(NSP);
    assert_eq!(
        dig(s.addr, &["a-only.sixgate.test", "AAAA"])
            .data("AAAA")
            .len(),
        1
    );
    assert_eq!(
        dig(s.addr, &["nonexistent.sixgate.test", "AAAA"]).status,
        "NXDOMAIN"
    );
    drop(nsd); // the authority is gone: only the cache can answer now
    let d = dig(s.addr, &["a-only.sixgate.test", "AAAA"]);
    assert_eq!(d.data("AAAA"), vec!["2001:db8:64::c633:640a"]);
    assert!(d.answer[0].ttl <= 120);
    assert_eq!(
        dig(s.addr, &["nonexistent.sixgate.test", "AAAA"]).status,
        "NXDOMAIN"
    );
    let (_, metrics) = s.sg.get("/metrics");
    assert!(
        metric(&metrics, "sixgate_dns64_cache_hits_total") >= 2.0,
        "{metrics}"
    );
    assert!(metric(&metrics, "sixgate_dns64_synthesized_total") >= 1.0);
    assert!(
        metric(
            &metrics,
            "sixgate_dns64_queries_total{type=\"AAAA\",rcode=\"NXDOMAIN\""
        ) >= 2.0
    );
}

#[test]
fn slow_answers_are_waited_for_and_a_and_aaaa_are_asked_at_once() {
    let nsd = start_nsd();
    let slow = FakeForwarder::delaying(nsd.addr, Duration::from_millis(400));
    let s = start_sixgate(&[slow.addr], &format!("{NSP}\nupstream_timeout_ms = 2000"));
    let d = dig(s.addr, &["a-only.sixgate.test", "AAAA"]);
    assert_eq!(d.data("AAAA"), vec!["2001:db8:64::c633:640a"]);
    // Both upstream queries were held by the slow forwarder at the same time.
    assert_eq!(
        slow.max_concurrent
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

#[test]
fn client_subnets_choose_their_prefix_and_ipv6_listeners_work() {
    let nsd = start_nsd();
    let extra = format!(
        "{NSP}\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\n[[dns64.client_prefixes]]\nclients = [\"::1/128\"]\nprefix = \"2001:db8:99::/96\""
    );
    let mut s = start_sixgate(&[nsd.addr], &extra);
    s.sg.wait_for_log("listening on [::1]", Duration::from_secs(5));
    let v6: SocketAddr =
        s.sg.log_lines
            .iter()
            .filter_map(|l| l.split_once("dns64 listening on ").map(|(_, r)| r))
            .filter_map(|r| r.split_whitespace().next()?.parse().ok())
            .find(SocketAddr::is_ipv6)
            .expect("an IPv6 listener");
    assert_eq!(
        dig(v6, &["a-only.sixgate.test", "AAAA"]).data("AAAA"),
        vec!["2001:db8:99::c633:640a"]
    );
    assert_eq!(
        dig(v6, &["+tcp", "a-only.sixgate.test", "AAAA"]).data("AAAA"),
        vec!["2001:db8:99::c633:640a"]
    );
    let v4 =
        s.sg.log_lines
            .iter()
            .filter_map(|l| l.split_once("dns64 listening on ").map(|(_, r)| r))
            .filter_map(|r| r.split_whitespace().next()?.parse::<SocketAddr>().ok())
            .find(SocketAddr::is_ipv4)
            .expect("an IPv4 listener");
    assert_eq!(
        dig(v4, &["a-only.sixgate.test", "AAAA"]).data("AAAA"),
        vec!["2001:db8:64::c633:640a"]
    );
}

#[test]
fn identical_queries_in_flight_are_sent_upstream_once() {
    let nsd = start_nsd();
    let slow = FakeForwarder::delaying(nsd.addr, Duration::from_millis(300));
    let s = start_sixgate(&[slow.addr], &format!("{NSP}\nupstream_timeout_ms = 2000"));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for id in 0..20u16 {
        socket
            .send_to(&raw_query(id, "a-only.sixgate.test", 28, false), s.addr)
            .unwrap();
    }
    let mut buf = [0u8; 512];
    let mut answered = 0;
    for _ in 0..20 {
        let (n, _) = socket.recv_from(&mut buf).unwrap();
        assert!(n > 12);
        assert_eq!(u16::from_be_bytes([buf[6], buf[7]]), 1, "one AAAA");
        answered += 1;
    }
    assert_eq!(answered, 20);
    // One AAAA and one A query went upstream, not 40.
    assert_eq!(slow.seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    let (_, metrics) = s.sg.get("/metrics");
    // The other 19 joined the first (or, had they come late, found its answer cached).
    let joined = metric(&metrics, "sixgate_dns64_coalesced_total");
    let hits = metric(&metrics, "sixgate_dns64_cache_hits_total");
    assert_eq!(joined + hits, 19.0, "{metrics}");
    assert!(joined >= 1.0, "{metrics}");
}

#[test]
fn truncated_upstream_answer_is_asked_again_over_tcp() {
    let (_nsd, s) = setup(NSP);
    let d = dig(s.addr, &["+tcp", "huge.big.test", "A"]);
    assert_eq!(d.status, "NOERROR");
    assert_eq!(d.answer.len(), 100);
    let d = dig(s.addr, &["+tcp", "huge.big.test", "AAAA"]);
    assert_eq!(d.data("AAAA").len(), 100);
    let (_, metrics) = s.sg.get("/metrics");
    assert!(
        metric(&metrics, "sixgate_dns64_upstream_tcp_fallbacks_total") >= 2.0,
        "{metrics}"
    );
}

#[test]
fn tcp_connections_are_limited_and_idle_ones_closed() {
    let (_nsd, s) = setup(&format!(
        "{NSP}\nmax_tcp_connections = 1\ntcp_idle_ms = 300"
    ));
    let first = TcpStream::connect(s.addr).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    // A second connection over the limit is closed at once.
    let mut second = TcpStream::connect(s.addr).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(second.read(&mut byte).unwrap_or(0), 0, "closed");
    // The first one, idle, is closed after tcp_idle_ms.
    let mut first = first;
    first
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(first.read(&mut byte).unwrap_or(1), 0, "closed when idle");
    let (_, metrics) = s.sg.get("/metrics");
    assert!(
        metric(&metrics, "sixgate_dns64_dropped_total{reason=\"tcp_limit\"") >= 1.0,
        "{metrics}"
    );
    // And a new connection works again.
    assert_eq!(
        dig(s.addr, &["+tcp", "a-only.sixgate.test", "AAAA"])
            .data("AAAA")
            .len(),
        1
    );
}

#[test]
fn popular_answers_are_refreshed_before_they_expire() {
    let (_nsd, s) = setup(NSP);
    // TTL 10: the last second is the prefetch window.
    let first = dig(s.addr, &["prefetch.sixgate.test", "AAAA"]);
    assert_eq!(first.answer[0].ttl, 10);
    std::thread::sleep(Duration::from_millis(9300));
    let second = dig(s.addr, &["prefetch.sixgate.test", "AAAA"]);
    assert_eq!(second.data("AAAA"), vec!["2001:db8:64::c633:6432"]);
    std::thread::sleep(Duration::from_millis(1200));
    // Past the first answer's expiry: answered from the refreshed entry.
    let third = dig(s.addr, &["prefetch.sixgate.test", "AAAA"]);
    assert_eq!(third.data("AAAA"), vec!["2001:db8:64::c633:6432"]);
    let (_, metrics) = s.sg.get("/metrics");
    assert_eq!(
        metric(&metrics, "sixgate_dns64_prefetches_total"),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "sixgate_dns64_cache_misses_total"),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "sixgate_dns64_cache_hits_total"),
        2.0,
        "{metrics}"
    );
}

#[test]
fn without_prefetch_an_expired_answer_is_a_miss() {
    let (_nsd, s) = setup(&format!("{NSP}\nprefetch = false"));
    dig(s.addr, &["prefetch.sixgate.test", "AAAA"]);
    std::thread::sleep(Duration::from_millis(9300));
    dig(s.addr, &["prefetch.sixgate.test", "AAAA"]);
    std::thread::sleep(Duration::from_millis(1200));
    dig(s.addr, &["prefetch.sixgate.test", "AAAA"]);
    let (_, metrics) = s.sg.get("/metrics");
    assert_eq!(
        metric(&metrics, "sixgate_dns64_prefetches_total"),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "sixgate_dns64_cache_misses_total"),
        2.0,
        "{metrics}"
    );
}
