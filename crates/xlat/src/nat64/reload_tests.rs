//! Reconfiguration of a running state (SIGHUP) on a virtual clock: pool4
//! addresses added and removed, static BIB entries added and removed,
//! filtering switched, shards keeping their ports.

use super::*;

const SEC: u64 = 1000;

fn v6(s: &str, port: u16) -> Taddr6 {
    Taddr6::new(s.parse().unwrap(), port)
}

fn v4(s: &str, port: u16) -> Taddr4 {
    Taddr4::new(s.parse().unwrap(), port)
}

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn config(entries: &[&str]) -> Config {
    let entries: Vec<Pool4Entry> = entries.iter().map(|e| e.parse().unwrap()).collect();
    Config {
        pool4: Pool4::new(&entries).unwrap(),
        timeouts: Timeouts::default(),
        limits: Limits::default(),
        filtering: Filtering::default(),
        static_bib: Vec::new(),
    }
}

fn state(config: &Config) -> State {
    State::new(config.clone(), SplitMix64::new(7)).unwrap()
}

fn client(i: u16) -> Taddr6 {
    Taddr6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i + 1), 40000)
}

fn server() -> Taddr4 {
    v4("198.51.100.7", 53)
}

/// Runs purge rounds of `budget` until nothing is left; returns (deleted,
/// rounds).
fn purge_all(s: &mut State, budget: usize) -> (u64, u32) {
    let (mut deleted, mut rounds) = (0, 0);
    loop {
        let (n, more) = s.purge_at_most(budget);
        assert!(n <= budget as u64, "a round deleted {n} > {budget}");
        deleted += n;
        rounds += 1;
        if !more {
            return (deleted, rounds);
        }
        assert!(rounds < 10_000, "the purge does not end");
    }
}

#[test]
fn removing_a_pool4_address_deletes_its_sessions_and_frees_its_ports() {
    let old = config(&["192.0.2.1", "192.0.2.2"]);
    let mut s = state(&old);
    // Many clients: each host is paired with one of the two addresses.
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    for i in 0..40 {
        let m = s
            .outbound(0, Proto::Udp, client(i), server(), TcpFlags::NONE)
            .unwrap();
        if m.v4.addr == ip4("192.0.2.1") {
            on_a.push(m);
        } else {
            on_b.push(m);
        }
    }
    assert!(!on_a.is_empty() && !on_b.is_empty(), "both addresses used");
    let mut new = config(&["192.0.2.2"]);
    new.limits = old.limits;
    let done = s.reconfigure(&[], &new).unwrap();
    assert!(done.pool4_sweep);
    assert_eq!(done.bib_doomed, 0, "swept, not deleted inside reconfigure");
    // At once: nothing reaches the removed address any more, and nothing
    // lists its sessions.
    for m in &on_a {
        let refused = s
            .inbound(SEC, Proto::Udp, server(), m.v4, TcpFlags::NONE)
            .unwrap_err();
        assert_eq!(refused.reason, Refuse::NoBinding);
        assert_eq!(s.lookup_v4(Proto::Udp, m.v4), None);
    }
    assert!(s
        .sessions(SEC)
        .iter()
        .all(|x| x.v4.addr == ip4("192.0.2.2")));
    assert!(s
        .bib_entries()
        .iter()
        .all(|x| x.v4.addr == ip4("192.0.2.2")));
    // The IPv6 side does not find them either: a host of the removed
    // address gets nothing back for its old mapping.
    for m in &on_a {
        assert_eq!(s.lookup_v6(Proto::Udp, m.v6), None);
    }
    assert!(!s.is_pool4_addr(ip4("192.0.2.1")));
    assert!(s.purge_pending());
    // Before any purge round, a host of the removed address gets a new
    // mapping from the address left.
    let early = s
        .outbound(SEC, Proto::Udp, on_a[0].v6, server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(early.v4.addr, ip4("192.0.2.2"));
    // The purge deletes the old ones, in rounds, and counts them.
    let (deleted, rounds) = purge_all(&mut s, 7);
    assert_eq!(deleted, on_a.len() as u64);
    assert!(rounds > 1, "bounded rounds");
    assert!(!s.purge_pending());
    let st = s.stats();
    let live = on_b.len() + 1;
    assert_eq!(st.sessions[Proto::Udp.index()] as usize, live);
    assert_eq!(st.bib_entries[Proto::Udp.index()] as usize, live);
    assert_eq!(st.ports_used[Proto::Udp.index()], live as u64);
    assert_eq!(st.ports_total[Proto::Udp.index()], 4535);
    assert_eq!(st.sessions_purged[Proto::Udp.index()], on_a.len() as u64);
    assert_eq!(s.session_count() as usize, live);
    assert_eq!(s.lookup_v6(Proto::Udp, on_a[0].v6), Some(early.v4));
    // The sessions on the address that stays keep working, and the hosts
    // that were on the removed one get new mappings from the one left.
    for m in &on_b {
        let back = s
            .inbound(2 * SEC, Proto::Udp, server(), m.v4, TcpFlags::NONE)
            .unwrap();
        assert_eq!(back.v6, m.v6);
    }
    for m in &on_a {
        let again = s
            .outbound(2 * SEC, Proto::Udp, m.v6, server(), TcpFlags::NONE)
            .unwrap();
        assert_eq!(again.v4.addr, ip4("192.0.2.2"));
    }
    // Nothing dangling for the expiry either.
    s.handle_timeout(3600 * SEC);
    assert_eq!(s.session_count(), 0);
    assert_eq!(s.stats().bib_entries, [0, 0, 0]);
    assert_eq!(s.stats().ports_used, [0, 0, 0]);
}

#[test]
fn purged_sessions_give_their_source_its_limit_back() {
    let mut old = config(&["192.0.2.1", "192.0.2.2"]);
    old.limits.max_sessions_per_source = 1;
    old.limits.max_sessions = 1;
    let mut s = state(&old);
    let m = s
        .outbound(0, Proto::Udp, client(0), server(), TcpFlags::NONE)
        .unwrap();
    let other = if m.v4.addr == ip4("192.0.2.1") {
        "192.0.2.2"
    } else {
        "192.0.2.1"
    };
    let refused = s
        .outbound(0, Proto::Tcp, client(0), server(), TcpFlags::SYN)
        .unwrap_err();
    assert_eq!(refused.reason, Refuse::SessionLimit);
    let mut new = config(&[other]);
    new.limits = old.limits;
    s.reconfigure(&[], &new).unwrap();
    purge_all(&mut s, 100);
    let again = s
        .outbound(SEC, Proto::Tcp, client(0), server(), TcpFlags::SYN)
        .unwrap();
    assert_eq!(again.v4.addr, ip4(other));
}

#[test]
fn adding_a_pool4_address_makes_it_usable_at_once() {
    let old = config(&["192.0.2.1 1000-1001"]);
    let mut s = state(&old);
    let first: Vec<Mapping> = (0..2)
        .map(|i| {
            s.outbound(0, Proto::Udp, client(i), server(), TcpFlags::NONE)
                .unwrap()
        })
        .collect();
    let refused = s
        .outbound(0, Proto::Udp, client(2), server(), TcpFlags::NONE)
        .unwrap_err();
    assert_eq!(refused.reason, Refuse::PoolExhausted);
    let new = config(&["192.0.2.1 1000-1001", "192.0.2.9 1000-1001"]);
    let done = s.reconfigure(&[], &new).unwrap();
    assert_eq!(done, Reconfigured::default(), "an addition deletes nothing");
    assert!(!s.purge_pending());
    let third = s
        .outbound(SEC, Proto::Udp, client(2), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(third.v4.addr, ip4("192.0.2.9"));
    assert!(s.is_pool4_addr(ip4("192.0.2.9")));
    // The old ones keep their ports and still take replies.
    for m in &first {
        let back = s
            .inbound(SEC, Proto::Udp, server(), m.v4, TcpFlags::NONE)
            .unwrap();
        assert_eq!(back.v6, m.v6);
    }
    let st = s.stats();
    assert_eq!(st.ports_total[Proto::Udp.index()], 4);
    assert_eq!(st.ports_used[Proto::Udp.index()], 3);
}

#[test]
fn a_narrower_range_keeps_the_ports_inside_it_and_deletes_the_others() {
    let old = config(&["192.0.2.1 1000-1999"]);
    let mut s = state(&old);
    let maps: Vec<Mapping> = (0..50)
        .map(|i| {
            s.outbound(0, Proto::Udp, client(i), server(), TcpFlags::NONE)
                .unwrap()
        })
        .collect();
    let new = config(&["192.0.2.1 1000-1499"]);
    let done = s.reconfigure(&[], &new).unwrap();
    assert!(done.pool4_sweep);
    let (inside, outside): (Vec<&Mapping>, Vec<&Mapping>) =
        maps.iter().partition(|m| m.v4.port <= 1499);
    assert!(!inside.is_empty() && !outside.is_empty());
    // The ports both ranges share kept their entries at once.
    for m in &inside {
        assert_eq!(s.lookup_v4(Proto::Udp, m.v4), Some(m.v6));
        assert_eq!(s.lookup_v6(Proto::Udp, m.v6), Some(m.v4));
    }
    for m in &outside {
        assert_eq!(s.lookup_v6(Proto::Udp, m.v6), None);
    }
    assert_eq!(purge_all(&mut s, 16).0, outside.len() as u64);
    for m in &inside {
        assert_eq!(s.lookup_v4(Proto::Udp, m.v4), Some(m.v6));
    }
    for m in &outside {
        assert_eq!(s.lookup_v4(Proto::Udp, m.v4), None);
    }
    assert_eq!(
        s.stats().ports_used[Proto::Udp.index()],
        inside.len() as u64
    );
    assert_eq!(s.stats().ports_total[Proto::Udp.index()], 500);
}

#[test]
fn static_bib_entry_added_lets_ipv4_in_and_removed_stops_it() {
    let old = config(&["192.0.2.1"]);
    let mut s = state(&old);
    let web6 = v6("2001:db8::80", 80);
    let web4 = v4("192.0.2.1", 8080);
    let browser = v4("203.0.113.5", 50000);
    let refused = s
        .inbound(0, Proto::Tcp, browser, web4, TcpFlags::SYN)
        .unwrap_err();
    assert_eq!(refused.reason, Refuse::NoBinding);
    let mut new = old.clone();
    new.static_bib.push(StaticBib {
        proto: Proto::Tcp,
        v6: web6,
        v4: web4,
    });
    let done = s.reconfigure(&old.static_bib, &new).unwrap();
    assert_eq!(done.static_added, 1);
    let m = s
        .inbound(SEC, Proto::Tcp, browser, web4, TcpFlags::SYN)
        .unwrap();
    assert_eq!(m.v6, web6);
    assert_eq!(s.session_count(), 1);
    // Removed again: its session goes, and IPv4 cannot come in any more.
    let done = s.reconfigure(&new.static_bib, &old).unwrap();
    assert_eq!(done.static_removed, 1);
    assert_eq!((done.bib_doomed, done.sessions_doomed), (1, 1));
    assert_eq!(s.lookup_v4(Proto::Tcp, web4), None);
    assert!(s.sessions(SEC).is_empty());
    assert_eq!(purge_all(&mut s, 100).0, 1);
    assert_eq!(s.session_count(), 0);
    assert!(s.bib_entries().is_empty());
    let refused = s
        .inbound(
            2 * SEC,
            Proto::Tcp,
            v4("203.0.113.6", 50001),
            web4,
            TcpFlags::SYN,
        )
        .unwrap_err();
    assert_eq!(refused.reason, Refuse::NoBinding);
    assert_eq!(s.stats().bib_entries, [0, 0, 0]);
}

#[test]
fn a_static_entry_added_takes_over_a_dynamic_one_in_its_way() {
    let old = config(&["192.0.2.1"]);
    let mut s = state(&old);
    let host = client(0);
    let m = s
        .outbound(0, Proto::Udp, host, server(), TcpFlags::NONE)
        .unwrap();
    // Same mapping: the dynamic entry becomes static, its session stays.
    let mut same = old.clone();
    same.static_bib.push(StaticBib {
        proto: Proto::Udp,
        v6: host,
        v4: m.v4,
    });
    let done = s.reconfigure(&[], &same).unwrap();
    assert_eq!(done.bib_doomed, 0);
    assert_eq!(s.session_count(), 1);
    assert!(s.bib_entries()[0].is_static);
    // Another pool4 port for the same IPv6 address: the old entry goes.
    let other = Taddr4::new(m.v4.addr, if m.v4.port == 62000 { 62002 } else { 62000 });
    let mut moved = old.clone();
    moved.static_bib.push(StaticBib {
        proto: Proto::Udp,
        v6: host,
        v4: other,
    });
    let done = s.reconfigure(&same.static_bib, &moved).unwrap();
    assert_eq!(done.static_removed, 1);
    assert_eq!(purge_all(&mut s, 100).0, 1);
    assert_eq!(s.lookup_v6(Proto::Udp, host), Some(other));
    assert_eq!(s.lookup_v4(Proto::Udp, m.v4), None);
    let again = s
        .outbound(SEC, Proto::Udp, host, server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(again.v4, other);
}

#[test]
fn a_refused_configuration_leaves_the_state_as_it_was() {
    let old = config(&["192.0.2.1"]);
    let mut s = state(&old);
    let m = s
        .outbound(0, Proto::Udp, client(0), server(), TcpFlags::NONE)
        .unwrap();
    // The static entry is outside the new pool4: refused as a whole, the
    // pool4 change included.
    let mut bad = config(&["192.0.2.2"]);
    bad.static_bib.push(StaticBib {
        proto: Proto::Udp,
        v6: v6("2001:db8::53", 53),
        v4: v4("192.0.2.1", 53),
    });
    assert!(matches!(
        s.reconfigure(&[], &bad),
        Err(StateError::StaticNotInPool(..))
    ));
    assert!(!s.purge_pending());
    assert_eq!(s.pool4(), &old.pool4);
    assert_eq!(s.lookup_v4(Proto::Udp, m.v4), Some(m.v6));
    assert!(!s.is_pool4_addr(ip4("192.0.2.2")));
}

#[test]
fn filtering_switches_for_the_packets_that_come_next() {
    let old = config(&["192.0.2.1"]);
    let mut s = state(&old);
    let m = s
        .outbound(0, Proto::Udp, client(0), server(), TcpFlags::NONE)
        .unwrap();
    let stranger = v4("203.0.113.9", 53);
    let mut adf = old.clone();
    adf.filtering = Filtering::AddressDependent;
    s.reconfigure(&[], &adf).unwrap();
    // The remote the host talks to may come from another port (the index
    // was built from the running sessions); a stranger may not.
    let other_port = Taddr4::new(server().addr, 5353);
    assert!(s
        .inbound(SEC, Proto::Udp, other_port, m.v4, TcpFlags::NONE)
        .is_ok());
    let refused = s
        .inbound(SEC, Proto::Udp, stranger, m.v4, TcpFlags::NONE)
        .unwrap_err();
    assert_eq!(refused.reason, Refuse::Filtered);
    s.reconfigure(&[], &old).unwrap();
    assert!(s
        .inbound(2 * SEC, Proto::Udp, stranger, m.v4, TcpFlags::NONE)
        .is_ok());
}

#[test]
fn shards_hand_out_only_their_own_ports_after_pool4_changes() {
    const N: usize = 3;
    let old = config(&["192.0.2.1 1000-1299"]);
    let new = config(&["192.0.2.1 1000-1099", "192.0.2.5 2000-2299"]);
    let mut shards: Vec<State> = (0..N)
        .map(|k| State::new_shard(old.clone(), SplitMix64::new(k as u64), k, N).unwrap())
        .collect();
    for (k, s) in shards.iter_mut().enumerate() {
        for i in 0..20 {
            let m = s
                .outbound(0, Proto::Udp, client(i), server(), TcpFlags::NONE)
                .unwrap();
            assert_eq!(shard_of_port(m.v4.port, N), k);
        }
        s.reconfigure(&[], &new).unwrap();
        purge_all(s, 10);
    }
    let total: u64 = shards
        .iter()
        .map(|s| s.stats().ports_total[Proto::Udp.index()])
        .sum();
    assert_eq!(total, 100 + 300);
    // Fill every shard to exhaustion: each hands out exactly the ports it
    // owns, of the new pool only.
    let mut seen = std::collections::HashSet::new();
    for (k, s) in shards.iter_mut().enumerate() {
        let mut i = 100;
        loop {
            match s.outbound(SEC, Proto::Udp, client(i), server(), TcpFlags::NONE) {
                Ok(m) => {
                    assert_eq!(shard_of_port(m.v4.port, N), k, "{}", m.v4);
                    assert!(new.pool4.proto(Proto::Udp).contains(m.v4.addr, m.v4.port));
                    assert!(seen.insert(m.v4), "{} handed out twice", m.v4);
                }
                Err(r) => {
                    assert_eq!(r.reason, Refuse::PoolExhausted);
                    break;
                }
            }
            i += 1;
        }
        let st = s.stats();
        assert_eq!(
            st.ports_used[Proto::Udp.index()],
            st.ports_total[Proto::Udp.index()]
        );
    }
    // The old mappings inside the new pool stayed in place, so the new ones
    // and the kept ones together are the whole new pool.
    let kept: usize = shards
        .iter()
        .map(|s| {
            s.bib_entries()
                .iter()
                .filter(|b| b.proto == Proto::Udp && !seen.contains(&b.v4))
                .count()
        })
        .sum();
    assert_eq!(seen.len() + kept, 400);
}

#[test]
fn static_entries_follow_their_port_to_its_shard_after_a_reload() {
    const N: usize = 2;
    let old = config(&["192.0.2.1"]);
    let mut new = old.clone();
    let web6 = v6("2001:db8::80", 80);
    for port in [8080, 8082] {
        new.static_bib.push(StaticBib {
            proto: Proto::Tcp,
            v6: Taddr6::new(web6.addr, port),
            v4: v4("192.0.2.1", port),
        });
    }
    let mut shards: Vec<State> = (0..N)
        .map(|k| State::new_shard(old.clone(), SplitMix64::new(1), k, N).unwrap())
        .collect();
    for s in &mut shards {
        s.reconfigure(&[], &new).unwrap();
    }
    for st in &new.static_bib {
        for (k, s) in shards.iter().enumerate() {
            let held = s.lookup_v4(Proto::Tcp, st.v4).is_some();
            assert_eq!(held, shard_of_port(st.v4.port, N) == k);
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const POOLS: [&[&str]; 4] = [
        &["192.0.2.1 1000-1063"],
        &["192.0.2.1 1000-1031", "192.0.2.2 1000-1063"],
        &["192.0.2.2 1000-1063"],
        &["192.0.2.1 1032-1099", "192.0.2.3 1000-1015"],
    ];

    #[derive(Debug, Clone)]
    enum Op {
        Out(u16, u8),
        Reply(usize),
        Reload(usize),
        Purge(usize),
        Expire(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u16..40, 0u8..3).prop_map(|(c, p)| Op::Out(c, p)),
            2 => (0usize..64).prop_map(Op::Reply),
            1 => (0usize..POOLS.len()).prop_map(Op::Reload),
            2 => (1usize..20).prop_map(Op::Purge),
            1 => (1u64..400).prop_map(Op::Expire),
        ]
    }

    proptest! {
        /// Whatever the order of flows, reloads, purge rounds and expiry,
        /// once the purge is over the tables hold exactly what the current
        /// pool4 allows, and the counts agree with the lists.
        #[test]
        fn reloads_purges_and_flows_keep_the_tables_consistent(
            ops in proptest::collection::vec(op(), 1..120)
        ) {
            let mut cfg = config(POOLS[0]);
            cfg.timeouts.udp = Duration::from_secs(120);
            let mut s = state(&cfg);
            let mut now = 0u64;
            let mut seen: Vec<Mapping> = Vec::new();
            for op in ops {
                match op {
                    Op::Out(c, p) => {
                        let proto = Proto::ALL[usize::from(p)];
                        let flags = if proto == Proto::Tcp { TcpFlags::SYN } else { TcpFlags::NONE };
                        if let Ok(m) = s.outbound(now, proto, client(c), server(), flags) {
                            prop_assert!(cfg.pool4.proto(proto).contains(m.v4.addr, m.v4.port));
                            if proto == Proto::Udp {
                                seen.push(m);
                            }
                        }
                    }
                    Op::Reply(i) => {
                        if let Some(m) = seen.get(i) {
                            if let Ok(back) = s.inbound(now, Proto::Udp, server(), m.v4, TcpFlags::NONE) {
                                prop_assert!(cfg.pool4.proto(Proto::Udp).contains(m.v4.addr, m.v4.port));
                                prop_assert_eq!(back.v4, m.v4);
                            }
                        }
                    }
                    Op::Reload(k) => {
                        let mut new = config(POOLS[k]);
                        new.timeouts = cfg.timeouts;
                        s.reconfigure(&[], &new).unwrap();
                        cfg = new;
                    }
                    Op::Purge(b) => {
                        let (n, _) = s.purge_at_most(b);
                        prop_assert!(n <= b as u64);
                    }
                    Op::Expire(secs) => {
                        now += secs * SEC;
                        s.handle_timeout(now);
                    }
                }
                // Whatever is listed is in the current pool4.
                for x in s.sessions(now) {
                    prop_assert!(cfg.pool4.proto(x.proto).contains(x.v4.addr, x.v4.port), "{:?}", x);
                }
            }
            while s.purge_at_most(5).1 {}
            let st = s.stats();
            let sessions = s.sessions(now);
            let bibs = s.bib_entries();
            prop_assert_eq!(sessions.len(), s.session_count() as usize);
            prop_assert_eq!(bibs.len() as u64, st.bib_entries.iter().map(|&x| u64::from(x)).sum::<u64>());
            prop_assert_eq!(bibs.len() as u64, st.ports_used.iter().sum::<u64>());
            for b in &bibs {
                prop_assert!(cfg.pool4.proto(b.proto).contains(b.v4.addr, b.v4.port));
                prop_assert_eq!(s.lookup_v4(b.proto, b.v4), Some(b.v6));
                prop_assert_eq!(s.lookup_v6(b.proto, b.v6), Some(b.v4));
            }
            s.handle_timeout(now + 10 * 3600 * SEC);
            s.handle_timeout(now + 20 * 3600 * SEC);
            prop_assert_eq!(s.session_count(), 0);
            prop_assert_eq!(s.stats().bib_entries, [0, 0, 0]);
            prop_assert_eq!(s.stats().ports_used, [0, 0, 0]);
        }
    }
}
