//! The proxy with real TLS clients and servers on loopback: IPv6 clients
//! (`curl -6`, `openssl s_client`) on `::1`, IPv4-only backends
//! (`openssl s_server`) on 127.0.0.1, routes chosen by SNI, TLS untouched.

mod common;
mod proxy_common;

use std::io::Write as _;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::TempDir;
use proxy_common::{closed_within, curl_tls, s_server, self_signed, Proxy};

#[test]
fn ipv6_client_sees_the_ipv4_backends_own_certificate() {
    let dir = TempDir::new("tlscert");
    let cert = self_signed(&dir, "api.example.test");
    let (_server, backend) = s_server(&cert);
    let mut proxy = Proxy::start(
        "tlscert",
        &format!(
            "[proxy]\n[[proxy.listeners]]\nname = \"tls\"\nlisten = [\"[::1]:0\"]\n\
             [[proxy.routes]]\nname = \"api\"\nsni = [\"api.example.test\"]\nbackends = [\"{backend}\"]\n"
        ),
    );
    let addr = proxy.listener("tls");
    assert!(addr.is_ipv6());

    // curl trusts only the backend's self-signed certificate: the handshake
    // succeeds only if that certificate came through the proxy unchanged.
    let out = curl_tls(addr, "api.example.test", &cert);
    assert!(
        out.status.success(),
        "curl through the proxy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("s_server"));

    // openssl s_client shows the same certificate subject and verifies it.
    let s_client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "api.example.test",
        ])
        .args(["-verify_return_error", "-CAfile"])
        .arg(&cert.cert)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = String::from_utf8_lossy(&s_client.stdout);
    assert!(text.contains("CN = api.example.test"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");

    assert!(proxy.metric("sixgate_proxy_connections_total{route=\"api\"}") >= 2);
    assert!(
        proxy
            .metric("sixgate_proxy_transferred_bytes_total{route=\"api\",direction=\"to_client\"}")
            > 0
    );
}

#[test]
fn two_sni_names_reach_two_backends_and_unknown_names_are_refused() {
    let dir = TempDir::new("twosni");
    let (a, b) = (
        self_signed(&dir, "a.example.test"),
        self_signed(&dir, "b.example.test"),
    );
    let (_sa, backend_a) = s_server(&a);
    let (_sb, backend_b) = s_server(&b);
    let mut proxy = Proxy::start(
        "twosni",
        &format!(
            "[proxy]\n[[proxy.listeners]]\nname = \"tls\"\nlisten = [\"[::1]:0\"]\n\
             [[proxy.routes]]\nname = \"a\"\nsni = [\"a.example.test\"]\nbackends = [\"{backend_a}\"]\n\
             [[proxy.routes]]\nname = \"b\"\nsni = [\"*.b-wild.test\", \"b.example.test\"]\nbackends = [\"{backend_b}\"]\n"
        ),
    );
    let addr = proxy.listener("tls");
    for (name, cert) in [("a.example.test", &a), ("b.example.test", &b)] {
        let out = curl_tls(addr, name, cert);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Crossed: name a with b's certificate as the only trust must fail
    // (a.example.test reaches backend a, which shows its own certificate).
    assert!(!curl_tls(addr, "a.example.test", &b).status.success());
    assert_eq!(
        proxy.metric("sixgate_proxy_connections_total{route=\"a\"}"),
        2
    );
    assert_eq!(
        proxy.metric("sixgate_proxy_connections_total{route=\"b\"}"),
        1
    );

    // No default route: an unknown name is closed and counted.
    assert!(!curl_tls(addr, "c.example.test", &a).status.success());
    assert_eq!(
        proxy.metric("sixgate_proxy_rejections_total{reason=\"no_route\"}"),
        1
    );
}

#[test]
fn bad_client_hellos_are_closed_within_the_timeout_and_counted() {
    let mut proxy = Proxy::start(
        "badhello",
        "[proxy]\n[[proxy.listeners]]\nname = \"tls\"\nlisten = [\"[::1]:0\"]\n\
         hello_timeout_ms = 600\nhello_max_bytes = 1024\n\
         [[proxy.routes]]\nname = \"a\"\nsni = [\"a.example.test\"]\nbackends = [\"127.0.0.1:9\"]\n\
         health_check_interval_ms = 0\n",
    );
    let addr = proxy.listener("tls");
    let limit = Duration::from_secs(3);
    let connect = || TcpStream::connect(addr).expect("connect");

    // Garbage: refused at once.
    let mut s = connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let t = closed_within(&mut s, limit).expect("garbage not closed");
    assert!(t < Duration::from_millis(500), "garbage took {t:?}");

    // Huge: a record announcing a 16 KiB ClientHello over a 1 KiB limit.
    let mut s = connect();
    s.write_all(&[22, 3, 1, 0x40, 0x00, 1, 0x00, 0x40, 0x00])
        .unwrap();
    closed_within(&mut s, limit).expect("huge hello not closed");

    // Truncated: half a ClientHello, then nothing.
    let hello = include_bytes!("../../proxy/testdata/openssl_sni_alpn.bin");
    let mut s = connect();
    s.write_all(&hello[..hello.len() / 2]).unwrap();
    let t = closed_within(&mut s, limit).expect("truncated hello not closed");
    assert!(
        t >= Duration::from_millis(400),
        "closed before the timeout: {t:?}"
    );

    // Slowloris: one byte every 100 ms never finishes within the timeout.
    let mut s = connect();
    let start = std::time::Instant::now();
    for &byte in &hello[..20] {
        if s.write_all(&[byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = start.elapsed() + closed_within(&mut s, limit).unwrap_or(limit);
    assert!(t < Duration::from_millis(2_500), "slowloris lasted {t:?}");

    // Garbage after half a real record header.
    let mut s = connect();
    s.write_all(&[22, 3, 1, 0x00, 0x10, 2, 0, 0]).unwrap();
    closed_within(&mut s, limit).expect("wrong handshake type not closed");

    assert_eq!(
        proxy.metric("sixgate_proxy_rejections_total{reason=\"hello_not_tls\"}"),
        1
    );
    assert_eq!(
        proxy.metric("sixgate_proxy_rejections_total{reason=\"hello_too_large\"}"),
        1
    );
    assert_eq!(
        proxy.metric("sixgate_proxy_rejections_total{reason=\"hello_timeout\"}"),
        2
    );
    assert_eq!(
        proxy.metric("sixgate_proxy_rejections_total{reason=\"hello_not_client_hello\"}"),
        1
    );
    assert_eq!(proxy.metric("sixgate_proxy_connections_open"), 0);
}

#[test]
fn thousands_of_idle_connections_do_not_exhaust_the_proxy() {
    let dir = TempDir::new("idle");
    let cert = self_signed(&dir, "a.example.test");
    let (_server, backend) = s_server(&cert);
    let mut proxy = Proxy::start(
        "idle",
        &format!(
            "[proxy]\n[[proxy.listeners]]\nname = \"tls\"\nlisten = [\"[::1]:0\"]\nhello_timeout_ms = 60000\n\
             [[proxy.routes]]\nname = \"a\"\nsni = [\"a.example.test\"]\nbackends = [\"{backend}\"]\n"
        ),
    );
    let addr = proxy.listener("tls");
    let idle: Vec<TcpStream> = (0..3000)
        .map(|i| TcpStream::connect(addr).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    // Wait until the proxy has accepted them all.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while proxy.metric("sixgate_proxy_connections_open") < 3000 {
        assert!(std::time::Instant::now() < deadline, "not all accepted");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A real client still gets through, promptly.
    let out = curl_tls(addr, "a.example.test", &cert);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The proxy's memory stays modest: idle connections hold no buffers.
    let rss = std::fs::read_to_string(format!("/proc/{}/status", proxy.sg.pid()))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap())
        })
        .unwrap();
    assert!(
        rss < 200 * 1024,
        "proxy uses {rss} kB with 3000 idle connections"
    );
    drop(idle);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while proxy.metric("sixgate_proxy_connections_open") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "idle connections not released"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
