//! The proxy over time: large transfers both ways (splice and userspace
//! copy), reload under load, SIGTERM drain and its deadline, access log.

mod common;
mod proxy_common;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use proxy_common::{exchange, Proxy, TestServer};

/// Byte `i` of the test stream.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)).to_le_bytes()[0]
}

/// A backend that sends `total` bytes of the pattern, `chunk` at a time with
/// `pause` in between, then closes.
fn streamer(total: usize, chunk: usize, pause: Duration) -> TestServer {
    TestServer::start("127.0.0.1:0", move |mut s| {
        let mut sent = 0;
        let mut buf = vec![0u8; chunk];
        while sent < total {
            let n = chunk.min(total - sent);
            for (k, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(sent + k);
            }
            if s.write_all(&buf[..n]).is_err() {
                return;
            }
            sent += n;
            std::thread::sleep(pause);
        }
    })
}

/// Reads the whole stream from `addr` and checks every byte.
fn read_checked(addr: SocketAddr) -> usize {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => {
                for (k, b) in buf[..n].iter().enumerate() {
                    assert_eq!(*b, pattern(got + k), "byte {} differs", got + k);
                }
                got += n;
            }
            Err(e) => panic!("read failed after {got} bytes: {e}"),
        }
    }
}

fn one_route(backend: SocketAddr, extra: &str) -> String {
    format!(
        "[proxy]\n{extra}\n[[proxy.listeners]]\nname = \"plain\"\nlisten = [\"[::1]:0\"]\n\
         [[proxy.routes]]\nname = \"r\"\nbackends = [\"{backend}\"]\nhealth_check_interval_ms = 0\n"
    )
}

fn large_transfers_are_intact(splice: bool) {
    const TOTAL: usize = 64 << 20;
    let down = streamer(TOTAL, 1 << 20, Duration::ZERO);
    // And the other way: the backend counts what it receives until the
    // client's end of stream (a half-close passed on by the proxy).
    let up = TestServer::start("127.0.0.1:0", |mut s| {
        let mut buf = vec![0u8; 1 << 16];
        let (mut n, mut bad) = (0usize, 0usize);
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    bad += buf[..k]
                        .iter()
                        .enumerate()
                        .filter(|(i, b)| **b != pattern(n + i))
                        .count();
                    n += k;
                }
            }
        }
        let _ = s.write_all(format!("{n} {bad}").as_bytes());
    });
    let mut proxy = Proxy::start(
        "large",
        &format!(
            "[proxy]\nsplice = {splice}\n[[proxy.listeners]]\nname = \"down\"\nlisten = [\"[::1]:0\"]\n\
             [[proxy.listeners]]\nname = \"up\"\nlisten = [\"[::1]:0\"]\n\
             [[proxy.routes]]\nname = \"down\"\nlistener = \"down\"\nbackends = [\"{}\"]\n\
             [[proxy.routes]]\nname = \"up\"\nlistener = \"up\"\nbackends = [\"{}\"]\n",
            down.addr, up.addr
        ),
    );
    assert_eq!(read_checked(proxy.listener("down")), TOTAL);

    let mut s = TcpStream::connect(proxy.listener("up")).unwrap();
    let data: Vec<u8> = (0..TOTAL / 4).map(pattern).collect();
    s.write_all(&data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, format!("{} 0", TOTAL / 4));

    assert_eq!(
        proxy.metric(
            "sixgate_proxy_transferred_bytes_total{route=\"down\",direction=\"to_client\"}"
        ),
        TOTAL as u64
    );
    assert_eq!(
        proxy
            .metric("sixgate_proxy_transferred_bytes_total{route=\"up\",direction=\"to_backend\"}"),
        (TOTAL / 4) as u64
    );
    assert_eq!(proxy.metric("sixgate_proxy_splice_fallbacks_total"), 0);
}

#[test]
fn large_transfers_both_ways_are_intact_with_splice() {
    large_transfers_are_intact(true);
}

#[test]
fn large_transfers_both_ways_are_intact_with_the_userspace_copy() {
    large_transfers_are_intact(false);
}

#[test]
fn reload_keeps_a_long_running_transfer_alive_and_new_connections_use_the_new_backend() {
    const TOTAL: usize = 4 << 20;
    let slow = streamer(TOTAL, 64 << 10, Duration::from_millis(25));
    let fresh = TestServer::named("NEW");
    let mut proxy = Proxy::start("reload", &one_route(slow.addr, ""));
    let addr = proxy.listener("plain");
    let transfer = std::thread::spawn(move || read_checked(addr));
    std::thread::sleep(Duration::from_millis(300));
    proxy.reload(&one_route(fresh.addr, ""), 1);
    assert_eq!(exchange(addr, b""), "NEW\n");
    assert_eq!(
        transfer.join().expect("transfer"),
        TOTAL,
        "the old transfer was cut"
    );
    assert_eq!(proxy.metric("sixgate_proxy_reloads_total"), 1);
}

#[test]
fn sigterm_stops_accepting_and_drains_open_connections_before_exiting() {
    const TOTAL: usize = 2 << 20;
    let slow = streamer(TOTAL, 64 << 10, Duration::from_millis(40));
    let mut proxy = Proxy::start("drain", &one_route(slow.addr, "drain_timeout_secs = 30"));
    let addr = proxy.listener("plain");
    let transfer = std::thread::spawn(move || read_checked(addr));
    std::thread::sleep(Duration::from_millis(200));
    let (status, _) = proxy.sg.get("/readyz");
    assert_eq!(status, 200);
    let sent = Instant::now();
    proxy.sg.signal("TERM");
    proxy
        .sg
        .wait_for_log("proxy draining", Duration::from_secs(5));
    // While it drains, the admin port still answers, and says not ready.
    let (status, body) = proxy.sg.get("/readyz");
    assert_eq!((status, body.trim()), (503, "not ready: draining"));
    // The listener is closed: new clients are refused.
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    assert_eq!(
        transfer.join().expect("transfer"),
        TOTAL,
        "the open transfer was cut"
    );
    let code = proxy.sg.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0));
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "waited for the deadline, not the connection"
    );
    assert!(proxy
        .sg
        .log_lines
        .iter()
        .any(|l| l.contains("sixgate::access") && l.contains("closed")));
}

#[test]
fn drain_deadline_closes_connections_that_do_not_finish() {
    // A backend that never sends and never closes.
    let hold = TestServer::start("127.0.0.1:0", |mut s| {
        let mut buf = [0u8; 16];
        let _ = s.read(&mut buf);
    });
    let mut proxy = Proxy::start("deadline", &one_route(hold.addr, "drain_timeout_secs = 1"));
    let addr = proxy.listener("plain");
    let mut held = TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.metric("sixgate_proxy_connections_active{route=\"r\"}") < 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    proxy.sg.signal("TERM");
    let closed = proxy_common::closed_within(&mut held, Duration::from_secs(5))
        .expect("connection not closed");
    assert!(
        closed >= Duration::from_millis(800),
        "closed before the deadline: {closed:?}"
    );
    assert_eq!(proxy.sg.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(sent.elapsed() < Duration::from_secs(5));
    assert!(proxy
        .sg
        .log_lines
        .iter()
        .any(|l| l.contains("drain_deadline")));
}
