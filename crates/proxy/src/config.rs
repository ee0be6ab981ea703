//! The `[proxy]` section of the config file, and its checks.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::Deserialize;

use crate::prefix::Prefix;
use crate::route::SniPattern;

/// The `[proxy]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Accept loops (and `SO_REUSEPORT` sockets) per listen address; default:
    /// the number of CPUs.
    #[serde(default)]
    pub workers: Option<usize>,
    /// After SIGTERM, how long established connections may go on before they
    /// are closed.
    #[serde(default = "defaults::drain_timeout_secs")]
    pub drain_timeout_secs: u64,
    /// Connections open at once, over all listeners.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: u32,
    /// One `sixgate::access` log line per connection, at info.
    #[serde(default = "defaults::yes")]
    pub access_log: bool,
    /// Move bytes with `splice(2)` on Linux (off: a userspace copy).
    #[serde(default = "defaults::yes")]
    pub splice: bool,
    /// How often backend DNS names are resolved again.
    #[serde(default = "defaults::resolve_interval_secs")]
    pub resolve_interval_secs: u64,
    /// Where clients connect. Default: one listener named `default` on `[::]:443`.
    #[serde(default = "defaults::listeners")]
    pub listeners: Vec<Listener>,
    /// Where connections go.
    pub routes: Vec<Route>,
}

/// `[[proxy.listeners]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    #[serde(default = "defaults::listener_name")]
    pub name: String,
    #[serde(default = "defaults::listen")]
    pub listen: Vec<SocketAddr>,
    /// Client source prefixes allowed in; empty: everyone.
    #[serde(default)]
    pub allow: Vec<Prefix>,
    /// Peers (load balancers) that must send a PROXY v1 or v2 header; the
    /// client address in it then counts as the source.
    #[serde(default)]
    pub proxy_protocol_from: Vec<Prefix>,
    /// Connections at once from one source prefix; 0: no limit.
    #[serde(default)]
    pub max_connections_per_source: u32,
    /// The IPv6 prefix length that makes up one "source".
    #[serde(default = "defaults::source_prefix_len_v6")]
    pub source_prefix_len_v6: u8,
    /// The IPv4 prefix length that makes up one "source".
    #[serde(default = "defaults::source_prefix_len_v4")]
    pub source_prefix_len_v4: u8,
    /// Time a client has to send its PROXY header and TLS ClientHello.
    #[serde(default = "defaults::hello_timeout_ms")]
    pub hello_timeout_ms: u64,
    /// Largest ClientHello read for SNI routing.
    #[serde(default = "defaults::hello_max_bytes")]
    pub hello_max_bytes: usize,
    /// A connection with no byte moving either way for this long is closed.
    #[serde(default = "defaults::idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// The listen backlog.
    #[serde(default = "defaults::backlog")]
    pub backlog: u32,
}

/// `[[proxy.routes]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    /// The listener this route belongs to; may be left out when there is one.
    #[serde(default)]
    pub listener: Option<String>,
    /// Server names (`api.example.com`, `*.example.com`); empty: the
    /// listener's default route.
    #[serde(default)]
    pub sni: Vec<SniPattern>,
    /// Only for clients offering one of these ALPN protocols; empty: any.
    #[serde(default)]
    pub alpn: Vec<String>,
    /// `ADDR:PORT` or `NAME:PORT`.
    pub backends: Vec<BackendAddr>,
    #[serde(default)]
    pub balance: Balance,
    #[serde(default)]
    pub proxy_protocol: ProxyProtocol,
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Backends tried for one connection before giving up.
    #[serde(default = "defaults::connect_attempts")]
    pub connect_attempts: u32,
    /// Connections at once to one backend address; 0: no limit.
    #[serde(default)]
    pub max_connections_per_backend: u32,
    /// Active TCP health checks every this often; 0: none.
    #[serde(default = "defaults::health_check_interval_ms")]
    pub health_check_interval_ms: u64,
    #[serde(default = "defaults::health_check_timeout_ms")]
    pub health_check_timeout_ms: u64,
    /// Failed checks in a row that mark a backend down.
    #[serde(default = "defaults::unhealthy_after")]
    pub unhealthy_after: u32,
    /// Passed checks in a row that mark it up again.
    #[serde(default = "defaults::healthy_after")]
    pub healthy_after: u32,
    /// Failed connects in a row (passive) that eject a backend.
    #[serde(default = "defaults::eject_after")]
    pub eject_after: u32,
    /// How long an ejected backend is left out (a passed check ends it sooner).
    #[serde(default = "defaults::eject_secs")]
    pub eject_secs: u64,
}

/// How a route picks a backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    #[default]
    RoundRobin,
    LeastConnections,
}

/// What a route sends to its backends before the client's bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyProtocol {
    #[default]
    None,
    /// A PROXY v2 header with the client's address and the SNI as AUTHORITY.
    V2,
}

/// A backend as written: an address, or a DNS name to resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BackendAddr {
    Socket(SocketAddr),
    Name { host: String, port: u16 },
}

impl fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendAddr::Socket(addr) => write!(f, "{addr}"),
            BackendAddr::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl FromStr for BackendAddr {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = s.parse() {
            return Ok(BackendAddr::Socket(addr));
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or("expected ADDR:PORT, [IPv6]:PORT or NAME:PORT")?;
        let port = port.parse().map_err(|_| "bad port")?;
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err("expected ADDR:PORT, [IPv6]:PORT or NAME:PORT with a DNS name");
        }
        Ok(BackendAddr::Name {
            host: host.to_owned(),
            port,
        })
    }
}

impl<'de> Deserialize<'de> for BackendAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

mod defaults {
    use std::net::{Ipv6Addr, SocketAddr};

    pub fn drain_timeout_secs() -> u64 {
        30
    }
    pub fn max_connections() -> u32 {
        100_000
    }
    pub fn yes() -> bool {
        true
    }
    pub fn resolve_interval_secs() -> u64 {
        30
    }
    pub fn listeners() -> Vec<super::Listener> {
        vec![super::Listener::default()]
    }
    pub fn listener_name() -> String {
        "default".to_owned()
    }
    pub fn listen() -> Vec<SocketAddr> {
        vec![SocketAddr::from((Ipv6Addr::UNSPECIFIED, 443))]
    }
    pub fn source_prefix_len_v6() -> u8 {
        64
    }
    pub fn source_prefix_len_v4() -> u8 {
        32
    }
    pub fn hello_timeout_ms() -> u64 {
        5_000
    }
    pub fn hello_max_bytes() -> usize {
        16 * 1024
    }
    pub fn idle_timeout_secs() -> u64 {
        600
    }
    pub fn backlog() -> u32 {
        4096
    }
    pub fn connect_timeout_ms() -> u64 {
        3_000
    }
    pub fn connect_attempts() -> u32 {
        3
    }
    pub fn health_check_interval_ms() -> u64 {
        5_000
    }
    pub fn health_check_timeout_ms() -> u64 {
        1_000
    }
    pub fn unhealthy_after() -> u32 {
        2
    }
    pub fn healthy_after() -> u32 {
        1
    }
    pub fn eject_after() -> u32 {
        3
    }
    pub fn eject_secs() -> u64 {
        10
    }
}

impl Default for Listener {
    fn default() -> Self {
        Self {
            name: defaults::listener_name(),
            listen: defaults::listen(),
            allow: Vec::new(),
            proxy_protocol_from: Vec::new(),
            max_connections_per_source: 0,
            source_prefix_len_v6: defaults::source_prefix_len_v6(),
            source_prefix_len_v4: defaults::source_prefix_len_v4(),
            hello_timeout_ms: defaults::hello_timeout_ms(),
            hello_max_bytes: defaults::hello_max_bytes(),
            idle_timeout_secs: defaults::idle_timeout_secs(),
            backlog: defaults::backlog(),
        }
    }
}

/// A semantic problem: the dotted key (relative to `proxy`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub reason: String,
}

fn problem(key: String, reason: impl Into<String>) -> Problem {
    Problem {
        key,
        reason: reason.into(),
    }
}

impl Config {
    /// Checks that need more than one value at a time. Keys are relative to
    /// the section (`routes[1].listener`).
    ///
    /// # Errors
    ///
    /// The first [`Problem`] found.
    pub fn validate(&self) -> Result<(), Problem> {
        if self.workers == Some(0) || self.workers.is_some_and(|w| w > 256) {
            return Err(problem("workers".into(), "must be 1..=256"));
        }
        if self.max_connections == 0 {
            return Err(problem("max_connections".into(), "must be at least 1"));
        }
        if self.resolve_interval_secs == 0 {
            return Err(problem(
                "resolve_interval_secs".into(),
                "must be at least 1",
            ));
        }
        if self.listeners.is_empty() {
            return Err(problem("listeners".into(), "needs at least one listener"));
        }
        let mut names = HashSet::new();
        let mut addrs = HashSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let key = |k: &str| format!("listeners[{i}].{k}");
            if !names.insert(l.name.as_str()) {
                return Err(problem(
                    key("name"),
                    format!("listener {:?} is defined twice", l.name),
                ));
            }
            if l.listen.is_empty() {
                return Err(problem(key("listen"), "needs at least one address"));
            }
            for addr in &l.listen {
                if addr.port() != 0 && !addrs.insert(*addr) {
                    return Err(problem(key("listen"), format!("{addr} is listed twice")));
                }
            }
            if l.source_prefix_len_v6 > 128 {
                return Err(problem(key("source_prefix_len_v6"), "must be 0..=128"));
            }
            if l.source_prefix_len_v4 > 32 {
                return Err(problem(key("source_prefix_len_v4"), "must be 0..=32"));
            }
            if l.hello_timeout_ms == 0 {
                return Err(problem(key("hello_timeout_ms"), "must be at least 1"));
            }
            if !(512..=65_536).contains(&l.hello_max_bytes) {
                return Err(problem(key("hello_max_bytes"), "must be 512..=65536"));
            }
            if l.idle_timeout_secs == 0 {
                return Err(problem(key("idle_timeout_secs"), "must be at least 1"));
            }
        }
        let mut route_names = HashSet::new();
        let mut defaults = HashSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            let key = |k: &str| format!("routes[{i}].{k}");
            if !route_names.insert(r.name.as_str()) {
                return Err(problem(
                    key("name"),
                    format!("route {:?} is defined twice", r.name),
                ));
            }
            let listener = self
                .route_listener(r)
                .map_err(|reason| problem(key("listener"), reason))?;
            if r.sni.is_empty() && r.alpn.is_empty() && !defaults.insert(listener) {
                return Err(problem(
                    key("sni"),
                    format!("listener {listener:?} already has a default route (one without sni and alpn)"),
                ));
            }
            if r.backends.is_empty() {
                return Err(problem(key("backends"), "needs at least one backend"));
            }
            if let Some(j) = r.alpn.iter().position(|a| a.is_empty() || a.len() > 255) {
                return Err(problem(
                    format!("routes[{i}].alpn[{j}]"),
                    "must be 1..=255 bytes",
                ));
            }
            if r.connect_timeout_ms == 0 {
                return Err(problem(key("connect_timeout_ms"), "must be at least 1"));
            }
            if !(1..=16).contains(&r.connect_attempts) {
                return Err(problem(key("connect_attempts"), "must be 1..=16"));
            }
            if r.health_check_interval_ms > 0 && r.health_check_timeout_ms == 0 {
                return Err(problem(
                    key("health_check_timeout_ms"),
                    "must be at least 1",
                ));
            }
            for (k, v) in [
                ("unhealthy_after", r.unhealthy_after),
                ("healthy_after", r.healthy_after),
                ("eject_after", r.eject_after),
            ] {
                if v == 0 {
                    return Err(problem(key(k), "must be at least 1"));
                }
            }
        }
        Ok(())
    }

    /// The name of the listener a route belongs to.
    ///
    /// # Errors
    ///
    /// Why it has none.
    pub fn route_listener<'a>(&'a self, route: &'a Route) -> Result<&'a str, String> {
        match &route.listener {
            Some(name) if self.listeners.iter().any(|l| &l.name == name) => Ok(name),
            Some(name) => Err(format!("no listener is named {name:?}")),
            None if self.listeners.len() == 1 => Ok(&self.listeners[0].name),
            None => Err("name the listener: there are several".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(
            "[[routes]]\nname = \"api\"\nbackends = [\"10.0.0.1:443\", \"api.default.svc:443\"]\n",
        );
        c.validate().unwrap();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].listen, vec!["[::]:443".parse().unwrap()]);
        assert_eq!(
            c.routes[0].backends[1],
            BackendAddr::Name {
                host: "api.default.svc".into(),
                port: 443
            }
        );
        assert_eq!(c.routes[0].balance, Balance::RoundRobin);
    }

    #[test]
    fn route_on_a_missing_listener_is_named() {
        let c = parse(
            "[[listeners]]\nname = \"a\"\n[[routes]]\nname = \"r\"\nlistener = \"b\"\nbackends = [\"10.0.0.1:1\"]\n",
        );
        let p = c.validate().unwrap_err();
        assert_eq!(p.key, "routes[0].listener");
        assert!(p.reason.contains("\"b\""), "{}", p.reason);
    }

    #[test]
    fn two_default_routes_on_one_listener_are_refused() {
        let c = parse(
            "[[routes]]\nname = \"a\"\nbackends = [\"10.0.0.1:1\"]\n[[routes]]\nname = \"b\"\nbackends = [\"10.0.0.1:2\"]\n",
        );
        assert_eq!(c.validate().unwrap_err().key, "routes[1].sni");
    }

    #[test]
    fn bad_backend_and_prefix_are_refused_while_parsing() {
        let err = toml::from_str::<Config>("[[routes]]\nname = \"a\"\nbackends = [\"no port\"]\n")
            .unwrap_err();
        assert!(err.to_string().contains("NAME:PORT"), "{err}");
        let err = toml::from_str::<Config>(
            "[[listeners]]\nallow = [\"fd00::1/8\"]\n[[routes]]\nname = \"a\"\nbackends = [\"h:1\"]\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("host bits"), "{err}");
    }
}
