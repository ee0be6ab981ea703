//! The `[dns64]` section of the config file, read into domain types.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use hickory_proto::rr::Name;
use serde::Deserialize;
use sixgate_xlat::prefix64::WELL_KNOWN;
use sixgate_xlat::Prefix64;

use crate::net::{self, Prefix};
use crate::synth::{AaaaMode, Policy};

/// The `[dns64]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Addresses to serve on, UDP and TCP each.
    #[serde(default = "defaults::listen")]
    pub listen: Vec<SocketAddr>,
    /// Forwarders, tried in order; empty: the nameservers of /etc/resolv.conf.
    #[serde(default)]
    pub forwarders: Vec<SocketAddr>,
    /// The NAT64 prefix synthesized addresses are made from.
    #[serde(default = "defaults::prefix")]
    pub prefix: Prefix64,
    /// Other prefixes for some clients (the first entry whose `clients` match wins).
    #[serde(default)]
    pub client_prefixes: Vec<ClientPrefix>,
    /// `"prefer-native"` or `"synthesize-all"`.
    #[serde(default)]
    pub aaaa: AaaaMode,
    /// Zones never touched by DNS64 (for example `cluster.local`).
    #[serde(default)]
    pub exempt: Vec<Zone>,
    /// AAAA records in these ranges are treated as absent.
    #[serde(default = "defaults::exclude")]
    pub exclude: Vec<Prefix>,
    /// IPv4 ranges that may be synthesized; empty: all.
    #[serde(default)]
    pub mapped: Vec<Prefix>,
    /// Clients allowed to query; the others get REFUSED.
    #[serde(default = "defaults::allow")]
    pub allow: Vec<Prefix>,
    /// Time to wait for one forwarder's answer, in milliseconds.
    #[serde(default = "defaults::upstream_timeout_ms")]
    pub upstream_timeout_ms: u64,
    /// Rounds over the forwarder list before giving up.
    #[serde(default = "defaults::upstream_attempts")]
    pub upstream_attempts: u32,
    /// Memory the answer cache may use, in MiB (0: no cache).
    #[serde(default = "defaults::cache_mib")]
    pub cache_mib: u64,
    /// Longest time an answer is cached, in seconds.
    #[serde(default = "defaults::max_ttl")]
    pub max_ttl: u32,
    /// Longest time a negative answer is cached, in seconds (RFC 2308 §5).
    #[serde(default = "defaults::max_negative_ttl")]
    pub max_negative_ttl: u32,
    /// Refresh a cached answer asked for in the last tenth of its TTL (TTL >= 10 s).
    #[serde(default = "defaults::prefetch")]
    pub prefetch: bool,
    /// Give expired answers (TTL 30 s) when every forwarder fails (RFC 8767).
    #[serde(default)]
    pub serve_stale: bool,
    /// How long after expiry an answer may still be served stale, in seconds.
    #[serde(default = "defaults::stale_window")]
    pub stale_window: u32,
    /// With serve-stale, how long a client waits for the forwarders before it
    /// gets the expired answer (RFC 8767 §5 suggests 1.8 s), in milliseconds.
    #[serde(default = "defaults::stale_answer_after_ms")]
    pub stale_answer_after_ms: u64,
    /// Our EDNS(0) UDP payload size.
    #[serde(default = "defaults::udp_payload")]
    pub udp_payload: u16,
    /// Client TCP connections served at once.
    #[serde(default = "defaults::max_tcp_connections")]
    pub max_tcp_connections: usize,
    /// A client TCP connection idle this long is closed, in milliseconds.
    #[serde(default = "defaults::tcp_idle_ms")]
    pub tcp_idle_ms: u64,
    /// Queries waiting for forwarders at once; more are dropped and counted.
    #[serde(default = "defaults::max_inflight")]
    pub max_inflight: usize,
}

/// `[[dns64.client_prefixes]]`: a prefix for some clients (like BIND's `clients`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPrefix {
    pub clients: Vec<Prefix>,
    pub prefix: Prefix64,
}

/// A DNS zone name from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone(pub Name);

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let mut name = Name::from_ascii(&s)
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a domain name: {e}")))?;
        name.set_fqdn(true);
        Ok(Zone(name.to_lowercase()))
    }
}

mod defaults {
    use super::*;

    pub fn listen() -> Vec<SocketAddr> {
        vec![
            "[::]:53".parse().expect("constant"),
            "0.0.0.0:53".parse().expect("constant"),
        ]
    }
    pub fn prefix() -> Prefix64 {
        WELL_KNOWN
    }
    pub fn exclude() -> Vec<Prefix> {
        vec!["::ffff:0:0/96".parse().expect("constant")]
    }
    pub fn allow() -> Vec<Prefix> {
        [
            "127.0.0.0/8",
            "::1/128",
            "fc00::/7",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
        ]
        .iter()
        .map(|s| s.parse().expect("constant"))
        .collect()
    }
    pub fn upstream_timeout_ms() -> u64 {
        1000
    }
    pub fn upstream_attempts() -> u32 {
        2
    }
    pub fn cache_mib() -> u64 {
        64
    }
    pub fn max_ttl() -> u32 {
        86_400
    }
    pub fn max_negative_ttl() -> u32 {
        3600
    }
    pub fn stale_window() -> u32 {
        86_400
    }
    pub fn prefetch() -> bool {
        true
    }
    pub fn stale_answer_after_ms() -> u64 {
        1800
    }
    pub fn udp_payload() -> u16 {
        1232
    }
    pub fn max_tcp_connections() -> usize {
        512
    }
    pub fn tcp_idle_ms() -> u64 {
        10_000
    }
    pub fn max_inflight() -> usize {
        4096
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: defaults::listen(),
            forwarders: Vec::new(),
            prefix: defaults::prefix(),
            client_prefixes: Vec::new(),
            aaaa: AaaaMode::default(),
            exempt: Vec::new(),
            exclude: defaults::exclude(),
            mapped: Vec::new(),
            allow: defaults::allow(),
            upstream_timeout_ms: defaults::upstream_timeout_ms(),
            upstream_attempts: defaults::upstream_attempts(),
            cache_mib: defaults::cache_mib(),
            max_ttl: defaults::max_ttl(),
            max_negative_ttl: defaults::max_negative_ttl(),
            prefetch: defaults::prefetch(),
            serve_stale: false,
            stale_window: defaults::stale_window(),
            stale_answer_after_ms: defaults::stale_answer_after_ms(),
            udp_payload: defaults::udp_payload(),
            max_tcp_connections: defaults::max_tcp_connections(),
            tcp_idle_ms: defaults::tcp_idle_ms(),
            max_inflight: defaults::max_inflight(),
        }
    }
}

/// A semantic problem in the section: the key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: &'static str,
    pub reason: String,
}

impl Config {
    /// Checks that need more than one value at a time.
    pub fn check(&self) -> Result<(), Problem> {
        let problem = |key, reason: &str| {
            Err(Problem {
                key,
                reason: reason.to_owned(),
            })
        };
        if self.listen.is_empty() {
            return problem("dns64.listen", "at least one address is needed");
        }
        if self.upstream_timeout_ms == 0 || self.upstream_timeout_ms > 30_000 {
            return problem("dns64.upstream_timeout_ms", "must be between 1 and 30000");
        }
        if self.stale_answer_after_ms > 30_000 {
            return problem("dns64.stale_answer_after_ms", "must be at most 30000");
        }
        if self.upstream_attempts == 0 || self.upstream_attempts > 10 {
            return problem("dns64.upstream_attempts", "must be between 1 and 10");
        }
        if self.udp_payload < 512 {
            return problem(
                "dns64.udp_payload",
                "must be at least 512 (RFC 6891 §6.2.5)",
            );
        }
        if self.max_inflight == 0 {
            return problem("dns64.max_inflight", "must be above 0");
        }
        if self.client_prefixes.iter().any(|c| c.clients.is_empty()) {
            return problem(
                "dns64.client_prefixes.clients",
                "must name at least one network",
            );
        }
        if self.client_prefixes.len() > 254 {
            return problem("dns64.client_prefixes", "at most 254 entries");
        }
        Ok(())
    }

    /// The synthesis policy.
    pub fn policy(&self) -> Policy {
        Policy {
            mode: self.aaaa,
            exclude: self.exclude.clone(),
            mapped: self.mapped.clone(),
            exempt: self.exempt.iter().map(|z| z.0.clone()).collect(),
            ..Policy::default()
        }
    }

    /// The prefix for a client and its index (0: the default prefix).
    pub fn prefix_for(&self, client: IpAddr) -> (u8, &Prefix64) {
        for (i, entry) in self.client_prefixes.iter().enumerate() {
            if net::client_in(&entry.clients, client) {
                return (u8::try_from(i + 1).unwrap_or(u8::MAX), &entry.prefix);
            }
        }
        (0, &self.prefix)
    }

    /// The forwarders, or those of `resolv_conf` when none are configured.
    pub fn forwarders_or(&self, resolv_conf: &Path) -> Result<Vec<SocketAddr>, String> {
        if !self.forwarders.is_empty() {
            return Ok(self.forwarders.clone());
        }
        let text = std::fs::read_to_string(resolv_conf).map_err(|e| {
            format!(
                "no forwarders configured and {} cannot be read: {e}",
                resolv_conf.display()
            )
        })?;
        let found = nameservers(&text);
        if found.is_empty() {
            return Err(format!(
                "no forwarders configured and {} names no nameserver",
                resolv_conf.display()
            ));
        }
        Ok(found)
    }
}

/// The `nameserver` lines of a resolv.conf, on port 53.
pub fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            // A scoped address (fe80::1%eth0) is refused rather than guessed at.
            let addr: IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(addr, 53))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_become_forwarders() {
        let text = "# comment\nsearch x\nnameserver 10.0.0.53\nnameserver ::1\nnameserver fe80::1%eth0\noptions ndots:5\n";
        assert_eq!(
            nameservers(text),
            vec!["10.0.0.53:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
    }

    #[test]
    fn forwarders_default_to_resolv_conf_and_configured_ones_win() {
        let dir = std::env::temp_dir().join(format!("sixgate-dns64-resolv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let resolv = dir.join("resolv.conf");
        std::fs::write(&resolv, "nameserver 192.0.2.53\n").unwrap();
        let mut c = Config::default();
        assert_eq!(
            c.forwarders_or(&resolv),
            Ok(vec!["192.0.2.53:53".parse().unwrap()])
        );
        c.forwarders = vec!["[2001:db8::53]:5353".parse().unwrap()];
        assert_eq!(c.forwarders_or(&resolv), Ok(c.forwarders.clone()));
        c.forwarders.clear();
        std::fs::write(&resolv, "search example\n").unwrap();
        assert!(c
            .forwarders_or(&resolv)
            .unwrap_err()
            .contains("names no nameserver"));
        assert!(c
            .forwarders_or(&dir.join("missing"))
            .unwrap_err()
            .contains("cannot be read"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn client_prefixes_are_chosen_by_source() {
        let mut c = Config::default();
        c.client_prefixes.push(ClientPrefix {
            clients: vec!["fd00:1::/32".parse().unwrap()],
            prefix: "2001:db8:1::/96".parse().unwrap(),
        });
        assert_eq!(c.prefix_for("fd00:1::5".parse().unwrap()).0, 1);
        assert_eq!(*c.prefix_for("fd00:2::5".parse().unwrap()).1, WELL_KNOWN);
    }

    #[test]
    fn defaults_are_not_an_open_resolver() {
        let c = Config::default();
        let allowed = |a: &str| net::client_in(&c.allow, a.parse().unwrap());
        assert!(
            allowed("127.0.0.1") && allowed("::1") && allowed("fd12::1") && allowed("192.168.1.1")
        );
        assert!(!allowed("8.8.8.8") && !allowed("2001:db8::1"));
        assert!(c.check().is_ok());
    }
}
