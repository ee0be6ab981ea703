//! Bad input is refused with the key and the reason: plans and lock files
//! edited into something inconsistent, based on the example plan.

mod common;

use sixgate_plan::{allocate, Lock, Plan};

fn plan_err(text: &str) -> String {
    match Plan::parse(text) {
        Ok(plan) => allocate(&plan, &Lock::default())
            .map(|_| ())
            .unwrap_err()
            .to_string(),
        Err(e) => e.to_string(),
    }
}

fn example_with(from: &str, to: &str) -> String {
    let text = common::example_text();
    assert!(text.contains(from), "the example plan has no `{from}`");
    text.replacen(from, to, 1)
}

#[test]
fn overlapping_organisation_prefixes_are_refused() {
    let e = plan_err(&example_with(
        "prefixes = [\"2001:db8:100::/40\"]",
        "prefixes = [\"2001:db8:100::/40\", \"2001:db8:180::/44\"]",
    ));
    assert_eq!(
        e,
        "prefixes[1]: 2001:db8:180::/44 overlaps prefixes[0] = 2001:db8:100::/40"
    );
}

#[test]
fn overlapping_fixed_cluster_prefixes_are_refused() {
    let text = example_with(
        "name = \"dev-zrh\"",
        "name = \"dev-zrh\"\nprefix = \"2001:db8:500::/56\"",
    )
    .replacen(
        "name = \"prod-fra\"",
        "name = \"prod-fra\"\nprefix = \"2001:db8:500::/52\"",
        1,
    );
    let e = plan_err(&text);
    assert_eq!(e, "clusters[2].prefix: 2001:db8:500::/52 overlaps the prefix of cluster `dev-zrh` (2001:db8:500::/56)");
}

#[test]
fn a_fixed_prefix_over_an_external_network_is_refused() {
    let e = plan_err(&example_with(
        "name = \"dev-zrh\"",
        "name = \"dev-zrh\"\nprefix = \"2001:db8:1ff:100::/56\"",
    ));
    assert_eq!(e, "clusters[1].prefix: 2001:db8:1ff:100::/56 overlaps the external network office (2001:db8:1ff::/48)");
}

#[test]
fn a_64_asked_to_hold_56_clusters_is_refused() {
    let e = plan_err(&example_with(
        "prefixes = [\"2001:db8:100::/40\"]",
        "prefixes = [\"2001:db8:100::/64\"]",
    ));
    assert_eq!(
        e,
        "prefixes[0]: 2001:db8:100::/64 cannot hold /56 cluster blocks (sizes.cluster): a /64 holds only blocks of /64 or longer"
    );
}

#[test]
fn malformed_prefixes_are_refused_with_their_key() {
    let e = plan_err(&example_with("\"198.51.100.0/24\"", "\"198.51.100.0/33\""));
    assert_eq!(
        e,
        "nat64.pool4[0]: prefix length /33 is longer than the 32 bits of the address"
    );
    let e = plan_err(&example_with(
        "prefix = \"2001:db8:1ff::/48\"",
        "prefix = \"2001:db8:1ff::1/48\"",
    ));
    assert_eq!(e, "external[1].prefix: `2001:db8:1ff::1` has host bits set past /48: did you mean 2001:db8:1ff::/48?");
    let e = plan_err(&example_with(
        "pods = [\"10.64.0.0/12\"]",
        "pods = [\"2001:db8::/64\"]",
    ));
    assert_eq!(
        e,
        "ipv4.pods[0]: `2001:db8::/64` is an IPv6 prefix, IPv4 is needed here"
    );
    let e = plan_err(&example_with(
        "address = \"2001:db8:100:2::1\"",
        "address = \"2001:db8:100:2::g\"",
    ));
    assert_eq!(
        e,
        "sites.fra.routers[0].address: `2001:db8:100:2::g` is not an IP address"
    );
}

#[test]
fn running_out_of_site_blocks_says_what_would_fit() {
    // A /47 holds two /48 sites; the backbone takes one of them.
    let e = plan_err(&example_with(
        "prefixes = [\"2001:db8:100::/40\"]",
        "prefixes = [\"2001:db8:100::/47\"]",
    ));
    assert_eq!(
        e,
        "prefixes: no free /48 left for site `fra` in 2001:db8:100::/47 (2 block(s) already taken, 2 /48 fit in it); nothing is left there"
    );
    let e = plan_err(
        &example_with(
            "prefixes = [\"2001:db8:100::/40\"]",
            "prefixes = [\"2001:db8:100::/46\"]",
        )
        .replacen("site = 48", "site = 47", 1),
    );
    assert!(
        e.starts_with("prefixes: no free /47 left for site `fra` in 2001:db8:100::/46"),
        "{e}"
    );
    assert!(e.ends_with("the largest free block there is a /48 (2001:db8:101::/48), so a /48 or longer would fit"), "{e}");
}

#[test]
fn too_many_nodes_for_a_cluster_block_says_how_many_fit() {
    let e = plan_err(&example_with("max_nodes = 100", "max_nodes = 200"));
    assert!(
        e.starts_with("clusters[0].max_nodes: 200 nodes need a /56 of pod prefixes"),
        "{e}"
    );
    assert!(e.contains("at most 128 nodes fit"), "{e}");
}

#[test]
fn listing_more_nodes_than_max_nodes_is_refused() {
    let e = plan_err(&example_with("max_nodes = 50", "max_nodes = 1"));
    assert_eq!(
        e,
        "clusters[2].nodes: 2 nodes are listed but max_nodes is 1"
    );
}

fn lock_err(from: &str, to: &str) -> String {
    let (plan, lock) = common::example();
    let text = lock.to_text();
    assert!(text.contains(from), "the example lock has no `{from}`");
    let edited = text.replacen(from, to, 1);
    match Lock::parse(&edited) {
        Err(e) => e.to_string(),
        Ok(lock) => allocate(&plan, &lock).map(|_| ()).unwrap_err().to_string(),
    }
}

#[test]
fn a_hand_edited_lock_with_overlapping_clusters_is_refused() {
    let e = lock_err(
        "block = \"2001:db8:102::/56\"",
        "block = \"2001:db8:101::/56\"",
    );
    assert_eq!(
        e,
        "clusters.prod-fra.block: 2001:db8:101::/56 is not inside sites.fra = 2001:db8:102::/48"
    );
    let e = lock_err(
        "block = \"2001:db8:101:100::/56\"",
        "block = \"2001:db8:101::/55\"",
    );
    assert_eq!(e, "clusters.prod-zrh.block: 2001:db8:101::/56 overlaps clusters.dev-zrh.block = 2001:db8:101::/55");
}

#[test]
fn a_hand_edited_lock_with_a_shared_node_prefix_is_refused() {
    let e = lock_err(
        "zrh-node-2 = { pods = \"2001:db8:101:1::/64\"",
        "zrh-node-2 = { pods = \"2001:db8:101::/64\"",
    );
    assert_eq!(e, "clusters.prod-zrh.nodes.zrh-node-2.pods: 2001:db8:101::/64 overlaps clusters.prod-zrh.nodes.zrh-node-1.pods = 2001:db8:101::/64");
}

#[test]
fn a_hand_edited_lock_with_overlapping_pool4_slices_is_refused() {
    let e = lock_err(
        "pool4 = \"198.51.100.16/28\"",
        "pool4 = \"198.51.100.0/27\"",
    );
    assert_eq!(e, "clusters.prod-zrh.gateways.zrh-gw-1.pool4: 198.51.100.0/28 overlaps clusters.prod-zrh.gateways.zrh-gw-2.pool4 = 198.51.100.0/27");
}

#[test]
fn a_hand_edited_lock_with_a_malformed_prefix_is_refused() {
    let e = lock_err(
        "services = \"2001:db8:101:81::/108\"",
        "services = \"2001:db8:101:81::/1080\"",
    );
    assert_eq!(
        e,
        "clusters.prod-zrh.services: `1080` is not a prefix length"
    );
    let e = lock_err("version = 1", "version = 1\nextra = true");
    assert!(e.starts_with("extra: unknown field `extra`"), "{e}");
}

#[test]
fn a_lock_contradicting_the_plan_is_refused() {
    // The lock says prod-fra lives in zrh's site.
    let e = lock_err(
        "[clusters.prod-fra]\nsite = \"fra\"",
        "[clusters.prod-fra]\nsite = \"zrh\"",
    );
    assert!(
        e.starts_with("clusters.prod-fra.block: 2001:db8:102::/56 is not inside sites.zrh"),
        "{e}"
    );
    // A per-cluster NAT64 prefix outside the local-use block.
    let e = lock_err("nat64 = \"64:ff9b:1::/96\"", "nat64 = \"2001:db8::/96\"");
    assert_eq!(e, "clusters.prod-zrh.nat64: 2001:db8::/96 is not inside the local-use NAT64 block = 64:ff9b:1::/48");
}

#[test]
fn non_global_pool4_with_the_well_known_prefix_is_refused() {
    let e = plan_err(&example_with(
        "prefix = \"per-cluster\"",
        "prefix = \"well-known\"",
    ));
    assert!(
        e.starts_with("nat64.pool4[0]: 198.51.100.0/24 holds 198.51.100.0, which is not a global IPv4 address"),
        "{e}"
    );
    // A large block with a private /24 deep inside is caught too.
    let e = plan_err(
        &example_with("prefix = \"per-cluster\"", "prefix = \"well-known\"").replacen(
            "pool4 = [\"198.51.100.0/24\", \"203.0.113.0/25\"]",
            "pool4 = [\"192.0.0.0/16\"]",
            1,
        ),
    );
    assert!(
        e.starts_with("nat64.pool4[0]: 192.0.0.0/16 holds 192.0.0.0,"),
        "{e}"
    );
    let e = plan_err(
        &example_with("prefix = \"per-cluster\"", "prefix = \"well-known\"").replacen(
            "pool4 = [\"198.51.100.0/24\", \"203.0.113.0/25\"]",
            "pool4 = [\"192.168.0.0/15\"]",
            1,
        ),
    );
    assert!(
        e.starts_with("nat64.pool4[0]: 192.168.0.0/15 holds 192.168.0.0,"),
        "{e}"
    );
    let e = plan_err(
        &example_with("prefix = \"per-cluster\"", "prefix = \"well-known\"").replacen(
            "pool4 = [\"198.51.100.0/24\", \"203.0.113.0/25\"]",
            "pool4 = [\"192.88.0.0/16\"]",
            1,
        ),
    );
    assert!(
        e.starts_with("nat64.pool4[0]: 192.88.0.0/16 holds 192.88.99.0,"),
        "{e}"
    );
}
