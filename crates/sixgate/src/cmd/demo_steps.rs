//! The scenarios of `sixgate demo`, one function per step. Each builds its
//! hosts as network namespaces in a [`Lab`], runs the real tools a user would
//! (dig, curl, openssl, python3), and says what each result proves.

use std::time::Duration;

use anyhow::{ensure, Context as _};

use super::demo::{say, shown, Lab};

const START: Duration = Duration::from_secs(20);

/// The demo's authoritative zone: an IPv4-only site and a dual-stack one.
const ZONE: &str = "$ORIGIN demo.example.\n$TTL 300\n\
@     IN SOA ns hostmaster 1 3600 600 86400 60\n\
@     IN NS  ns\n\
ns    IN A   127.0.0.1\n\
www4  IN A   192.0.2.10\n\
www6  IN A   192.0.2.20\n\
www6  IN AAAA 2001:db8:2::10\n";

/// A python3 HTTP server answering every GET with a one-line page.
fn web_server(text: &str) -> String {
    format!(
        "import http.server,socket\n\
class H(http.server.BaseHTTPRequestHandler):\n\
\x20   def do_GET(self):\n\
\x20       b=b'{text}\\n'\n\
\x20       self.send_response(200);self.send_header('content-length',str(len(b)));self.end_headers();self.wfile.write(b)\n\
\x20   def log_message(self,*a): pass\n\
class S(http.server.HTTPServer): address_family=socket.AF_INET6\n\
s=S(('::',80),H)\n\
print('ready',flush=True)\n\
s.serve_forever()\n"
    )
}

/// Step 1: an IPv6-only pod resolves names through sixgate dns64 and reaches
/// an IPv4-only site through sixgate nat64, and a dual-stack site directly.
pub fn egress(lab: &mut Lab) -> anyhow::Result<()> {
    // pod [2001:db8:1::2] --- [2001:db8:1::1] gw [192.0.2.1] --- [192.0.2.10] site4
    //                                       gw [2001:db8:2::1] --- [2001:db8:2::10] site6
    let pod = lab.netns("pod")?;
    let gw = lab.netns("gw")?;
    let site4 = lab.netns("site4")?;
    let site6 = lab.netns("site6")?;
    let (pod_if, gw_pod) = lab.link(&pod, &gw)?;
    let (gw_v4, site4_if) = lab.link(&gw, &site4)?;
    let (gw_v6, site6_if) = lab.link(&gw, &site6)?;
    lab.exec(
        &pod,
        &[
            "ip",
            "addr",
            "add",
            "2001:db8:1::2/64",
            "dev",
            &pod_if,
            "nodad",
        ],
    )?;
    lab.exec(
        &pod,
        &[
            "ip",
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:1::1",
        ],
    )?;
    lab.exec(
        &gw,
        &[
            "ip",
            "addr",
            "add",
            "2001:db8:1::1/64",
            "dev",
            &gw_pod,
            "nodad",
        ],
    )?;
    lab.exec(&gw, &["ip", "addr", "add", "192.0.2.1/24", "dev", &gw_v4])?;
    lab.exec(
        &gw,
        &[
            "ip",
            "addr",
            "add",
            "2001:db8:2::1/64",
            "dev",
            &gw_v6,
            "nodad",
        ],
    )?;
    lab.exec(
        &gw,
        &[
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.forwarding=1",
            "net.ipv4.ip_forward=1",
        ],
    )?;
    lab.exec(
        &site4,
        &["ip", "addr", "add", "192.0.2.10/24", "dev", &site4_if],
    )?;
    lab.exec(
        &site4,
        &["ip", "route", "add", "default", "via", "192.0.2.1"],
    )?;
    lab.exec(
        &site6,
        &[
            "ip",
            "addr",
            "add",
            "2001:db8:2::10/64",
            "dev",
            &site6_if,
            "nodad",
        ],
    )?;
    lab.exec(
        &site6,
        &[
            "ip",
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:2::1",
        ],
    )?;
    lab.resolv_conf(&pod, "2001:db8:1::1")?;
    say("pod is IPv6-only; www4.demo.example is IPv4-only (192.0.2.10); www6.demo.example has both (2001:db8:2::10)");

    // The sites, and a small authoritative server for demo.example (NSD).
    lab.spawn(
        "www4",
        &site4,
        &[
            "python3",
            "-c",
            &web_server("hello from www4, an IPv4-only site"),
        ],
    )?;
    lab.spawn(
        "www6",
        &site6,
        &["python3", "-c", &web_server("hello from www6, over IPv6")],
    )?;
    let zone = lab.file("demo.example.zone", ZONE)?;
    let d = lab.dir().display().to_string();
    let nsd_conf = lab.file(
        "nsd.conf",
        &format!(
            "server:\n  ip-address: 127.0.0.1\n  port: 5300\n  server-count: 1\n  username: \"\"\n  chroot: \"\"\n  \
             zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n  database: \"\"\n  xfrdfile: \"{d}/xfrd.state\"\n  \
             zonelistfile: \"{d}/zone.list\"\n  verbosity: 0\n\
             remote-control:\n  control-enable: no\n\
             zone:\n  name: demo.example\n  zonefile: \"{}\"\n",
            zone.display()
        ),
    )?;
    lab.spawn(
        "nsd",
        &gw,
        &["nsd", "-d", "-c", nsd_conf.to_str().context("utf-8")?],
    )?;
    lab.wait_until("NSD", START, || {
        lab.try_exec(
            &gw,
            &[
                "dig",
                "+short",
                "+time=1",
                "+tries=1",
                "@127.0.0.1",
                "-p",
                "5300",
                "www4.demo.example",
                "A",
            ],
        )
        .1
        .contains("192.0.2.10")
    })?;

    let config = lab.file(
        "sixgate.toml",
        "[admin]\nlisten = \"127.0.0.1:7779\"\n\n\
         [dns64]\nlisten = [\"[2001:db8:1::1]:53\"]\nforwarders = [\"127.0.0.1:5300\"]\n\
         prefix = \"64:ff9b:1::/96\"\naaaa = \"prefer-native\"\nallow = [\"2001:db8:1::/64\", \"::1/128\"]\n\n\
         [nat64]\ntun = \"demo64\"\nprefix = \"64:ff9b:1::/96\"\npool4 = [\"198.51.100.1\"]\nmanage_routes = true\n",
    )?;
    lab.spawn_sixgate(
        "sixgate",
        &gw,
        &["run", "--config", config.to_str().context("utf-8")?],
    )?;
    lab.wait_log("sixgate", "dns64 listening on", START)?;
    lab.wait_until("sixgate to be ready", START, || {
        lab.try_exec(&gw, &["curl", "-sf", "http://127.0.0.1:7779/readyz"])
            .0
    })?;
    say("sixgate runs on gw: dns64 on [2001:db8:1::1]:53 (forwarding to NSD), nat64 with prefix 64:ff9b:1::/96 and pool4 198.51.100.1");
    lab.wait_log("www4", "ready", START)?;
    lab.wait_log("www6", "ready", START)?;

    resolve_and_fetch(
        lab,
        &pod,
        "www4.demo.example",
        "64:ff9b:1::c000:20a",
        "synthesised from its A record 192.0.2.10 (RFC 6052)",
        "IPv4-only site",
        "the IPv6-only pod reached it through nat64",
    )?;
    let sessions = lab.exec(
        &gw,
        &[
            std::env::current_exe()?.to_str().context("utf-8")?,
            "nat64",
            "sessions",
            "--admin",
            "127.0.0.1:7779",
        ],
    )?;
    ensure!(
        sessions.contains("198.51.100.1"),
        "the session table does not show the flow:\n{sessions}"
    );
    if let Some(line) = sessions.lines().find(|l| l.contains("192.0.2.10")) {
        shown("its session, as `sixgate nat64 sessions` lists it:");
        println!("        {}", line.trim());
    }

    resolve_and_fetch(
        lab,
        &pod,
        "www6.demo.example",
        "2001:db8:2::10",
        "its real AAAA, not a synthesised one (prefer-native)",
        "over IPv6",
        "straight over IPv6, no translation",
    )?;
    Ok(())
}

/// From the pod: `dig AAAA name` must give `aaaa`, and `curl -6` must fetch
/// the site's page (containing `page_has`); each result is shown with what
/// it proves.
fn resolve_and_fetch(
    lab: &Lab,
    pod: &str,
    name: &str,
    aaaa: &str,
    aaaa_proves: &str,
    page_has: &str,
    page_proves: &str,
) -> anyhow::Result<()> {
    let answer = lab.exec(pod, &["dig", "+short", "AAAA", name])?;
    ensure!(
        answer.trim() == aaaa,
        "{name} AAAA: expected {aaaa}, got {answer:?}"
    );
    shown(&format!("dig AAAA {name} -> {aaaa}: {aaaa_proves}"));
    let url = format!("http://{name}/");
    let (ok, page) = lab.try_exec(pod, &["curl", "-6", "-sS", "--max-time", "10", &url]);
    ensure!(ok && page.contains(page_has), "curl {url} failed: {page}");
    shown(&format!(
        "curl -6 {url} -> \"{}\": {page_proves}",
        page.trim()
    ));
    Ok(())
}

/// Step 2: an IPv6 client reaches IPv4-only TLS services through the proxy,
/// routed by SNI, the backends' own certificates untouched.
pub fn private_link(lab: &mut Lab) -> anyhow::Result<()> {
    // client [2001:db8:3::2] --- [2001:db8:3::1] proxy [10.0.0.1] --- [10.0.0.10] backend
    let client = lab.netns("client")?;
    let proxy = lab.netns("proxy")?;
    let backend = lab.netns("backend")?;
    let (client_if, proxy_v6) = lab.link(&client, &proxy)?;
    let (proxy_v4, backend_if) = lab.link(&proxy, &backend)?;
    lab.exec(
        &client,
        &[
            "ip",
            "addr",
            "add",
            "2001:db8:3::2/64",
            "dev",
            &client_if,
            "nodad",
        ],
    )?;
    lab.exec(
        &proxy,
        &[
            "ip",
            "addr",
            "add",
            "2001:db8:3::1/64",
            "dev",
            &proxy_v6,
            "nodad",
        ],
    )?;
    lab.exec(
        &proxy,
        &["ip", "addr", "add", "10.0.0.1/24", "dev", &proxy_v4],
    )?;
    lab.exec(
        &backend,
        &["ip", "addr", "add", "10.0.0.10/24", "dev", &backend_if],
    )?;
    say("client is IPv6-only (2001:db8:3::2); the TLS services are IPv4-only (10.0.0.10)");

    // Two IPv4-only TLS services, each with its own self-signed certificate.
    for (name, port) in [("api.demo.example", "8443"), ("web.demo.example", "9443")] {
        let dir = lab.dir().to_owned();
        let (key, cert) = (
            dir.join(format!("{name}.key")),
            dir.join(format!("{name}.pem")),
        );
        let (key, cert) = (
            key.to_str().context("utf-8")?,
            cert.to_str().context("utf-8")?,
        );
        lab.exec(
            &backend,
            &[
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-keyout",
                key,
                "-out",
                cert,
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                &format!("subjectAltName=DNS:{name}"),
            ],
        )?;
        lab.spawn(
            name,
            &backend,
            &[
                "openssl",
                "s_server",
                "-quiet",
                "-www",
                "-accept",
                &format!("10.0.0.10:{port}"),
                "-cert",
                cert,
                "-key",
                key,
            ],
        )?;
    }
    for port in ["8443", "9443"] {
        lab.wait_until("the TLS services", START, || {
            lab.try_exec(
                &backend,
                &[
                    "openssl",
                    "s_client",
                    "-connect",
                    &format!("10.0.0.10:{port}"),
                    "-brief",
                ],
            )
            .0
        })?;
    }
    let config = lab.file(
        "proxy.toml",
        "[admin]\nlisten = \"127.0.0.1:7779\"\n\n[proxy]\naccess_log = true\n\n\
         [[proxy.listeners]]\nname = \"private-link\"\nlisten = [\"[2001:db8:3::1]:443\"]\nallow = [\"2001:db8:3::/64\"]\n\n\
         [[proxy.routes]]\nname = \"api\"\nlistener = \"private-link\"\nsni = [\"api.demo.example\"]\nbackends = [\"10.0.0.10:8443\"]\n\n\
         [[proxy.routes]]\nname = \"web\"\nlistener = \"private-link\"\nbackends = [\"10.0.0.10:9443\"]\n",
    )?;
    lab.spawn_sixgate(
        "sixgate proxy",
        &proxy,
        &["proxy", "--config", config.to_str().context("utf-8")?],
    )?;
    lab.wait_log("sixgate proxy", "proxy listening on", START)?;
    say("sixgate proxy listens on [2001:db8:3::1]:443: SNI api.demo.example -> 10.0.0.10:8443, anything else -> 10.0.0.10:9443");

    for name in ["api.demo.example", "web.demo.example"] {
        let cert = lab.dir().join(format!("{name}.pem"));
        let (ok, out) = lab.try_exec(
            &client,
            &[
                "curl",
                "-6",
                "-sS",
                "--max-time",
                "10",
                "--cacert",
                cert.to_str().context("utf-8")?,
                "--resolve",
                &format!("{name}:443:[2001:db8:3::1]"),
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{remote_ip}",
                &format!("https://{name}/"),
            ],
        );
        ensure!(ok, "curl https://{name}/ through the proxy failed: {out}");
        shown(&format!(
            "curl -6 https://{name}/ -> HTTP {out}: the client verified {name}'s own certificate, so TLS went through untouched"
        ));
    }
    let api = lab
        .wait_log("sixgate proxy", "route=\"api\"", START)
        .or_else(|_| lab.wait_log("sixgate proxy", "route=api", START))?;
    ensure!(
        api.contains("2001:db8:3::2"),
        "the access log does not show the client's IPv6 address: {api}"
    );
    shown("the access log names the route chosen by SNI and the client's real IPv6 address:");
    println!("        {}", api.trim());

    // A client outside the allow list is refused.
    lab.exec(
        &client,
        &[
            "ip",
            "addr",
            "add",
            "2001:db8:99::2/64",
            "dev",
            &client_if,
            "nodad",
        ],
    )?;
    lab.exec(
        &proxy,
        &[
            "ip",
            "-6",
            "route",
            "add",
            "2001:db8:99::/64",
            "dev",
            &proxy_v6,
        ],
    )?;
    let (ok, _) = lab.try_exec(
        &client,
        &[
            "curl",
            "-6",
            "-sk",
            "--max-time",
            "5",
            "--interface",
            "2001:db8:99::2",
            "--resolve",
            "api.demo.example:443:[2001:db8:3::1]",
            "https://api.demo.example/",
        ],
    );
    ensure!(!ok, "a client outside the allow list got through");
    lab.wait_log("sixgate proxy", "end=\"not_allowed\"", START)?;
    shown("a client whose address is outside the listener's allow list is refused");
    Ok(())
}

/// A python3 TCP server answering each connection with the peer's address.
const PEER_ECHO: &str = "import socket\n\
s=socket.socket(socket.AF_INET6)\n\
s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
s.bind(('::',8080))\n\
s.listen(8)\n\
print('ready',flush=True)\n\
while True:\n\
\x20   c,a=s.accept()\n\
\x20   c.sendall(('peer %s\\n'%a[0]).encode())\n\
\x20   c.close()\n";

/// A python3 client that connects from a (link-local) source address.
const PROBE: &str = "import socket,sys\n\
s=socket.socket(socket.AF_INET6)\n\
s.settimeout(2)\n\
s.bind((sys.argv[1],0,0,socket.if_nametoindex(sys.argv[2])))\n\
s.connect((sys.argv[3],8080))\n\
print(s.recv(200).decode().strip())\n";

/// Step 3: the load balancer's link-local probe source, rewritten statelessly
/// by the node rules (seed 004), reaches a pod and gets its answer back.
pub fn lb_probe(lab: &mut Lab) -> anyhow::Result<()> {
    const PROBE_FROM: &str = "fe80::1234:5678:9abc";
    // lb [fe80::1234:5678:9abc] --- [fe80::1, 2001:db8:1::1] node [2001:db8:40::1] --- [2001:db8:40::2] pod
    let lb = lab.netns("lb")?;
    let node = lab.netns("node")?;
    let pod = lab.netns("pod")?;
    let (lb_if, uplink) = lab.link(&lb, &node)?;
    let (pod_side, pod_if) = lab.link(&node, &pod)?;
    lab.exec(
        &lb,
        &[
            "ip",
            "addr",
            "add",
            &format!("{PROBE_FROM}/64"),
            "dev",
            &lb_if,
            "nodad",
        ],
    )?;
    lab.exec(
        &node,
        &["ip", "addr", "add", "fe80::1/64", "dev", &uplink, "nodad"],
    )?;
    lab.exec(
        &node,
        &[
            "ip",
            "addr",
            "add",
            "2001:db8:1::1/64",
            "dev",
            &uplink,
            "nodad",
        ],
    )?;
    lab.exec(
        &node,
        &[
            "ip",
            "addr",
            "add",
            "2001:db8:40::1/64",
            "dev",
            &pod_side,
            "nodad",
        ],
    )?;
    lab.exec(
        &pod,
        &[
            "ip",
            "addr",
            "add",
            "2001:db8:40::2/64",
            "dev",
            &pod_if,
            "nodad",
        ],
    )?;
    lab.exec(&node, &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])?;
    lab.exec(
        &lb,
        &[
            "ip",
            "-6",
            "route",
            "add",
            "2001:db8:40::/64",
            "via",
            "fe80::1",
            "dev",
            &lb_if,
        ],
    )?;
    lab.exec(
        &pod,
        &[
            "ip",
            "-6",
            "route",
            "add",
            "default",
            "via",
            "2001:db8:40::1",
        ],
    )?;
    lab.spawn("pod server", &pod, &["python3", "-c", PEER_ECHO])?;
    lab.wait_log("pod server", "ready", START)?;
    say("the load balancer probes the pod 2001:db8:40::2 from fe80::1234:5678:9abc, through the node");

    let probe = |lab: &Lab| {
        lab.try_exec(
            &lb,
            &["python3", "-c", PROBE, PROBE_FROM, &lb_if, "2001:db8:40::2"],
        )
    };
    let (ok, _) = probe(lab);
    ensure!(!ok, "the probe got through before any rule was applied");
    shown("without the node rules the probe fails: a router does not forward a link-local source");

    let config = lab.file(
        "node.toml",
        &format!(
            "[node]\nuplink = \"{uplink}\"\nwatch_period = \"1s\"\n\n[[node.rewrites]]\npreset = \"azure-lb-probe\"\n"
        ),
    )?;
    let config = config.to_str().context("utf-8")?.to_owned();
    lab.spawn_sixgate(
        "sixgate node",
        &node,
        &["node", "watch", "--config", &config],
    )?;
    let (ok, out) = (0..50)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            probe(lab)
        })
        .find(|(ok, _)| *ok)
        .unwrap_or((false, String::new()));
    ensure!(
        ok,
        "the probe still fails with the node rules in place: {out}"
    );
    shown(&format!(
        "with `sixgate node watch` (preset azure-lb-probe) the probe connects; the pod saw: {}",
        out.trim()
    ));
    ensure!(
        out.contains("2603:1062:0:1:fe80:1234:5678:9abc"),
        "the pod did not see the rewritten source"
    );
    shown("the pod saw the global 2603:1062:0:1:fe80:1234:5678:9abc; its answer was rewritten back to the link-local");

    // Someone flushes the ruleset: watch puts the rules back.
    lab.exec(&node, &["nft", "flush", "ruleset"])?;
    say("someone runs `nft flush ruleset` on the node ...");
    let restored = (0..150).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        probe(lab).0
    });
    ensure!(restored, "watch did not restore the rules");
    shown("... and `sixgate node watch` restored the rules: the probe connects again");
    Ok(())
}
