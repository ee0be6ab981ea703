//! PROXY protocol: the v2 header we send (read by nginx, and checked byte by
//! byte), and v1/v2 headers we accept only from trusted load balancers.

mod common;
mod proxy_common;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Background, TempDir};
use proxy_common::{free_port, self_signed, wait_listening, Proxy, TestServer};

/// A backend that reads everything the client sends (until the client's end
/// of stream reaches it through the proxy's half-close) and answers with it.
fn mirror() -> TestServer {
    TestServer::start("127.0.0.1:0", |mut s| {
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        let _ = s.write_all(&got);
    })
}

/// Sends `data`, half-closes, and returns what comes back and the local address.
fn send_and_read(addr: SocketAddr, data: &[u8]) -> (Vec<u8>, SocketAddr) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = s.local_addr().unwrap();
    s.write_all(data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    (back, local)
}

const SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

#[test]
fn proxy_v2_header_carries_client_ipv6_address_port_and_sni_then_the_untouched_hello() {
    let backend = mirror();
    let mut proxy = Proxy::start(
        "ppout",
        &format!(
            "[proxy]\n[[proxy.listeners]]\nname = \"tls\"\nlisten = [\"[::1]:0\"]\n\
             [[proxy.routes]]\nname = \"api\"\nsni = [\"api.example.com\"]\nproxy_protocol = \"v2\"\n\
             backends = [\"{}\"]\n",
            backend.addr
        ),
    );
    let addr = proxy.listener("tls");
    // A ClientHello captured from `openssl s_client -servername api.example.com`.
    let hello = include_bytes!("../../proxy/testdata/openssl_sni_alpn.bin");
    let (got, local) = send_and_read(addr, hello);

    // Checked by hand against the spec (§2.2), not with our own decoder.
    assert_eq!(&got[..12], SIGNATURE);
    assert_eq!(got[12], 0x21, "version 2, PROXY command");
    assert_eq!(got[13], 0x21, "TCP over IPv6");
    let len = usize::from(u16::from_be_bytes([got[14], got[15]]));
    let block = &got[16..16 + len];
    assert_eq!(
        &block[..16],
        &std::net::Ipv6Addr::LOCALHOST.octets(),
        "source address"
    );
    assert_eq!(
        &block[16..32],
        &std::net::Ipv6Addr::LOCALHOST.octets(),
        "destination address"
    );
    assert_eq!(
        u16::from_be_bytes([block[32], block[33]]),
        local.port(),
        "source port"
    );
    assert_eq!(
        u16::from_be_bytes([block[34], block[35]]),
        addr.port(),
        "destination port"
    );
    assert_eq!(block[36], 0x02, "PP2_TYPE_AUTHORITY");
    assert_eq!(u16::from_be_bytes([block[37], block[38]]), 15);
    assert_eq!(&block[39..54], b"api.example.com");
    assert_eq!(
        &got[16 + len..],
        &hello[..],
        "the ClientHello arrives unchanged"
    );
}

/// nginx with `listen ... ssl proxy_protocol`, logging the address from
/// our header and the server name of the TLS session.
fn nginx(dir: &TempDir, cert: &proxy_common::Cert) -> (Background, SocketAddr, std::path::PathBuf) {
    let port = free_port();
    let d = dir.path().display();
    let log = dir.path().join("access.log");
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
           log_format pp '$proxy_protocol_addr $proxy_protocol_port $ssl_server_name';\n\
           access_log {log} pp;\n\
           client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
           uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           server {{\n\
             listen 127.0.0.1:{port} ssl proxy_protocol;\n\
             ssl_certificate {}; ssl_certificate_key {};\n\
             location / {{ return 200 \"hello from nginx\\n\"; }}\n\
           }}\n\
         }}\n",
        cert.cert.display(),
        cert.key.display(),
        log = log.display(),
    );
    let path = dir.write("nginx.conf", &conf);
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let bg = Background(child);
    wait_listening(addr);
    (bg, addr, log)
}

#[test]
fn nginx_logs_the_clients_real_ipv6_address_from_our_proxy_v2_header() {
    let dir = TempDir::new("ppnginx");
    let cert = self_signed(&dir, "app.example.test");
    let (_nginx, backend, log) = nginx(&dir, &cert);
    let mut proxy = Proxy::start(
        "ppnginx",
        &format!(
            "[proxy]\n[[proxy.listeners]]\nname = \"tls\"\nlisten = [\"[::1]:0\"]\n\
             [[proxy.routes]]\nname = \"app\"\nsni = [\"app.example.test\"]\nproxy_protocol = \"v2\"\n\
             backends = [\"{backend}\"]\nhealth_check_interval_ms = 0\n"
        ),
    );
    let addr = proxy.listener("tls");
    let port = addr.port();
    let out = Command::new("curl")
        .args([
            "-6",
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{local_port}",
            "--cacert",
        ])
        .arg(&cert.cert)
        .arg("--resolve")
        .arg(format!("app.example.test:{port}:::1"))
        .arg(format!("https://app.example.test:{port}/"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, curl_port) = text.rsplit_once('\n').unwrap();
    assert_eq!(body.trim_end(), "hello from nginx");

    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = logged.lines().next() {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "nginx logged nothing");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(line, format!("::1 {curl_port} app.example.test"));
}

#[test]
fn proxy_headers_are_accepted_only_from_trusted_prefixes() {
    let backend = mirror();
    let mut proxy = Proxy::start(
        "ppin",
        &format!(
            "[proxy]\n\
             [[proxy.listeners]]\nname = \"lb\"\nlisten = [\"[::1]:0\"]\n\
             proxy_protocol_from = [\"::1/128\"]\nallow = [\"2001:db8::/32\", \"192.0.2.0/24\"]\n\
             [[proxy.listeners]]\nname = \"direct\"\nlisten = [\"[::1]:0\"]\n\
             [[proxy.routes]]\nname = \"via-lb\"\nlistener = \"lb\"\nproxy_protocol = \"v2\"\nbackends = [\"{b}\"]\n\
             [[proxy.routes]]\nname = \"direct\"\nlistener = \"direct\"\nproxy_protocol = \"v2\"\nbackends = [\"{b}\"]\n",
            b = backend.addr
        ),
    );
    let lb = proxy.listener("lb");
    let direct = proxy.listener("direct");

    // v1 from the trusted load balancer: the client in it is the source.
    let (got, _) = send_and_read(
        lb,
        b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\npayload",
    );
    assert_eq!(&got[..12], SIGNATURE);
    assert_eq!(got[13], 0x21);
    assert_eq!(
        &got[16..32],
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
    );
    assert_eq!(
        &got[32..48],
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
    );
    assert_eq!(u16::from_be_bytes([got[48], got[49]]), 40000);
    assert_eq!(&got[52..], b"payload");

    // v2 from the trusted load balancer, IPv4 inside: 192.0.2.9:1234 -> 198.51.100.1:443.
    let mut v2 = SIGNATURE.to_vec();
    v2.extend_from_slice(&[
        0x21, 0x11, 0, 12, 192, 0, 2, 9, 198, 51, 100, 1, 0x04, 0xd2, 0x01, 0xbb,
    ]);
    v2.extend_from_slice(b"more");
    let (got, _) = send_and_read(lb, &v2);
    assert_eq!(got[13], 0x11, "IPv4 client stays IPv4");
    assert_eq!(&got[16..20], &[192, 0, 2, 9]);
    assert_eq!(&got[24..26], &1234u16.to_be_bytes());
    assert_eq!(&got[28..], b"more");

    // The allow list applies to the client in the header.
    let (got, _) = send_and_read(lb, b"PROXY TCP6 2001:db9::7 2001:db8::1 40000 443\r\nx");
    assert!(got.is_empty());
    // A trusted peer must send a header.
    let (got, _) = send_and_read(lb, b"GET / HTTP/1.0\r\n\r\n");
    assert!(got.is_empty());

    // From an untrusted peer a PROXY line is just data, and the source is the peer.
    let line = b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n";
    let (got, local) = send_and_read(direct, line);
    assert_eq!(&got[16..32], &std::net::Ipv6Addr::LOCALHOST.octets());
    assert_eq!(u16::from_be_bytes([got[48], got[49]]), local.port());
    assert_eq!(&got[52..], line);

    assert_eq!(
        proxy.metric("sixgate_proxy_rejections_total{reason=\"not_allowed\"}"),
        1
    );
    assert_eq!(
        proxy.metric("sixgate_proxy_rejections_total{reason=\"proxy_header_missing\"}"),
        1
    );
}
