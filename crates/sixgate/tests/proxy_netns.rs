//! The deployment shape in network namespaces: an IPv6-only client network,
//! sixgate on a dual-stack gateway, an IPv4-only backend network.
//!
//!   c6 (2001:db8:6::2, no IPv4) -- gw (2001:db8:6::1 | 192.0.2.1) -- s4 (192.0.2.2, IPv6 off)
//!   curl -6 https://app.example.test  ->  sixgate [2001:db8:6::1]:443  ->  nginx 192.0.2.2:443

mod common;
mod proxy_common;

use std::time::{Duration, Instant};

use common::{have_root, veth, Netns, Sixgate, TempDir};
use proxy_common::self_signed;

#[test]
fn ipv6_only_client_reaches_ipv4_only_nginx_which_logs_its_real_address() {
    if !have_root("ipv6_only_client_reaches_ipv4_only_nginx_which_logs_its_real_address") {
        return;
    }
    let (c6, gw, s4) = (Netns::new("c6"), Netns::new("gw"), Netns::new("s4"));
    let (c_if, g6_if) = veth(&c6, &gw);
    let (g4_if, s_if) = veth(&gw, &s4);
    c6.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8:6::2/64",
        "dev",
        &c_if,
        "nodad",
    ]);
    gw.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        "2001:db8:6::1/64",
        "dev",
        &g6_if,
        "nodad",
    ]);
    gw.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", &g4_if]);
    s4.exec(&["ip", "addr", "add", "192.0.2.2/24", "dev", &s_if]);
    s4.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);

    let dir = TempDir::new("netns");
    let cert = self_signed(&dir, "app.example.test");
    let d = dir.path().display();
    let log = dir.path().join("access.log");
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
           log_format pp '$proxy_protocol_addr $remote_addr $ssl_server_name';\n\
           access_log {log} pp;\n\
           client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
           uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           server {{\n\
             listen 192.0.2.2:443 ssl proxy_protocol;\n\
             ssl_certificate {}; ssl_certificate_key {};\n\
             location / {{ return 200 \"hello from the IPv4 side\\n\"; }}\n\
           }}\n\
         }}\n",
        cert.cert.display(),
        cert.key.display(),
        log = log.display(),
    );
    let nginx_conf = dir.write("nginx.conf", &conf);
    let _nginx = s4.spawn(&[
        "nginx",
        "-p",
        dir.path().to_str().unwrap(),
        "-c",
        nginx_conf.to_str().unwrap(),
    ]);

    let config = dir.write(
        "sixgate.toml",
        "[admin]\nlisten = \"127.0.0.1:0\"\n[proxy]\n\
         [[proxy.listeners]]\nname = \"private-link\"\nlisten = [\"[2001:db8:6::1]:443\"]\n\
         allow = [\"2001:db8:6::/64\"]\n\
         [[proxy.routes]]\nname = \"app\"\nsni = [\"app.example.test\"]\n\
         backends = [\"192.0.2.2:443\"]\nproxy_protocol = \"v2\"\nhealth_check_interval_ms = 200\n",
    );
    let mut sg = Sixgate::start(
        Some(&gw),
        &["proxy", "--config", config.to_str().unwrap()],
        &["admin", "proxy"],
    );
    // Wait until the health checks see nginx.
    // The admin port is inside the gateway's namespace.
    let metrics_url = format!("http://{}/metrics", sg.admin());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&gw.try_exec(&["curl", "-s", &metrics_url]).stdout)
        .contains("sixgate_proxy_backend_up{route=\"app\",backend=\"192.0.2.2:443\"} 1")
    {
        assert!(Instant::now() < deadline, "nginx never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The client's link has no IPv4 address, the backend's no IPv6.
    assert!(!c6
        .exec(&["ip", "-4", "addr", "show", "dev", &c_if])
        .contains("inet "));
    assert!(!s4
        .exec(&["ip", "-6", "addr", "show", "dev", &s_if])
        .contains("inet6"));

    let out = c6.try_exec(&[
        "curl",
        "-6",
        "-sS",
        "--max-time",
        "10",
        "--cacert",
        cert.cert.to_str().unwrap(),
        "--resolve",
        "app.example.test:443:[2001:db8:6::1]",
        "https://app.example.test/",
    ]);
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the IPv4 side\n"
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        if let Some(line) = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .next()
        {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "nginx logged nothing");
        std::thread::sleep(Duration::from_millis(50));
    };
    // nginx sees the proxy's IPv4 address on the socket, the client's IPv6
    // address in our PROXY v2 header, and the SNI the client sent.
    assert_eq!(line, "2001:db8:6::2 192.0.2.1 app.example.test");
    sg.wait_for_log("sixgate::access", Duration::from_secs(5));
}
