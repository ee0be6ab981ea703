//! The `[node]` section as read from TOML, and [`Config::plan`], which checks
//! it as a whole and turns it into a [`Plan`] the renderer and the applier take.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::types::{IfName, Period, Prefix};

/// The probe source of the Azure load balancer (link-local; RFC 4291 §2.5.6
/// forbids forwarding it) and the global address Azure set aside for it.
pub const AZURE_LB_PROBE_FROM: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0x1234, 0x5678, 0x9abc);
/// The global address the probe source is rewritten to.
pub const AZURE_LB_PROBE_TO: Ipv6Addr =
    Ipv6Addr::new(0x2603, 0x1062, 0, 1, 0xfe80, 0x1234, 0x5678, 0x9abc);

/// Shortest and longest `watch_period`.
pub const MIN_PERIOD: Duration = Duration::from_millis(100);
pub const MAX_PERIOD: Duration = Duration::from_secs(3600);
/// Default `watch_period`.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(10);

/// The `[node]` section of the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The interface that leads out of the node (egress SNAT leaves by it; its
    /// global IPv6 address turns the IPv6 rules on). Default interface of rewrites.
    pub uplink: Option<IfName>,
    /// How to learn whether the node has IPv6.
    #[serde(default)]
    pub ipv6_detect: Ipv6Detect,
    /// Stateless source rewrites before routing.
    #[serde(default)]
    pub rewrites: Vec<RewriteConfig>,
    /// IPv6 egress SNAT for pod prefixes.
    pub egress: Option<EgressConfig>,
    /// Routes sixgate owns (NAT64 prefix, pool4).
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// How often `watch` compares the live rules and routes with the config.
    #[serde(default = "default_period")]
    pub watch_period: Period,
}

fn default_period() -> Period {
    Period(DEFAULT_PERIOD)
}

/// Where the answer to "does this node have IPv6?" comes from. An enum so that a
/// cloud metadata source (the seed asked Azure IMDS) can join without changing
/// the rest; see `detect::Ipv6Source`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ipv6Detect {
    /// A global-scope IPv6 address on the uplink (read from the kernel's interfaces).
    #[default]
    Interfaces,
    /// Always apply the IPv6 rules.
    Assume,
}

/// Named rewrites that are known to be needed somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Azure load balancer health probes: `fe80::1234:5678:9abc` →
    /// `2603:1062:0:1:fe80:1234:5678:9abc` (AgentBaker PR 2393).
    AzureLbProbe,
}

/// One `[[node.rewrites]]` entry: a preset, or `from` and `to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteConfig {
    pub preset: Option<Preset>,
    pub from: Option<Ipv6Addr>,
    pub to: Option<Ipv6Addr>,
    /// Where the packets with source `from` arrive; defaults to `uplink`.
    pub interface: Option<IfName>,
    /// Add the route `to/128 via from dev interface` so replies find their way back.
    #[serde(default = "yes")]
    pub reply_route: bool,
}

fn yes() -> bool {
    true
}

/// `[node.egress]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Sources to translate (pod prefixes).
    pub pod_prefixes: Vec<Prefix>,
    /// Destinations never translated (pod, service and node prefixes of the cluster).
    #[serde(default)]
    pub cluster_prefixes: Vec<Prefix>,
    /// `"masquerade"` (the address of the outgoing interface) or one IPv6 address.
    #[serde(default)]
    pub snat: Snat,
    /// The interface the translated traffic leaves by; defaults to `uplink`.
    pub interface: Option<IfName>,
}

/// The source address egress traffic gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Snat {
    #[default]
    Masquerade,
    To(Ipv6Addr),
}

impl<'de> Deserialize<'de> for Snat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "masquerade" {
            return Ok(Snat::Masquerade);
        }
        s.parse().map(Snat::To).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{s}` is neither \"masquerade\" nor an IPv6 address"
            ))
        })
    }
}

/// One `[[node.routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The destination: a NAT64 prefix (`64:ff9b::/96`) or a pool4 (`192.0.2.0/24`).
    pub prefix: Prefix,
    /// Out of this interface (a TUN device such as the nat64 part's).
    pub dev: Option<IfName>,
    /// Through this next hop.
    pub via: Option<IpAddr>,
    /// Route metric; the kernel's default when absent (1024 for IPv6, 0 for IPv4).
    pub metric: Option<u32>,
}

/// A semantic error: the key it is about and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct Invalid {
    pub key: String,
    pub reason: String,
}

impl Invalid {
    fn new(key: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

/// The checked section: what the renderer and the applier work from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub uplink: Option<IfName>,
    pub detect: Ipv6Detect,
    pub rewrites: Vec<Rewrite>,
    pub egress: Option<Egress>,
    pub routes: Vec<Route>,
    pub period: Duration,
}

/// A checked stateless rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub from: Ipv6Addr,
    pub to: Ipv6Addr,
    pub interface: IfName,
    pub reply_route: bool,
    /// Config key, for messages (`node.rewrites[0]`).
    pub key: String,
}

/// A checked egress SNAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    pub interface: IfName,
    pub pods: Vec<Prefix>,
    /// Destinations left alone: the cluster prefixes and the pod prefixes.
    pub exempt: Vec<Prefix>,
    pub snat: Snat,
    pub key: String,
}

/// A route sixgate owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: Prefix,
    pub dev: Option<IfName>,
    pub via: Option<IpAddr>,
    pub metric: Option<u32>,
    /// Needed when `via` is not on a connected prefix of `dev` (a reply route
    /// toward a global `from`).
    pub onlink: bool,
    pub key: String,
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

fn unusable(a: Ipv6Addr) -> Option<&'static str> {
    if a.is_unspecified() {
        Some("the unspecified address")
    } else if a.is_loopback() {
        Some("the loopback address")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

impl Config {
    /// Checks the section as a whole; the first problem found is returned
    /// with its key (`node.rewrites[1].to`) and the reason.
    pub fn plan(&self) -> Result<Plan, Invalid> {
        let period = self.watch_period.0;
        if !(MIN_PERIOD..=MAX_PERIOD).contains(&period) {
            return Err(Invalid::new(
                "node.watch_period",
                format!("must be between {MIN_PERIOD:?} and {MAX_PERIOD:?}, not {period:?}"),
            ));
        }
        let mut rewrites = Vec::new();
        let mut seen = HashSet::new();
        for (i, r) in self.rewrites.iter().enumerate() {
            let key = format!("node.rewrites[{i}]");
            let (from, to) = match (r.preset, r.from, r.to) {
                (Some(Preset::AzureLbProbe), None, None) => {
                    (AZURE_LB_PROBE_FROM, AZURE_LB_PROBE_TO)
                }
                (Some(_), _, _) => {
                    return Err(Invalid::new(
                        format!("{key}.preset"),
                        "a preset sets `from` and `to`: give either a preset or both addresses",
                    ))
                }
                (None, Some(from), Some(to)) => (from, to),
                (None, None, _) => {
                    return Err(Invalid::new(
                        format!("{key}.from"),
                        "missing: give `from` and `to`, or a `preset`",
                    ))
                }
                (None, Some(_), None) => {
                    return Err(Invalid::new(
                        format!("{key}.to"),
                        "missing: the address `from` is rewritten to",
                    ))
                }
            };
            if let Some(what) = unusable(from) {
                return Err(Invalid::new(
                    format!("{key}.from"),
                    format!("{from} is {what}, not a packet source"),
                ));
            }
            if let Some(what) = unusable(to) {
                return Err(Invalid::new(
                    format!("{key}.to"),
                    format!("{to} is {what}, not a packet source"),
                ));
            }
            if is_link_local(to) {
                return Err(Invalid::new(
                    format!("{key}.to"),
                    format!("{to} is link-local: the node would still refuse to forward it"),
                ));
            }
            if from == to {
                return Err(Invalid::new(
                    format!("{key}.to"),
                    "is the same address as `from`",
                ));
            }
            let interface = r
                .interface
                .clone()
                .or_else(|| self.uplink.clone())
                .ok_or_else(|| {
                    Invalid::new(
                        format!("{key}.interface"),
                        "missing: name the interface the packets arrive on, or set node.uplink",
                    )
                })?;
            if !seen.insert((from, interface.clone())) {
                return Err(Invalid::new(
                    key,
                    format!("{from} on {interface} is already rewritten by an earlier entry"),
                ));
            }
            rewrites.push(Rewrite {
                from,
                to,
                interface,
                reply_route: r.reply_route,
                key,
            });
        }
        let egress = self.egress.as_ref().map(|e| self.egress(e)).transpose()?;
        let mut routes = Vec::new();
        let mut seen = HashSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            let key = format!("node.routes[{i}]");
            if r.dev.is_none() && r.via.is_none() {
                return Err(Invalid::new(
                    format!("{key}.dev"),
                    "missing: give `dev` (a TUN device), `via` (a next hop) or both",
                ));
            }
            if let Some(via) = r.via {
                if via.is_ipv6() != r.prefix.is_ipv6() {
                    return Err(Invalid::new(
                        format!("{key}.via"),
                        format!("{via} is not of the family of {}", r.prefix),
                    ));
                }
                if let IpAddr::V6(v6) = via {
                    if is_link_local(v6) && r.dev.is_none() {
                        return Err(Invalid::new(
                            format!("{key}.dev"),
                            format!("missing: the link-local next hop {via} needs its interface"),
                        ));
                    }
                }
                if via.is_unspecified() || via.is_multicast() || via.is_loopback() {
                    return Err(Invalid::new(
                        format!("{key}.via"),
                        format!("{via} cannot be a next hop"),
                    ));
                }
            }
            if !seen.insert((r.prefix, r.metric)) {
                return Err(Invalid::new(
                    format!("{key}.prefix"),
                    format!("{} is already routed by an earlier entry", r.prefix),
                ));
            }
            routes.push(Route {
                prefix: r.prefix,
                dev: r.dev.clone(),
                via: r.via,
                metric: r.metric,
                onlink: false,
                key,
            });
        }
        let plan = Plan {
            uplink: self.uplink.clone(),
            detect: self.ipv6_detect,
            rewrites,
            egress,
            routes,
            period,
        };
        if plan.has_ipv6_rules() && plan.detect == Ipv6Detect::Interfaces && plan.uplink.is_none() {
            return Err(Invalid::new(
                "node.uplink",
                "missing: the IPv6 rules are applied only when the uplink has a global IPv6 \
                 address (or set ipv6_detect = \"assume\")",
            ));
        }
        Ok(plan)
    }

    fn egress(&self, e: &EgressConfig) -> Result<Egress, Invalid> {
        let key = "node.egress".to_owned();
        let interface = e
            .interface
            .clone()
            .or_else(|| self.uplink.clone())
            .ok_or_else(|| {
                Invalid::new(
                    format!("{key}.interface"),
                    "missing: name the interface traffic leaves by, or set node.uplink",
                )
            })?;
        if e.pod_prefixes.is_empty() {
            return Err(Invalid::new(
                format!("{key}.pod_prefixes"),
                "is empty: list the pod prefixes to translate",
            ));
        }
        for (name, list) in [
            ("pod_prefixes", &e.pod_prefixes),
            ("cluster_prefixes", &e.cluster_prefixes),
        ] {
            if let Some((i, p)) = list.iter().enumerate().find(|(_, p)| !p.is_ipv6()) {
                return Err(Invalid::new(
                    format!("{key}.{name}[{i}]"),
                    format!("{p} is not an IPv6 prefix"),
                ));
            }
        }
        if let Snat::To(addr) = e.snat {
            if let Some(what) = unusable(addr) {
                return Err(Invalid::new(
                    format!("{key}.snat"),
                    format!("{addr} is {what}"),
                ));
            }
            if is_link_local(addr) {
                return Err(Invalid::new(
                    format!("{key}.snat"),
                    format!("{addr} is link-local: it cannot leave the link"),
                ));
            }
        }
        let mut exempt = e.cluster_prefixes.clone();
        for p in &e.pod_prefixes {
            if !exempt.iter().any(|c| c.contains_prefix(p)) {
                exempt.push(*p);
            }
        }
        Ok(Egress {
            interface,
            pods: e.pod_prefixes.clone(),
            exempt,
            snat: e.snat,
            key,
        })
    }
}

impl Plan {
    /// Whether the plan holds nftables rules (all of them are IPv6 rules).
    pub fn has_ipv6_rules(&self) -> bool {
        !self.rewrites.is_empty() || self.egress.is_some()
    }

    /// The routes to install: the configured ones, plus the reply routes of
    /// the rewrites when the IPv6 rules are on.
    pub fn routes(&self, ipv6_rules: bool) -> Vec<Route> {
        let mut routes = self.routes.clone();
        if ipv6_rules {
            for r in self.rewrites.iter().filter(|r| r.reply_route) {
                routes.push(Route {
                    prefix: Prefix::host(IpAddr::V6(r.to)),
                    dev: Some(r.interface.clone()),
                    via: Some(IpAddr::V6(r.from)),
                    metric: None,
                    onlink: !is_link_local(r.from),
                    key: format!("{}.reply_route", r.key),
                });
            }
        }
        routes
    }

    /// Every interface the plan names, with the key that names it.
    pub fn interfaces(&self, ipv6_rules: bool) -> Vec<(String, IfName)> {
        let mut out = Vec::new();
        if ipv6_rules {
            for r in &self.rewrites {
                out.push((format!("{}.interface", r.key), r.interface.clone()));
            }
            if let Some(e) = &self.egress {
                out.push((format!("{}.interface", e.key), e.interface.clone()));
            }
        }
        for r in &self.routes {
            if let Some(dev) = &r.dev {
                out.push((format!("{}.dev", r.key), dev.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Plan, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.plan().map_err(|e| e.to_string())
    }

    #[test]
    fn preset_gives_the_azure_probe_addresses_on_the_uplink() {
        let p = plan("uplink = \"eth0\"\n[[rewrites]]\npreset = \"azure-lb-probe\"\n").unwrap();
        assert_eq!(p.rewrites.len(), 1);
        assert_eq!(p.rewrites[0].from.to_string(), "fe80::1234:5678:9abc");
        assert_eq!(
            p.rewrites[0].to.to_string(),
            "2603:1062:0:1:fe80:1234:5678:9abc"
        );
        assert_eq!(p.rewrites[0].interface.as_str(), "eth0");
        assert_eq!(p.period, DEFAULT_PERIOD);
    }

    #[test]
    fn reply_route_goes_back_through_the_link_local_source() {
        let p = plan("uplink = \"eth0\"\n[[rewrites]]\npreset = \"azure-lb-probe\"\n").unwrap();
        let routes = p.routes(true);
        assert_eq!(routes.len(), 1);
        assert_eq!(
            routes[0].prefix.to_string(),
            "2603:1062:0:1:fe80:1234:5678:9abc/128"
        );
        assert_eq!(routes[0].via.unwrap().to_string(), "fe80::1234:5678:9abc");
        assert!(!routes[0].onlink);
        assert!(p.routes(false).is_empty());
    }

    #[test]
    fn bad_values_name_key_and_reason() {
        let err =
            plan("[[rewrites]]\nfrom = \"fe80::1\"\nto = \"fe80::2\"\ninterface = \"eth0\"\n")
                .unwrap_err();
        assert!(
            err.contains("node.rewrites[0].to: fe80::2 is link-local"),
            "{err}"
        );
        let err = plan("uplink = \"eth0\"\n[[rewrites]]\nfrom = \"fe80::1\"\n").unwrap_err();
        assert!(err.starts_with("node.rewrites[0].to: missing"), "{err}");
        let err = plan("[[rewrites]]\npreset = \"azure-lb-probe\"\n").unwrap_err();
        assert!(
            err.starts_with("node.rewrites[0].interface: missing"),
            "{err}"
        );
        let err = plan("ipv6_detect = \"assume\"\n[egress]\npod_prefixes = [\"10.0.0.0/8\"]\ninterface = \"eth0\"\n")
            .unwrap_err();
        assert!(
            err.starts_with("node.egress.pod_prefixes[0]: 10.0.0.0/8 is not an IPv6"),
            "{err}"
        );
        let err = plan("[[routes]]\nprefix = \"64:ff9b::/96\"\nvia = \"192.0.2.1\"\n").unwrap_err();
        assert!(err.starts_with("node.routes[0].via:"), "{err}");
        let err = plan("[[routes]]\nprefix = \"64:ff9b::/96\"\n").unwrap_err();
        assert!(err.starts_with("node.routes[0].dev: missing"), "{err}");
        let err = plan("watch_period = \"1ms\"\n").unwrap_err();
        assert!(err.starts_with("node.watch_period:"), "{err}");
    }

    #[test]
    fn detection_from_interfaces_needs_an_uplink() {
        let text = "[[rewrites]]\npreset = \"azure-lb-probe\"\ninterface = \"eth0\"\n";
        let err = plan(text).unwrap_err();
        assert!(err.starts_with("node.uplink: missing"), "{err}");
        assert!(plan(&format!("ipv6_detect = \"assume\"\n{text}")).is_ok());
    }

    #[test]
    fn egress_exempts_pod_prefixes_not_already_in_cluster_prefixes() {
        let p = plan(
            "uplink = \"eth0\"\n[egress]\npod_prefixes = [\"fd00:40::/56\", \"2001:db8:40::/64\"]\n\
             cluster_prefixes = [\"fd00::/16\"]\nsnat = \"2001:db8::100\"\n",
        )
        .unwrap();
        let e = p.egress.unwrap();
        let exempt: Vec<String> = e.exempt.iter().map(ToString::to_string).collect();
        assert_eq!(exempt, ["fd00::/16", "2001:db8:40::/64"]);
        assert_eq!(e.snat, Snat::To("2001:db8::100".parse().unwrap()));
    }

    #[test]
    fn duplicate_rewrites_and_routes_are_refused() {
        let err = plan(
            "uplink = \"eth0\"\n[[rewrites]]\npreset = \"azure-lb-probe\"\n\
             [[rewrites]]\nfrom = \"fe80::1234:5678:9abc\"\nto = \"2001:db8::1\"\n",
        )
        .unwrap_err();
        assert!(err.starts_with("node.rewrites[1]:"), "{err}");
        let err = plan(
            "[[routes]]\nprefix = \"64:ff9b::/96\"\ndev = \"t\"\n[[routes]]\nprefix = \"64:ff9b::/96\"\ndev = \"u\"\n",
        )
        .unwrap_err();
        assert!(err.starts_with("node.routes[1].prefix:"), "{err}");
    }
}
