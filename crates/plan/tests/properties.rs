//! Property tests: random sequences of plans (clusters, nodes and gateways
//! added and removed in any order) allocated one after the other.
//!
//! - no two allocations overlap (checked here independently of the
//!   allocator's own consistency checks);
//! - what exists keeps its blocks when anything is added or removed;
//! - allocating again changes nothing, and rendering twice (also after a
//!   round trip of the lock through its text) is byte-identical.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sixgate_plan::lock::host;
use sixgate_plan::render::render;
use sixgate_plan::{allocate, Lock, Plan, Prefix};

const CLUSTERS: usize = 6;
const NODES: usize = 8;
const GATEWAYS: usize = 4;

#[derive(Debug, Clone)]
struct ClusterSpec {
    site: usize,
    max_nodes: u32,
    dual: bool,
}

/// One plan in the sequence: for each cluster, absent or present with
/// these nodes and gateways (in this order).
type State = Vec<Option<(Vec<usize>, Vec<usize>)>>;

fn plan_text(specs: &[ClusterSpec], state: &State, per_cluster_nat64: bool) -> String {
    let mut t = String::from(
        "prefixes = [\"2001:db8:100::/44\"]\ndns_zone = \"k8s.example.net\"\n\
         [nat64]\npool4_per_gateway = 28\n",
    );
    // The well-known prefix takes only global pool4 addresses (RFC 6052
    // §3.1); these two blocks are only data here, nothing is sent to them.
    if per_cluster_nat64 {
        t.push_str("prefix = \"per-cluster\"\npool4 = [\"198.51.100.0/24\", \"203.0.113.0/24\"]\n");
    } else {
        t.push_str("pool4 = [\"192.0.3.0/24\", \"192.0.4.0/24\"]\n");
    }
    t.push_str(
        "[ipv4]\npods = [\"10.64.0.0/12\"]\nservices = [\"10.96.0.0/16\"]\n\
         [[external]]\nname = \"backbone\"\nprefix = \"2001:db8:100::/48\"\n\
         [[external]]\nname = \"dmz\"\nprefix = \"198.51.100.16/28\"\n\
         [[external]]\nname = \"dmz2\"\nprefix = \"192.0.3.16/28\"\n",
    );
    for (i, entry) in state.iter().enumerate() {
        let Some((nodes, gateways)) = entry else {
            continue;
        };
        let s = &specs[i];
        let list = |prefix: &str, v: &[usize]| {
            v.iter()
                .map(|n| format!("\"c{i}-{prefix}{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        t.push_str(&format!(
            "[[clusters]]\nname = \"c{i}\"\nsite = \"s{}\"\nmax_nodes = {}\nstack = \"{}\"\nnodes = [{}]\ngateways = [{}]\n",
            s.site,
            s.max_nodes,
            if s.dual { "dual" } else { "ipv6" },
            list("n", nodes),
            list("gw", gateways),
        ));
    }
    t
}

fn assert_disjoint(what: &str, entries: &[(String, Prefix)]) {
    for (i, (ka, a)) in entries.iter().enumerate() {
        for (kb, b) in &entries[..i] {
            assert!(!a.overlaps(b), "{what}: {ka} = {a} overlaps {kb} = {b}");
        }
    }
}

fn assert_inside(key: &str, child: &Prefix, parent: &Prefix) {
    assert!(
        parent.contains_prefix(child),
        "{key} = {child} is not inside {parent}"
    );
}

/// An oracle for "no two allocations overlap", written apart from the
/// allocator: siblings are disjoint and children sit inside their parent.
fn check_no_overlap(plan: &Plan, lock: &Lock) {
    let externals: Vec<(String, Prefix)> = plan
        .external
        .iter()
        .map(|e| (format!("external {}", e.name), e.prefix))
        .collect();
    let mut sites: Vec<(String, Prefix)> = lock
        .sites
        .iter()
        .map(|(n, p)| (format!("site {n}"), *p))
        .collect();
    for (n, p) in &sites {
        assert!(
            plan.prefixes.iter().any(|o| o.contains_prefix(p)),
            "{n} = {p} outside the organisation"
        );
    }
    let mut clusters = Vec::new();
    let mut pool4 = Vec::new();
    let mut ipv4 = Vec::new();
    let mut nat64 = Vec::new();
    for (name, c) in &lock.clusters {
        assert_inside(&format!("{name} block"), &c.block, &lock.sites[&c.site]);
        clusters.push((format!("cluster {name}"), c.block));
        let parts = vec![
            (format!("{name} pods"), c.pods),
            (format!("{name} uplink"), c.uplink),
            (format!("{name} services"), c.services),
        ];
        for (k, p) in &parts {
            assert_inside(k, p, &c.block);
        }
        assert_disjoint("cluster parts", &parts);
        let mut node_pods = Vec::new();
        let mut hosts = Vec::new();
        for (n, node) in &c.nodes {
            assert_inside(n, &node.pods, &c.pods);
            assert_eq!(node.pods.prefix_len(), plan.sizes.pods_per_node);
            node_pods.push((format!("{name}/{n} pods"), node.pods));
            hosts.push((format!("{name}/{n} address"), host(node.address)));
        }
        for (g, gw) in &c.gateways {
            hosts.push((format!("{name}/{g} address"), host(gw.address)));
            assert!(
                plan.nat64
                    .pool4
                    .iter()
                    .any(|p| p.contains_prefix(&gw.pool4)),
                "{g} pool4 outside the pools"
            );
            pool4.push((format!("{name}/{g} pool4"), gw.pool4));
        }
        for (k, h) in &hosts {
            assert_inside(k, h, &c.uplink);
        }
        assert_disjoint("node pod prefixes", &node_pods);
        assert_disjoint("host addresses", &hosts);
        if let (Some(p), Some(s)) = (c.ipv4_pods, c.ipv4_services) {
            ipv4.push((format!("{name} ipv4 pods"), p));
            ipv4.push((format!("{name} ipv4 services"), s));
        }
        if plan.nat64.mode == sixgate_plan::model::Nat64Mode::PerCluster {
            nat64.push((format!("{name} nat64"), c.nat64));
        }
    }
    sites.extend(
        externals
            .iter()
            .filter(|(_, p)| p.family() == sixgate_plan::prefix::Family::V6)
            .cloned(),
    );
    clusters.extend(externals.iter().cloned());
    pool4.extend(externals.iter().cloned());
    ipv4.extend(externals.iter().cloned());
    // Externals may sit inside a site block (reserved space), not inside or
    // over anything else.
    assert_disjoint("clusters and externals", &clusters);
    assert_disjoint("pool4 slices and externals", &pool4);
    assert_disjoint("IPv4 blocks and externals", &ipv4);
    assert_disjoint("NAT64 prefixes", &nat64);
    let site_blocks: Vec<_> = lock
        .sites
        .iter()
        .map(|(n, p)| (format!("site {n}"), *p))
        .collect();
    assert_disjoint("sites", &site_blocks);
}

/// Everything `old` held for what `new_state` still has is unchanged.
fn check_stable(old: &Lock, new: &Lock) {
    for (name, o) in &old.clusters {
        let Some(n) = new.clusters.get(name) else {
            continue;
        };
        assert_eq!(
            (o.block, o.pods, o.uplink, o.services, o.nat64),
            (n.block, n.pods, n.uplink, n.services, n.nat64),
            "cluster {name} renumbered"
        );
        assert_eq!(
            (o.ipv4_pods, o.ipv4_services),
            (n.ipv4_pods, n.ipv4_services),
            "cluster {name} IPv4 renumbered"
        );
        assert_eq!(
            old.sites[&o.site], new.sites[&n.site],
            "site of {name} renumbered"
        );
        for (node, a) in &o.nodes {
            if let Some(b) = n.nodes.get(node) {
                assert_eq!(a, b, "node {node} of {name} renumbered");
            }
        }
        for (gw, a) in &o.gateways {
            if let Some(b) = n.gateways.get(gw) {
                assert_eq!(a, b, "gateway {gw} of {name} renumbered");
            }
        }
    }
}

fn spec() -> impl Strategy<Value = ClusterSpec> {
    (0..3usize, 8..=128u32, any::<bool>()).prop_map(|(site, max_nodes, dual)| ClusterSpec {
        site,
        max_nodes,
        dual,
    })
}

fn state() -> impl Strategy<Value = State> {
    proptest::collection::vec(
        proptest::option::of((
            proptest::sample::subsequence((0..NODES).collect::<Vec<_>>(), 0..=NODES).prop_shuffle(),
            proptest::sample::subsequence((0..GATEWAYS).collect::<Vec<_>>(), 0..=GATEWAYS)
                .prop_shuffle(),
        )),
        CLUSTERS,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn allocations_never_overlap_and_never_move(
        specs in proptest::collection::vec(spec(), CLUSTERS),
        states in proptest::collection::vec(state(), 1..6),
        per_cluster_nat64 in any::<bool>(),
    ) {
        let mut lock = Lock::default();
        for state in &states {
            let plan = Plan::parse(&plan_text(&specs, state, per_cluster_nat64)).unwrap();
            let next = allocate(&plan, &lock).unwrap();
            check_no_overlap(&plan, &next);
            check_stable(&lock, &next);
            // Exactly what the plan lists is held.
            let held: Vec<&String> = next.clusters.keys().collect();
            let mut listed: Vec<&String> = plan.clusters.iter().map(|c| &c.name).collect();
            listed.sort();
            prop_assert_eq!(held, listed);
            // Allocating again is a no-op; the lock survives its text form.
            prop_assert_eq!(&allocate(&plan, &next).unwrap(), &next);
            let reread = Lock::parse(&next.to_text()).unwrap();
            prop_assert_eq!(&reread, &next);
            // Rendering twice, and from the re-read lock, is byte-identical.
            let a = render(&plan, &next).unwrap();
            let b = render(&plan, &reread).unwrap();
            prop_assert_eq!(&a, &b);
            lock = next;
        }
    }

    #[test]
    fn adding_in_any_order_never_changes_what_exists(
        specs in proptest::collection::vec(spec(), CLUSTERS),
        base in state(),
        order in Just((0..CLUSTERS).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        // Start from `base`; then add the clusters missing from it one by
        // one, in a random order, each with all its nodes and gateways.
        let mut state = base;
        let plan = Plan::parse(&plan_text(&specs, &state, false)).unwrap();
        let mut lock = allocate(&plan, &Lock::default()).unwrap();
        let first: BTreeMap<String, _> = lock.clusters.clone().into_iter().collect();
        for i in order {
            match &mut state[i] {
                None => state[i] = Some(((0..NODES).collect(), (0..GATEWAYS).collect())),
                Some((nodes, gws)) => {
                    for n in 0..NODES { if !nodes.contains(&n) { nodes.push(n); } }
                    for g in 0..GATEWAYS { if !gws.contains(&g) { gws.push(g); } }
                }
            }
            let plan = Plan::parse(&plan_text(&specs, &state, false)).unwrap();
            let next = allocate(&plan, &lock).unwrap();
            check_stable(&lock, &next);
            check_no_overlap(&plan, &next);
            lock = next;
        }
        // And against the very first allocation too.
        for (name, c) in &first {
            let now = &lock.clusters[name];
            prop_assert_eq!(c.block, now.block);
            for (n, a) in &c.nodes { prop_assert_eq!(a, &now.nodes[n]); }
            for (g, a) in &c.gateways { prop_assert_eq!(a, &now.gateways[g]); }
        }
    }

    #[test]
    fn garbage_never_panics(text in "\\PC{0,200}") {
        let _ = Plan::parse(&text);
        let _ = Lock::parse(&text);
    }

    #[test]
    fn mutated_example_plans_and_locks_never_panic(
        pos in any::<proptest::sample::Index>(),
        len in 0usize..8,
        with in "[0-9a-f:./\\[\\]=\" \n]{0,6}",
    ) {
        let specs: Vec<ClusterSpec> = (0..CLUSTERS).map(|i| ClusterSpec { site: i % 3, max_nodes: 16, dual: i % 2 == 0 }).collect();
        let state: State = (0..CLUSTERS).map(|_| Some(((0..3).collect(), (0..2).collect()))).collect();
        let plan_text = plan_text(&specs, &state, true);
        let plan = Plan::parse(&plan_text).unwrap();
        let lock_text = allocate(&plan, &Lock::default()).unwrap().to_text();
        for text in [&plan_text, &lock_text] {
            let chars: Vec<char> = text.chars().collect();
            let at = pos.index(chars.len());
            let end = (at + len).min(chars.len());
            let mutated: String = chars[..at].iter().chain(with.chars().collect::<Vec<_>>().iter()).chain(chars[end..].iter()).collect();
            if let Ok(p) = Plan::parse(&mutated) {
                let _ = allocate(&p, &Lock::default());
            }
            if let Ok(l) = Lock::parse(&mutated) {
                // A lock that parses is consistent: allocating on it either
                // works or names what contradicts the plan.
                if let Ok(next) = allocate(&plan, &l) {
                    check_no_overlap(&plan, &next);
                }
            }
        }
    }
}
