//! Backends and protection: health checks, ejection, failover, allow lists
//! and per-source limits, with port routes (no TLS) on loopback.

mod common;
mod proxy_common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use proxy_common::{closed_within, exchange, Proxy, TestServer};

fn port_route(listener_extra: &str, route_extra: &str, backends: &[&TestServer]) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{}\"", b.addr)).collect();
    format!(
        "[proxy]\n[[proxy.listeners]]\nname = \"plain\"\nlisten = [\"[::1]:0\"]\n{listener_extra}\n\
         [[proxy.routes]]\nname = \"r\"\nbackends = [{}]\n{route_extra}\n",
        list.join(", ")
    )
}

#[test]
fn killed_backend_is_marked_down_by_health_checks_and_new_connections_go_to_the_healthy_one() {
    let mut a = TestServer::named("A");
    let b = TestServer::named("B");
    let mut proxy = Proxy::start(
        "health",
        &port_route(
            "",
            "health_check_interval_ms = 100\nhealth_check_timeout_ms = 200\nunhealthy_after = 1\n",
            &[&a, &b],
        ),
    );
    let addr = proxy.listener("plain");
    let seen: Vec<String> = (0..4).map(|_| exchange(addr, b"")).collect();
    assert!(
        seen.contains(&"A\n".to_owned()) && seen.contains(&"B\n".to_owned()),
        "{seen:?}"
    );

    let a_up = format!(
        "sixgate_proxy_backend_up{{route=\"r\",backend=\"{}\"}}",
        a.addr
    );
    assert_eq!(proxy.metric(&a_up), 1);
    a.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.metric(&a_up) != 0 {
        assert!(Instant::now() < deadline, "backend A never marked down");
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..10 {
        assert_eq!(exchange(addr, b""), "B\n");
    }
    // No client connect ever failed: the checks took A out first.
    assert_eq!(
        proxy.metric("sixgate_proxy_errors_total{reason=\"connect_failed\"}"),
        0
    );
    assert!(proxy.metric("sixgate_proxy_backend_health_changes_total") >= 1);
}

#[test]
fn failed_connect_goes_to_the_next_backend_and_ejects_the_dead_one() {
    let mut a = TestServer::named("A");
    let b = TestServer::named("B");
    let mut proxy = Proxy::start(
        "eject",
        &port_route(
            "",
            "health_check_interval_ms = 0\neject_after = 1\neject_secs = 60\n",
            &[&a, &b],
        ),
    );
    let addr = proxy.listener("plain");
    a.stop();
    // Every client gets an answer: a refused connect moves on to B.
    for _ in 0..10 {
        assert_eq!(exchange(addr, b""), "B\n");
    }
    // After the first failure A is ejected and no longer tried.
    assert_eq!(
        proxy.metric("sixgate_proxy_errors_total{reason=\"connect_failed\"}"),
        1
    );
    let a_up = format!(
        "sixgate_proxy_backend_up{{route=\"r\",backend=\"{}\"}}",
        a.addr
    );
    assert_eq!(proxy.metric(&a_up), 0);
}

#[test]
fn client_outside_the_allow_list_is_refused() {
    let b = TestServer::named("B");
    let backend = b.addr;
    let mut proxy = Proxy::start(
        "allow",
        &format!(
            "[proxy]\n\
             [[proxy.listeners]]\nname = \"closed\"\nlisten = [\"[::1]:0\"]\nallow = [\"2001:db8::/32\", \"10.0.0.0/8\"]\n\
             [[proxy.listeners]]\nname = \"open\"\nlisten = [\"[::1]:0\"]\nallow = [\"::1/128\"]\n\
             [[proxy.routes]]\nname = \"c\"\nlistener = \"closed\"\nbackends = [\"{backend}\"]\n\
             [[proxy.routes]]\nname = \"o\"\nlistener = \"open\"\nbackends = [\"{backend}\"]\n"
        ),
    );
    assert_eq!(exchange(proxy.listener("closed"), b""), "");
    assert_eq!(exchange(proxy.listener("open"), b""), "B\n");
    assert_eq!(
        proxy.metric("sixgate_proxy_rejections_total{reason=\"not_allowed\"}"),
        1
    );
    assert_eq!(
        proxy.metric("sixgate_proxy_connections_total{route=\"c\"}"),
        0
    );
    assert_eq!(
        proxy.metric("sixgate_proxy_connections_total{route=\"o\"}"),
        1
    );
}

#[test]
fn connections_per_source_prefix_are_limited() {
    // A backend that holds connections open until the client closes.
    let b = TestServer::start("127.0.0.1:0", |mut s| {
        let mut buf = [0u8; 64];
        let _ = std::io::Read::read(&mut s, &mut buf);
    });
    let mut proxy = Proxy::start(
        "persource",
        &port_route("max_connections_per_source = 2\n", "", &[&b]),
    );
    let addr = proxy.listener("plain");
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.metric("sixgate_proxy_connections_active{route=\"r\"}") < 2 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut third = TcpStream::connect(addr).unwrap();
    assert!(closed_within(&mut third, Duration::from_secs(2)).is_some());
    assert_eq!(
        proxy.metric("sixgate_proxy_rejections_total{reason=\"source_limit\"}"),
        1
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.metric("sixgate_proxy_connections_active{route=\"r\"}") > 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let _fourth = TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.metric("sixgate_proxy_connections_active{route=\"r\"}") < 1 {
        assert!(Instant::now() < deadline, "a freed slot is not reused");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn backend_given_by_name_is_resolved_and_used() {
    let b = TestServer::named("B");
    let port = b.addr.port();
    let mut proxy = Proxy::start(
        "byname",
        &format!(
            "[proxy]\nresolve_interval_secs = 1\n[[proxy.listeners]]\nname = \"plain\"\nlisten = [\"[::1]:0\"]\n\
             [[proxy.routes]]\nname = \"r\"\nbackends = [\"localhost:{port}\"]\n"
        ),
    );
    let addr = proxy.listener("plain");
    assert_eq!(exchange(addr, b""), "B\n");
    let series = format!(
        "sixgate_proxy_backend_up{{route=\"r\",backend=\"localhost:{port} (127.0.0.1:{port})\"}}"
    );
    assert_eq!(proxy.metric(&series), 1);
    // Resolved again every second; the address (and its state) stays.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(exchange(addr, b""), "B\n");
    assert_eq!(
        proxy.metric("sixgate_proxy_errors_total{reason=\"resolve_failed\"}"),
        0
    );
}

#[test]
fn connections_over_the_total_limit_are_closed_at_once() {
    let b = TestServer::start("127.0.0.1:0", |mut s| {
        let mut buf = [0u8; 64];
        let _ = std::io::Read::read(&mut s, &mut buf);
    });
    let mut proxy = Proxy::start(
        "total",
        &format!(
            "[proxy]\nmax_connections = 3\n[[proxy.listeners]]\nname = \"plain\"\nlisten = [\"[::1]:0\"]\n\
             [[proxy.routes]]\nname = \"r\"\nbackends = [\"{}\"]\n",
            b.addr
        ),
    );
    let addr = proxy.listener("plain");
    let _held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.metric("sixgate_proxy_connections_open") < 3 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut extra = TcpStream::connect(addr).unwrap();
    assert!(closed_within(&mut extra, Duration::from_secs(2)).is_some());
    assert_eq!(
        proxy.metric("sixgate_proxy_rejections_total{reason=\"max_connections\"}"),
        1
    );
}

#[test]
fn ipv4_clients_of_a_dual_stack_listener_match_ipv4_prefixes() {
    let b = TestServer::named("B");
    let mut proxy = Proxy::start(
        "dualstack",
        &format!(
            "[proxy]\n[[proxy.listeners]]\nname = \"any\"\nlisten = [\"[::]:0\"]\nallow = [\"127.0.0.0/8\"]\n\
             [[proxy.routes]]\nname = \"r\"\nbackends = [\"{}\"]\n",
            b.addr
        ),
    );
    let port = proxy.listener("any").port();
    // 127.0.0.1 arrives as ::ffff:127.0.0.1 and is let in; ::1 is not.
    assert_eq!(
        exchange(format!("127.0.0.1:{port}").parse().unwrap(), b""),
        "B\n"
    );
    assert_eq!(exchange(format!("[::1]:{port}").parse().unwrap(), b""), "");
    assert_eq!(
        proxy.metric("sixgate_proxy_rejections_total{reason=\"not_allowed\"}"),
        1
    );
}

/// A backend that keeps each connection open, silent, until the client closes.
fn silent() -> TestServer {
    TestServer::start("127.0.0.1:0", |mut s| {
        let mut buf = [0u8; 64];
        while matches!(std::io::Read::read(&mut s, &mut buf), Ok(n) if n > 0) {}
    })
}

#[test]
fn connections_per_backend_are_limited() {
    let b = silent();
    let mut proxy = Proxy::start(
        "perbackend",
        &port_route(
            "",
            "max_connections_per_backend = 1\nhealth_check_interval_ms = 0\n",
            &[&b],
        ),
    );
    let addr = proxy.listener("plain");
    let _first = TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.metric("sixgate_proxy_connections_active{route=\"r\"}") < 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut second = TcpStream::connect(addr).unwrap();
    assert!(closed_within(&mut second, Duration::from_secs(2)).is_some());
    assert_eq!(
        proxy.metric("sixgate_proxy_rejections_total{reason=\"backend_limit\"}"),
        1
    );
    let series = format!(
        "sixgate_proxy_backend_connections_active{{route=\"r\",backend=\"{}\"}}",
        b.addr
    );
    assert_eq!(proxy.metric(&series), 1);
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let b = silent();
    let mut proxy = Proxy::start(
        "idletimeout",
        &port_route("idle_timeout_secs = 1\n", "", &[&b]),
    );
    let addr = proxy.listener("plain");
    let mut s = TcpStream::connect(addr).unwrap();
    // Traffic resets the clock: keep talking for 1.5 s, then go quiet.
    for _ in 0..6 {
        std::io::Write::write_all(&mut s, b"x").unwrap();
        std::thread::sleep(Duration::from_millis(250));
    }
    let quiet = closed_within(&mut s, Duration::from_secs(5)).expect("idle connection not closed");
    assert!(
        quiet >= Duration::from_millis(600) && quiet < Duration::from_millis(2500),
        "{quiet:?}"
    );
    assert_eq!(
        proxy.metric("sixgate_proxy_errors_total{reason=\"idle_timeout\"}"),
        1
    );
}
