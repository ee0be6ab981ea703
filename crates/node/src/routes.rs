//! Routes sixgate owns, as data: the `ip route` arguments that install and
//! remove them, the parser of `ip -N -j route show`, and the comparison of
//! the wanted routes with the live ones. Sans-IO; `crate::system` runs `ip`.
//!
//! Ownership is marked in the kernel itself: every route sixgate adds carries
//! the routing protocol number [`PROTO`], so `delete` removes exactly those,
//! a restarted sixgate finds its own routes, and a route someone else made
//! for the same destination is never replaced (it is reported instead).

use std::net::IpAddr;

use serde::Deserialize;

use crate::config::Route;
use crate::types::Prefix;

/// The route protocol number that marks sixgate's routes (`proto 166`).
/// Unassigned in iproute2's `rt_protos` (which uses 0-18, 42, 99, 186-192).
pub const PROTO: u8 = 166;

/// The kernel's default metric for a route added without one.
pub fn default_metric(ipv6: bool) -> u32 {
    if ipv6 {
        1024
    } else {
        0
    }
}

fn family(ipv6: bool) -> &'static str {
    if ipv6 {
        "-6"
    } else {
        "-4"
    }
}

impl Route {
    pub fn metric_or_default(&self) -> u32 {
        self.metric
            .unwrap_or_else(|| default_metric(self.prefix.is_ipv6()))
    }

    /// `ip` arguments that install or update this route.
    pub fn replace_args(&self) -> Vec<String> {
        let mut args = vec![
            family(self.prefix.is_ipv6()).to_owned(),
            "route".to_owned(),
            "replace".to_owned(),
            self.prefix.to_string(),
        ];
        if let Some(via) = self.via {
            args.extend(["via".to_owned(), via.to_string()]);
        }
        if let Some(dev) = &self.dev {
            args.extend(["dev".to_owned(), dev.to_string()]);
        }
        args.extend([
            "proto".to_owned(),
            PROTO.to_string(),
            "metric".to_owned(),
            self.metric_or_default().to_string(),
        ]);
        if self.onlink {
            args.push("onlink".to_owned());
        }
        args
    }

    /// Whether `live` is this route as installed.
    fn is(&self, live: &LiveRoute) -> bool {
        live.prefix == self.prefix
            && live.metric == self.metric_or_default()
            && live.gateway == self.via
            && self
                .dev
                .as_ref()
                .is_none_or(|dev| live.dev.as_deref() == Some(dev.as_str()))
    }
}

/// A route as `ip -N -j route show` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRoute {
    pub prefix: Prefix,
    pub gateway: Option<IpAddr>,
    pub dev: Option<String>,
    pub metric: u32,
    pub protocol: String,
}

impl LiveRoute {
    pub fn owned(&self) -> bool {
        self.protocol == PROTO.to_string()
    }

    /// `ip` arguments that remove this route.
    pub fn delete_args(&self) -> Vec<String> {
        let mut args = vec![
            family(self.prefix.is_ipv6()).to_owned(),
            "route".to_owned(),
            "del".to_owned(),
            self.prefix.to_string(),
            "proto".to_owned(),
            self.protocol.clone(),
            "metric".to_owned(),
            self.metric.to_string(),
        ];
        if let Some(dev) = &self.dev {
            args.extend(["dev".to_owned(), dev.clone()]);
        }
        args
    }
}

impl std::fmt::Display for LiveRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.prefix)?;
        if let Some(g) = self.gateway {
            write!(f, " via {g}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        write!(f, " proto {} metric {}", self.protocol, self.metric)
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.prefix)?;
        if let Some(g) = self.via {
            write!(f, " via {g}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        write!(f, " proto {PROTO} metric {}", self.metric_or_default())
    }
}

#[derive(Deserialize)]
struct JsonRoute {
    dst: String,
    gateway: Option<String>,
    dev: Option<String>,
    protocol: Option<serde_json::Value>,
    metric: Option<u32>,
}

/// Parses the output of `ip -N -j -4|-6 route show`. Entries that are not
/// unicast prefixes this module understands (`unreachable`, broadcast, ...)
/// are skipped; malformed JSON is an error.
pub fn parse_ip_json(text: &str, ipv6: bool) -> Result<Vec<LiveRoute>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let routes: Vec<JsonRoute> =
        serde_json::from_str(text).map_err(|e| format!("cannot read `ip -j route`: {e}"))?;
    let mut out = Vec::new();
    for r in routes {
        let prefix = if r.dst == "default" {
            if ipv6 {
                "::/0".parse()
            } else {
                "0.0.0.0/0".parse()
            }
        } else {
            r.dst.parse::<Prefix>()
        };
        let Ok(prefix) = prefix else { continue };
        if prefix.is_ipv6() != ipv6 {
            continue;
        }
        let protocol = match r.protocol {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        out.push(LiveRoute {
            prefix,
            gateway: r.gateway.and_then(|g| g.parse().ok()),
            dev: r.dev,
            metric: r.metric.unwrap_or_else(|| default_metric(ipv6)),
            protocol,
        });
    }
    Ok(out)
}

/// What it takes to turn the live routes into the wanted ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteChanges {
    /// Missing or different: `ip route replace`.
    pub replace: Vec<Route>,
    /// Owned by sixgate but no longer wanted: `ip route del`.
    pub delete: Vec<LiveRoute>,
    /// Wanted, but the destination is taken by a route sixgate does not own.
    pub conflicts: Vec<(Route, LiveRoute)>,
}

impl RouteChanges {
    pub fn is_empty(&self) -> bool {
        self.replace.is_empty() && self.delete.is_empty() && self.conflicts.is_empty()
    }
}

/// Compares the wanted routes with the live ones (both families together).
pub fn compare(wanted: &[Route], live: &[LiveRoute]) -> RouteChanges {
    let mut changes = RouteChanges::default();
    for route in wanted {
        let same_slot =
            |l: &&LiveRoute| l.prefix == route.prefix && l.metric == route.metric_or_default();
        if let Some(other) = live.iter().filter(same_slot).find(|l| !l.owned()) {
            changes.conflicts.push((route.clone(), other.clone()));
        } else if !live.iter().filter(same_slot).any(|l| route.is(l)) {
            changes.replace.push(route.clone());
        }
    }
    for l in live.iter().filter(|l| l.owned()) {
        let wanted_slot = wanted
            .iter()
            .any(|r| r.prefix == l.prefix && r.metric_or_default() == l.metric);
        if !wanted_slot {
            changes.delete.push(l.clone());
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE6: &str = r#"[{"dst":"2001:db8:1::/64","dev":"eth0","protocol":"2","metric":256,"flags":[]},
        {"dst":"2603:1062:0:1:fe80:1234:5678:9abc","gateway":"fe80::1234:5678:9abc","dev":"eth0","protocol":"166","metric":1024,"flags":[]},
        {"dst":"64:ff9b:1::/96","dev":"tun9","protocol":"166","metric":1024,"flags":[]},
        {"dst":"default","gateway":"fe80::1","dev":"eth0","protocol":"9","metric":1024,"flags":[]}]"#;

    fn route(prefix: &str, via: Option<&str>, dev: Option<&str>) -> Route {
        Route {
            prefix: prefix.parse().unwrap(),
            via: via.map(|v| v.parse().unwrap()),
            dev: dev.map(|d| d.parse().unwrap()),
            metric: None,
            onlink: false,
            key: "node.routes[0]".to_owned(),
        }
    }

    #[test]
    fn parses_ip_json_with_host_routes_and_default() {
        let live = parse_ip_json(LIVE6, true).unwrap();
        assert_eq!(live.len(), 4);
        assert_eq!(
            live[1].prefix.to_string(),
            "2603:1062:0:1:fe80:1234:5678:9abc/128"
        );
        assert!(live[1].owned());
        assert_eq!(live[3].prefix.to_string(), "::/0");
        assert!(!live[3].owned());
        let v4 = parse_ip_json(
            r#"[{"dst":"192.0.2.0/24","dev":"tun0","protocol":"166","scope":"link","flags":[]}]"#,
            false,
        )
        .unwrap();
        assert_eq!(v4[0].metric, 0);
        assert!(parse_ip_json("[{", true).is_err());
        assert!(parse_ip_json("", true).unwrap().is_empty());
    }

    #[test]
    fn replace_args_carry_the_ownership_mark() {
        let r = route("64:ff9b::/96", None, Some("sixgate0"));
        assert_eq!(
            r.replace_args().join(" "),
            "-6 route replace 64:ff9b::/96 dev sixgate0 proto 166 metric 1024"
        );
        let r = route("192.0.2.0/24", Some("10.0.0.1"), None);
        assert_eq!(
            r.replace_args().join(" "),
            "-4 route replace 192.0.2.0/24 via 10.0.0.1 proto 166 metric 0"
        );
    }

    #[test]
    fn compare_adds_missing_keeps_present_and_drops_stale_owned_routes() {
        let live = parse_ip_json(LIVE6, true).unwrap();
        let wanted = vec![
            route(
                "2603:1062:0:1:fe80:1234:5678:9abc",
                Some("fe80::1234:5678:9abc"),
                Some("eth0"),
            ),
            route("64:ff9b::/96", None, Some("tun0")),
        ];
        let c = compare(&wanted, &live);
        assert_eq!(c.replace, vec![wanted[1].clone()]);
        assert_eq!(c.delete.len(), 1);
        assert_eq!(c.delete[0].prefix.to_string(), "64:ff9b:1::/96");
        assert!(c.conflicts.is_empty());
        assert_eq!(
            c.delete[0].delete_args().join(" "),
            "-6 route del 64:ff9b:1::/96 proto 166 metric 1024 dev tun9"
        );
    }

    #[test]
    fn a_changed_owned_route_is_replaced() {
        let live = parse_ip_json(LIVE6, true).unwrap();
        let wanted = vec![route("64:ff9b:1::/96", None, Some("tun0"))];
        let c = compare(&wanted, &live);
        assert_eq!(c.replace, wanted);
        assert!(c.delete.iter().all(|d| d.prefix != wanted[0].prefix));
    }

    #[test]
    fn a_route_of_another_owner_is_a_conflict_not_a_replacement() {
        let live = parse_ip_json(LIVE6, true).unwrap();
        let wanted = vec![route("::/0", Some("fe80::9"), Some("eth0"))];
        let c = compare(&wanted, &live);
        assert!(c.replace.is_empty());
        assert_eq!(c.conflicts.len(), 1);
        assert_eq!(c.conflicts[0].1.protocol, "9");
    }
}
