//! The nftables rules as data, and their rendering to `nft -f` script text.
//! Sans-IO: tests compare strings; `crate::system` runs `nft`.
//!
//! Everything lives in one table, `ip6 sixgate`, that sixgate owns. A new
//! version replaces it in one transaction:
//!
//! ```text
//! table ip6 sixgate          # create it if absent, so that the delete cannot fail
//! delete table ip6 sixgate   # drop the old version with everything in it
//! table ip6 sixgate { ... }  # the new version
//! ```
//!
//! `nft -f` commits the whole file or nothing, so the node never runs without
//! the rules or with half of them, and no other table is named.

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use crate::config::{Plan, Snat};
use crate::types::{IfName, Prefix};

/// The family of the owned table.
pub const FAMILY: &str = "ip6";
/// The name of the owned table.
pub const TABLE: &str = "sixgate";

/// `ip6 sixgate`, as nft commands write it.
pub fn table_ref() -> String {
    format!("{FAMILY} {TABLE}")
}

/// The owned table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub chains: Vec<Chain>,
}

/// A base chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: &'static str,
    pub kind: ChainKind,
    pub hook: Hook,
    pub priority: i32,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainKind {
    Filter,
    Nat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Output,
    Postrouting,
}

/// nftables priority `raw`: before connection tracking (-200).
pub const PRIORITY_RAW: i32 = -300;
/// nftables priority `srcnat`.
pub const PRIORITY_SRCNAT: i32 = 100;

/// One rule: matches, a counter, statements, and a comment that names the
/// config entry it comes from (shown by `sixgate node show`, used as the
/// metric label of its counter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub statements: Vec<Statement>,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    InputInterface(IfName),
    OutputInterface(IfName),
    Source(Ipv6Addr),
    Destination(Ipv6Addr),
    SourceIn(Vec<Prefix>),
    DestinationNotIn(Vec<Prefix>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// Stateless rewrite of the source address (the TCP/UDP checksum is fixed by nft).
    SetSource(Ipv6Addr),
    /// Stateless rewrite of the destination address.
    SetDestination(Ipv6Addr),
    /// No connection tracking for this packet.
    NoTrack,
    Masquerade,
    Snat(Ipv6Addr),
}

impl Table {
    /// The rules of `plan`, or `None` when it has none.
    ///
    /// For each rewrite `from → to` arriving on `if`:
    ///
    /// - prerouting, priority raw (-300), before conntrack and before the
    ///   routing decision, so the forwarded packet is routed with the global
    ///   source: `iifname if ip6 saddr from → saddr to, notrack`;
    /// - the replies (destination `to`) are not tracked either, in prerouting
    ///   (forwarded from a pod) and output (answered by the node itself):
    ///   tracked replies would be `invalid` to conntrack and could be caught
    ///   by the egress masquerade, since `to` is outside the cluster;
    /// - postrouting, priority raw: `oifname if ip6 daddr to → daddr from`. It
    ///   must come after the routing decision, which needs the global `to` to
    ///   pick the way back (the reply route `to via from dev if`), and before
    ///   the packet leaves, so the load balancer sees its link-local address.
    ///   The packet is untracked, so no NAT hook sees it: this stays stateless.
    ///
    /// Egress: a nat chain at priority srcnat masquerades (or SNATs) the pod
    /// prefixes leaving by the uplink, except toward the exempt prefixes.
    pub fn from_plan(plan: &Plan) -> Option<Table> {
        if !plan.has_ipv6_rules() {
            return None;
        }
        let mut pre = Vec::new();
        let mut out = Vec::new();
        let mut post = Vec::new();
        for (i, r) in plan.rewrites.iter().enumerate() {
            pre.push(Rule {
                matches: vec![
                    Match::InputInterface(r.interface.clone()),
                    Match::Source(r.from),
                ],
                statements: vec![Statement::SetSource(r.to), Statement::NoTrack],
                comment: format!("rewrite {i} in"),
            });
            pre.push(Rule {
                matches: vec![Match::Destination(r.to)],
                statements: vec![Statement::NoTrack],
                comment: format!("rewrite {i} reply notrack"),
            });
            out.push(Rule {
                matches: vec![Match::Destination(r.to)],
                statements: vec![Statement::NoTrack],
                comment: format!("rewrite {i} local reply notrack"),
            });
            post.push(Rule {
                matches: vec![
                    Match::OutputInterface(r.interface.clone()),
                    Match::Destination(r.to),
                ],
                statements: vec![Statement::SetDestination(r.from)],
                comment: format!("rewrite {i} reply out"),
            });
        }
        let mut chains = Vec::new();
        if !plan.rewrites.is_empty() {
            chains.push(Chain {
                name: "prerouting",
                kind: ChainKind::Filter,
                hook: Hook::Prerouting,
                priority: PRIORITY_RAW,
                rules: pre,
            });
            chains.push(Chain {
                name: "output",
                kind: ChainKind::Filter,
                hook: Hook::Output,
                priority: PRIORITY_RAW,
                rules: out,
            });
            chains.push(Chain {
                name: "postrouting",
                kind: ChainKind::Filter,
                hook: Hook::Postrouting,
                priority: PRIORITY_RAW,
                rules: post,
            });
        }
        if let Some(e) = &plan.egress {
            let mut matches = vec![
                Match::OutputInterface(e.interface.clone()),
                Match::SourceIn(e.pods.clone()),
            ];
            if !e.exempt.is_empty() {
                matches.push(Match::DestinationNotIn(e.exempt.clone()));
            }
            let statement = match e.snat {
                Snat::Masquerade => Statement::Masquerade,
                Snat::To(addr) => Statement::Snat(addr),
            };
            chains.push(Chain {
                name: "egress",
                kind: ChainKind::Nat,
                hook: Hook::Postrouting,
                priority: PRIORITY_SRCNAT,
                rules: vec![Rule {
                    matches,
                    statements: vec![statement],
                    comment: "egress snat".to_owned(),
                }],
            });
        }
        Some(Table { chains })
    }

    /// The script that replaces the owned table by this one, atomically.
    pub fn render_replace(&self) -> String {
        let t = table_ref();
        let mut s = format!("table {t}\ndelete table {t}\ntable {t} {{\n");
        s.push_str("\tcomment \"managed by sixgate: edits are undone by sixgate node watch\"\n");
        for chain in &self.chains {
            let _ = writeln!(s, "\tchain {} {{", chain.name);
            let _ = writeln!(
                s,
                "\t\ttype {} hook {} priority {}; policy accept;",
                match chain.kind {
                    ChainKind::Filter => "filter",
                    ChainKind::Nat => "nat",
                },
                match chain.hook {
                    Hook::Prerouting => "prerouting",
                    Hook::Output => "output",
                    Hook::Postrouting => "postrouting",
                },
                chain.priority
            );
            for rule in &chain.rules {
                s.push_str("\t\t");
                rule.render(&mut s);
                s.push('\n');
            }
            s.push_str("\t}\n");
        }
        s.push_str("}\n");
        s
    }
}

/// The script that removes the owned table, and nothing else; it succeeds
/// whether the table exists or not.
pub fn render_delete() -> String {
    let t = table_ref();
    format!("table {t}\ndelete table {t}\n")
}

fn set(prefixes: &[Prefix]) -> String {
    let items: Vec<String> = prefixes.iter().map(ToString::to_string).collect();
    format!("{{ {} }}", items.join(", "))
}

impl Rule {
    fn render(&self, s: &mut String) {
        for m in &self.matches {
            let _ = match m {
                Match::InputInterface(i) => write!(s, "iifname \"{i}\" "),
                Match::OutputInterface(i) => write!(s, "oifname \"{i}\" "),
                Match::Source(a) => write!(s, "ip6 saddr {a} "),
                Match::Destination(a) => write!(s, "ip6 daddr {a} "),
                Match::SourceIn(p) => write!(s, "ip6 saddr {} ", set(p)),
                Match::DestinationNotIn(p) => write!(s, "ip6 daddr != {} ", set(p)),
            };
        }
        s.push_str("counter");
        for st in &self.statements {
            let _ = match st {
                Statement::SetSource(a) => write!(s, " ip6 saddr set {a}"),
                Statement::SetDestination(a) => write!(s, " ip6 daddr set {a}"),
                Statement::NoTrack => write!(s, " notrack"),
                Statement::Masquerade => write!(s, " masquerade"),
                Statement::Snat(a) => write!(s, " snat to {a}"),
            };
        }
        // Comments come from our own format strings; no quote can reach them.
        let _ = write!(s, " comment \"{}\"", self.comment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn table(text: &str) -> Option<Table> {
        let config: Config = toml::from_str(text).unwrap();
        Table::from_plan(&config.plan().unwrap())
    }

    #[test]
    fn probe_preset_renders_the_stateless_rewrite_both_ways() {
        let t = table("uplink = \"eth0\"\n[[rewrites]]\npreset = \"azure-lb-probe\"\n").unwrap();
        assert_eq!(
            t.render_replace(),
            "table ip6 sixgate\n\
             delete table ip6 sixgate\n\
             table ip6 sixgate {\n\
             \tcomment \"managed by sixgate: edits are undone by sixgate node watch\"\n\
             \tchain prerouting {\n\
             \t\ttype filter hook prerouting priority -300; policy accept;\n\
             \t\tiifname \"eth0\" ip6 saddr fe80::1234:5678:9abc counter ip6 saddr set 2603:1062:0:1:fe80:1234:5678:9abc notrack comment \"rewrite 0 in\"\n\
             \t\tip6 daddr 2603:1062:0:1:fe80:1234:5678:9abc counter notrack comment \"rewrite 0 reply notrack\"\n\
             \t}\n\
             \tchain output {\n\
             \t\ttype filter hook output priority -300; policy accept;\n\
             \t\tip6 daddr 2603:1062:0:1:fe80:1234:5678:9abc counter notrack comment \"rewrite 0 local reply notrack\"\n\
             \t}\n\
             \tchain postrouting {\n\
             \t\ttype filter hook postrouting priority -300; policy accept;\n\
             \t\toifname \"eth0\" ip6 daddr 2603:1062:0:1:fe80:1234:5678:9abc counter ip6 daddr set fe80::1234:5678:9abc comment \"rewrite 0 reply out\"\n\
             \t}\n\
             }\n"
        );
    }

    #[test]
    fn egress_masquerades_pods_except_toward_the_cluster() {
        let t = table(
            "uplink = \"ens5\"\n[egress]\npod_prefixes = [\"fd00:40::/56\"]\n\
             cluster_prefixes = [\"fd00:10::/48\", \"fd00:20::/108\"]\n",
        )
        .unwrap();
        assert_eq!(t.chains.len(), 1);
        let text = t.render_replace();
        assert!(text.contains(
            "\tchain egress {\n\t\ttype nat hook postrouting priority 100; policy accept;\n\
             \t\toifname \"ens5\" ip6 saddr { fd00:40::/56 } ip6 daddr != { fd00:10::/48, fd00:20::/108, fd00:40::/56 } counter masquerade comment \"egress snat\"\n\t}\n"
        ), "{text}");
    }

    #[test]
    fn egress_to_an_address_uses_snat() {
        let t = table(
            "uplink = \"ens5\"\n[egress]\npod_prefixes = [\"fd00:40::/56\"]\nsnat = \"2001:db8::7\"\n",
        )
        .unwrap();
        assert!(t.render_replace().contains(
            "oifname \"ens5\" ip6 saddr { fd00:40::/56 } ip6 daddr != { fd00:40::/56 } counter snat to 2001:db8::7"
        ));
    }

    #[test]
    fn no_rules_no_table_and_delete_names_only_the_owned_table() {
        assert!(table("[[routes]]\nprefix = \"64:ff9b::/96\"\ndev = \"tun0\"\n").is_none());
        assert_eq!(
            render_delete(),
            "table ip6 sixgate\ndelete table ip6 sixgate\n"
        );
    }

    #[test]
    fn scripts_never_flush_or_name_another_table() {
        let t = table(
            "uplink = \"eth0\"\n[[rewrites]]\npreset = \"azure-lb-probe\"\n\
             [[rewrites]]\nfrom = \"fe80::1\"\nto = \"2001:db8::1\"\ninterface = \"eth1\"\n\
             [egress]\npod_prefixes = [\"fd00:40::/56\"]\n",
        )
        .unwrap();
        let text = t.render_replace();
        assert!(!text.contains("flush"));
        for line in text
            .lines()
            .filter(|l| l.starts_with("table") || l.starts_with("delete"))
        {
            assert!(line.contains("table ip6 sixgate"), "{line}");
        }
        assert_eq!(text.matches("comment \"rewrite 1 in\"").count(), 1);
    }
}

/// Packets and bytes counted by one rule of the live table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCounter {
    /// The rule's comment (`rewrite 0 in`).
    pub rule: String,
    pub packets: u64,
    pub bytes: u64,
}

/// The counters of the commented rules in `nft -j list table` output.
/// Anything that does not have the expected shape is skipped.
pub fn parse_counters(json: &str) -> Vec<RuleCounter> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    let Some(items) = value.get("nftables").and_then(|v| v.as_array()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for rule in items.iter().filter_map(|i| i.get("rule")) {
        let Some(comment) = rule.get("comment").and_then(|c| c.as_str()) else {
            continue;
        };
        let Some(exprs) = rule.get("expr").and_then(|e| e.as_array()) else {
            continue;
        };
        if let Some(counter) = exprs.iter().find_map(|e| e.get("counter")) {
            out.push(RuleCounter {
                rule: comment.to_owned(),
                packets: counter
                    .get("packets")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0),
                bytes: counter
                    .get("bytes")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0),
            });
        }
    }
    out
}

#[cfg(test)]
mod counter_tests {
    use super::*;

    #[test]
    fn counters_are_read_by_rule_comment() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
          {"table": {"family": "ip6", "name": "sixgate", "handle": 1}},
          {"rule": {"family": "ip6", "table": "sixgate", "chain": "prerouting", "handle": 2,
            "comment": "rewrite 0 in",
            "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}},
                     {"counter": {"packets": 5, "bytes": 368}}, {"notrack": null}]}},
          {"rule": {"family": "ip6", "table": "sixgate", "chain": "x", "handle": 3,
            "expr": [{"counter": {"packets": 1, "bytes": 1}}]}}]}"#;
        assert_eq!(
            parse_counters(json),
            vec![RuleCounter {
                rule: "rewrite 0 in".to_owned(),
                packets: 5,
                bytes: 368
            }]
        );
        assert!(parse_counters("not json").is_empty());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::config::{Egress, Ipv6Detect, Plan, Rewrite};
    use proptest::prelude::*;
    use std::time::Duration;

    fn rewrite() -> impl Strategy<Value = Rewrite> {
        (any::<u64>(), any::<u128>(), "[a-z][a-z0-9]{0,14}").prop_map(|(from, to, name)| Rewrite {
            from: Ipv6Addr::from((0xfe80u128 << 112) | u128::from(from)),
            to: Ipv6Addr::from((0x2001_0db8u128 << 96) | (to >> 32)),
            interface: name.parse().expect("generated names are valid"),
            reply_route: true,
            key: "node.rewrites[0]".to_owned(),
        })
    }

    proptest! {
        #[test]
        fn any_plan_renders_one_owned_table_and_four_rules_per_rewrite(
            rewrites in proptest::collection::vec(rewrite(), 0..6),
            egress: bool,
        ) {
            let plan = Plan {
                uplink: Some("eth0".parse().unwrap()),
                detect: Ipv6Detect::Interfaces,
                rewrites: rewrites.clone(),
                egress: egress.then(|| Egress {
                    interface: "eth0".parse().unwrap(),
                    pods: vec!["fd00:40::/56".parse().unwrap()],
                    exempt: vec!["fd00::/8".parse().unwrap()],
                    snat: Snat::Masquerade,
                    key: "node.egress".to_owned(),
                }),
                routes: Vec::new(),
                period: Duration::from_secs(10),
            };
            let Some(table) = Table::from_plan(&plan) else {
                prop_assert!(rewrites.is_empty() && !egress);
                return Ok(());
            };
            let text = table.render_replace();
            prop_assert!(!text.contains("flush"));
            prop_assert_eq!(text.matches("table ").count(), 3);
            prop_assert_eq!(text.matches("table ip6 sixgate").count(), 3);
            let rules: usize = table.chains.iter().map(|c| c.rules.len()).sum();
            prop_assert_eq!(rules, 4 * rewrites.len() + usize::from(egress));
            prop_assert_eq!(text.matches(" comment \"").count(), rules);
            prop_assert_eq!(text.matches(" notrack comment").count(), 3 * rewrites.len());
        }
    }
}
