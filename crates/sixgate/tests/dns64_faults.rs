//! Faults: forwarders that are down, slow or answer garbage; a flood of
//! malformed queries. sixgate answers SERVFAIL in bounded time (or stale data
//! when enabled), never hangs, and its memory stays flat.

mod common;
mod dns64_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use dns64_support::*;

const NSP: &str = "prefix = \"2001:db8:64::/96\"";

/// A loopback port with nothing listening (UDP queries get ICMP unreachable).
fn closed_port() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap()
}

fn timed_dig(addr: SocketAddr, args: &[&str]) -> (Dig, Duration) {
    let started = Instant::now();
    let d = dig(addr, args);
    (d, started.elapsed())
}

#[test]
fn forwarder_down_gives_servfail_in_bounded_time() {
    let s = start_sixgate(
        &[closed_port()],
        &format!("{NSP}\nupstream_timeout_ms = 500"),
    );
    let (d, took) = timed_dig(s.addr, &["a-only.sixgate.test", "AAAA"]);
    assert_eq!(d.status, "SERVFAIL");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_dead_forwarder_fails_over_to_the_next() {
    let nsd = start_nsd();
    let s = start_sixgate(
        &[closed_port(), nsd.addr],
        &format!("{NSP}\nupstream_timeout_ms = 500"),
    );
    let d = dig(s.addr, &["a-only.sixgate.test", "AAAA"]);
    assert_eq!(d.data("AAAA"), vec!["2001:db8:64::c633:640a"]);
}

#[test]
fn slow_forwarder_beyond_the_timeout_gives_servfail_in_bounded_time() {
    let nsd = start_nsd();
    let slow = FakeForwarder::delaying(nsd.addr, Duration::from_secs(3));
    let s = start_sixgate(
        &[slow.addr],
        &format!("{NSP}\nupstream_timeout_ms = 300\nupstream_attempts = 2"),
    );
    let (d, took) = timed_dig(s.addr, &["a-only.sixgate.test", "AAAA"]);
    assert_eq!(d.status, "SERVFAIL");
    // Two tries of 300 ms each, for the AAAA and the A query at once.
    assert!(took < Duration::from_millis(2500), "took {took:?}");
}

#[test]
fn garbage_from_the_forwarder_gives_servfail_and_is_counted() {
    // Random bytes, or a well-formed answer with the wrong ID or question.
    let mut n = 0u32;
    let garbage = FakeForwarder::new(move |query| {
        n = n.wrapping_add(1);
        match n % 3 {
            0 => Some(
                (0..200u32)
                    .map(|i| u8::try_from((i * 7 + n) % 256).unwrap())
                    .collect(),
            ),
            1 => {
                let mut wrong_id = query.to_vec();
                wrong_id[0] ^= 0xff;
                wrong_id[2] |= 0x80;
                Some(wrong_id)
            }
            _ => {
                let mut wrong_question = raw_query(
                    u16::from_be_bytes([query[0], query[1]]),
                    "evil.example",
                    1,
                    false,
                );
                wrong_question[2] |= 0x80;
                Some(wrong_question)
            }
        }
    });
    let s = start_sixgate(
        &[garbage.addr],
        &format!("{NSP}\nupstream_timeout_ms = 300"),
    );
    let (d, took) = timed_dig(s.addr, &["a-only.sixgate.test", "AAAA"]);
    assert_eq!(d.status, "SERVFAIL");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let (d, _) = timed_dig(s.addr, &["a-only.sixgate.test", "A"]);
    assert_eq!(d.status, "SERVFAIL");
    let (_, metrics) = s.sg.get("/metrics");
    assert!(
        metric(
            &metrics,
            "sixgate_dns64_upstream_errors_total{reason=\"bad_answer\""
        ) >= 1.0,
        "{metrics}"
    );
    assert!(garbage.seen.load(std::sync::atomic::Ordering::Relaxed) >= 2);
}

#[test]
fn stale_answer_is_served_when_every_forwarder_fails() {
    let nsd = start_nsd();
    let s = start_sixgate(
        &[nsd.addr],
        &format!("{NSP}\nserve_stale = true\nupstream_timeout_ms = 300"),
    );
    // short.sixgate.test has TTL 1.
    assert_eq!(
        dig(s.addr, &["short.sixgate.test", "AAAA"]).data("AAAA"),
        vec!["2001:db8:64::c633:641e"]
    );
    drop(nsd);
    std::thread::sleep(Duration::from_millis(2100));
    let d = dig(s.addr, &["short.sixgate.test", "AAAA"]);
    assert_eq!(d.status, "NOERROR");
    assert_eq!(d.data("AAAA"), vec!["2001:db8:64::c633:641e"]);
    let (_, metrics) = s.sg.get("/metrics");
    assert!(metric(&metrics, "sixgate_dns64_stale_answers_total") >= 1.0);
}

#[test]
fn without_serve_stale_an_expired_answer_is_not_served() {
    let nsd = start_nsd();
    let s = start_sixgate(&[nsd.addr], &format!("{NSP}\nupstream_timeout_ms = 300"));
    assert_eq!(
        dig(s.addr, &["short.sixgate.test", "AAAA"])
            .data("AAAA")
            .len(),
        1
    );
    drop(nsd);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        dig(s.addr, &["short.sixgate.test", "AAAA"]).status,
        "SERVFAIL"
    );
}

#[test]
fn flood_of_malformed_queries_does_not_grow_memory() {
    let nsd = start_nsd();
    let s = start_sixgate(&[nsd.addr], &format!("{NSP}\ncache_mib = 1"));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut flood = |count: u32| {
        for i in 0..count {
            let len = usize::try_from(next() % 300).unwrap();
            let mut msg: Vec<u8> = (0..len).map(|_| next().to_be_bytes()[0]).collect();
            if i % 2 == 0 && msg.len() > 12 {
                msg[2] &= 0x07; // a query, opcode 0, so that it is parsed further
                msg[4] = 0;
                msg[5] = 1;
            }
            let _ = socket.send_to(&msg, s.addr);
            // Drain answers now and then so our own buffer does not fill.
            let mut buf = [0u8; 1024];
            while socket.recv_from(&mut buf).is_ok() {}
            if i % 1000 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    flood(20_000); // warm up allocators
    let before = rss_kib(s.sg.pid());
    flood(100_000);
    std::thread::sleep(Duration::from_millis(200));
    let after = rss_kib(s.sg.pid());
    assert!(
        after < before + 4096,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // Still serving.
    assert_eq!(
        dig(s.addr, &["a-only.sixgate.test", "AAAA"]).data("AAAA"),
        vec!["2001:db8:64::c633:640a"]
    );
    let (_, metrics) = s.sg.get("/metrics");
    assert!(
        metric(
            &metrics,
            "sixgate_dns64_queries_total{type=\"other\",rcode=\"FORMERR\""
        ) > 0.0,
        "{metrics}"
    );
}

#[test]
fn many_distinct_names_stay_within_the_cache_budget() {
    let nsd = start_nsd();
    let s = start_sixgate(&[nsd.addr], &format!("{NSP}\ncache_mib = 1"));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // Negative answers (NXDOMAIN with SOA) for distinct names are cached.
    let mut buf = [0u8; 1024];
    for i in 0..6000u16 {
        let q = raw_query(i, &format!("n{i}.sixgate.test"), 28, false);
        socket.send_to(&q, s.addr).unwrap();
        let _ = socket.recv_from(&mut buf);
    }
    let (_, metrics) = s.sg.get("/metrics");
    let bytes = metric(&metrics, "sixgate_dns64_cache_bytes");
    assert!(
        bytes > 0.0 && bytes <= f64::from(1u32 << 20),
        "cache bytes {bytes}"
    );
    let entries = metric(&metrics, "sixgate_dns64_cache_entries");
    assert!(entries < 6000.0, "evictions happened: {entries} entries");
}

#[test]
fn stale_answer_is_given_after_the_client_timer_while_forwarders_are_slow() {
    let nsd = start_nsd();
    let slow = FakeForwarder::delaying(nsd.addr, Duration::from_millis(1500));
    let s = start_sixgate(
        &[slow.addr],
        &format!(
            "{NSP}\nserve_stale = true\nstale_answer_after_ms = 200\nupstream_timeout_ms = 4000"
        ),
    );
    // Primed through the slow forwarder; TTL 1.
    assert_eq!(
        dig(s.addr, &["short.sixgate.test", "AAAA"])
            .data("AAAA")
            .len(),
        1
    );
    std::thread::sleep(Duration::from_millis(1100));
    let (d, took) = timed_dig(s.addr, &["short.sixgate.test", "AAAA"]);
    assert_eq!(d.data("AAAA"), vec!["2001:db8:64::c633:641e"]);
    assert_eq!(
        d.answer[0].ttl, 30,
        "RFC 8767 §4: stale answers carry TTL 30"
    );
    assert!(
        took < Duration::from_millis(1200),
        "answered before the forwarder: {took:?}"
    );
    // A query that joins the refresh still running gets the stale answer too.
    let (d, took) = timed_dig(s.addr, &["short.sixgate.test", "AAAA"]);
    assert_eq!((d.data("AAAA").len(), d.answer[0].ttl), (1, 30));
    assert!(
        took < Duration::from_millis(1200),
        "joined and answered stale: {took:?}"
    );
    // The refresh went on in the background and was cached.
    std::thread::sleep(Duration::from_millis(1600));
    let (_, metrics) = s.sg.get("/metrics");
    assert!(metric(&metrics, "sixgate_dns64_stale_answers_total") >= 1.0);
    assert!(
        slow.seen.load(std::sync::atomic::Ordering::SeqCst) >= 4,
        "refreshed upstream"
    );
}

#[test]
fn upstream_queries_use_random_ids_and_source_ports() {
    // A forwarder that notes each query's source port and ID and never answers.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let forwarder = socket.local_addr().unwrap();
    let s = start_sixgate(
        &[forwarder],
        &format!("{NSP}\nupstream_timeout_ms = 100\nupstream_attempts = 1"),
    );
    let names = [
        "r1.sixgate.test",
        "r2.sixgate.test",
        "r3.sixgate.test",
        "r4.sixgate.test",
        "r5.sixgate.test",
        "r6.sixgate.test",
    ];
    let mut seen = Vec::new();
    for name in names {
        let (d, _) = timed_dig(s.addr, &[name, "AAAA"]);
        assert_eq!(d.status, "SERVFAIL");
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            assert!(n >= 12);
            seen.push((peer.port(), u16::from_be_bytes([buf[0], buf[1]])));
        }
    }
    // An AAAA and an A query per name.
    assert_eq!(seen.len(), 12, "{seen:?}");
    let mut ports: Vec<u16> = seen.iter().map(|(p, _)| *p).collect();
    let mut ids: Vec<u16> = seen.iter().map(|(_, i)| *i).collect();
    ports.sort_unstable();
    ports.dedup();
    ids.sort_unstable();
    ids.dedup();
    // Collisions are possible but rare (birthday odds about 0.1% for IDs).
    assert!(ports.len() >= 10, "source ports {ports:?}");
    assert!(ids.len() >= 10, "IDs {ids:?}");
    // Not a counter: the IDs are spread over the whole 16-bit space.
    assert!(
        ids.last().unwrap() - ids.first().unwrap() > 1000,
        "IDs {ids:?}"
    );
}
