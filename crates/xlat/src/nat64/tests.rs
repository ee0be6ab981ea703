//! Scenario tests on a virtual clock: every timer, every TCP transition,
//! pool exhaustion, limits, filtering, static BIB entries and hairpinning.

use super::*;
use proptest::prelude::*;

const SEC: u64 = 1000;
const MIN: u64 = 60 * SEC;

fn v6(s: &str, port: u16) -> Taddr6 {
    Taddr6::new(s.parse().unwrap(), port)
}

fn v4(s: &str, port: u16) -> Taddr4 {
    Taddr4::new(s.parse().unwrap(), port)
}

fn pool(entries: &[&str]) -> Pool4 {
    let entries: Vec<Pool4Entry> = entries.iter().map(|e| e.parse().unwrap()).collect();
    Pool4::new(&entries).unwrap()
}

fn config(entries: &[&str]) -> Config {
    Config {
        pool4: pool(entries),
        timeouts: Timeouts::default(),
        limits: Limits::default(),
        filtering: Filtering::default(),
        static_bib: Vec::new(),
    }
}

fn state(config: Config) -> State {
    State::new(config, SplitMix64::new(42)).unwrap()
}

fn client() -> Taddr6 {
    v6("2001:db8::1", 40000)
}

fn server() -> Taddr4 {
    v4("198.51.100.7", 53)
}

fn tcp_state(s: &State, proto: Proto) -> Option<TcpState> {
    s.sessions(0)
        .into_iter()
        .find(|x| x.proto == proto)
        .and_then(|x| x.tcp_state)
}

// ---- mapping and filtering ----

#[test]
fn udp_outbound_maps_to_a_pool4_port_of_the_same_class_and_parity() {
    let mut s = state(config(&["192.0.2.1"]));
    let m = s
        .outbound(0, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(m.v6, client());
    assert_eq!(m.v4.addr, "192.0.2.1".parse::<Ipv4Addr>().unwrap());
    assert!((61001..=65535).contains(&m.v4.port), "{}", m.v4.port);
    assert_eq!(m.v4.port % 2, client().port % 2, "parity kept");
    assert_eq!(m.remote, server());
    let st = s.stats();
    assert_eq!(st.sessions, [0, 1, 0]);
    assert_eq!(st.bib_entries, [0, 1, 0]);
    assert_eq!(st.ports_used, [0, 1, 0]);
}

#[test]
fn endpoint_independent_mapping_reuses_the_bib_entry_for_any_remote() {
    let mut s = state(config(&["192.0.2.1"]));
    let a = s
        .outbound(0, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    let b = s
        .outbound(
            0,
            Proto::Udp,
            client(),
            v4("203.0.113.9", 123),
            TcpFlags::NONE,
        )
        .unwrap();
    assert_eq!(a.v4, b.v4);
    assert_eq!(s.stats().sessions[1], 2);
    assert_eq!(s.stats().bib_entries[1], 1);
}

#[test]
fn reply_from_the_remote_maps_back_to_the_ipv6_client() {
    let mut s = state(config(&["192.0.2.1"]));
    let out = s
        .outbound(0, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    let back = s
        .inbound(SEC, Proto::Udp, server(), out.v4, TcpFlags::NONE)
        .unwrap();
    assert_eq!(back.v6, client());
    assert_eq!(back.remote, server());
    assert_eq!(s.stats().sessions[1], 1, "the reply uses the same session");
}

#[test]
fn endpoint_independent_filtering_lets_any_remote_reach_a_bib_entry() {
    let mut s = state(config(&["192.0.2.1"]));
    let out = s
        .outbound(0, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    let other = v4("203.0.113.50", 9999);
    let m = s
        .inbound(0, Proto::Udp, other, out.v4, TcpFlags::NONE)
        .unwrap();
    assert_eq!(m.v6, client());
    assert_eq!(s.stats().sessions[1], 2);
}

#[test]
fn address_dependent_filtering_admits_only_known_remote_addresses() {
    let mut cfg = config(&["192.0.2.1"]);
    cfg.filtering = Filtering::AddressDependent;
    let mut s = state(cfg);
    let out = s
        .outbound(0, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    let stranger = v4("203.0.113.50", 53);
    assert_eq!(
        s.inbound(0, Proto::Udp, stranger, out.v4, TcpFlags::NONE),
        Err(Refusal {
            reason: Refuse::Filtered,
            icmp: Some(IcmpError::V4AdminProhibited)
        })
    );
    // Same address as the known remote, another port: allowed.
    let known_other_port = v4("198.51.100.7", 5353);
    assert!(s
        .inbound(0, Proto::Udp, known_other_port, out.v4, TcpFlags::NONE)
        .is_ok());
    assert_eq!(s.stats().sessions[1], 2);
    assert_eq!(s.stats().refused[Refuse::Filtered.index()], 1);
}

#[test]
fn address_dependent_filtering_forgets_a_remote_when_its_sessions_expire() {
    let mut cfg = config(&["192.0.2.1"]);
    cfg.filtering = Filtering::AddressDependent;
    let mut s = state(cfg);
    let out = s
        .outbound(0, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    // A second remote keeps the BIB entry alive after the first expires.
    s.outbound(
        4 * MIN,
        Proto::Udp,
        client(),
        v4("203.0.113.1", 1),
        TcpFlags::NONE,
    )
    .unwrap();
    s.handle_timeout(5 * MIN);
    assert_eq!(s.stats().sessions[1], 1);
    let again = v4("198.51.100.7", 5353);
    assert_eq!(
        s.inbound(5 * MIN, Proto::Udp, again, out.v4, TcpFlags::NONE)
            .map_err(|r| r.reason),
        Err(Refuse::Filtered)
    );
}

#[test]
fn unsolicited_ipv4_packets_create_no_state() {
    let mut s = state(config(&["192.0.2.1"]));
    let pool_port = v4("192.0.2.1", 61001);
    assert_eq!(
        s.inbound(0, Proto::Udp, server(), pool_port, TcpFlags::NONE),
        Err(Refusal {
            reason: Refuse::NoBinding,
            icmp: Some(IcmpError::V4PortUnreachable)
        })
    );
    assert_eq!(
        s.inbound(0, Proto::Tcp, server(), pool_port, TcpFlags::SYN),
        Err(Refusal {
            reason: Refuse::NoBinding,
            icmp: None
        })
    );
    assert_eq!(
        s.inbound(0, Proto::Icmp, server(), pool_port, TcpFlags::NONE)
            .map_err(|r| r.icmp),
        Err(None)
    );
    assert_eq!(s.session_count(), 0);
    assert_eq!(s.stats().refused[Refuse::NoBinding.index()], 3);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn static_bib_entry_lets_an_ipv4_client_reach_an_ipv6_server() {
    let mut cfg = config(&["192.0.2.1"]);
    let web6 = v6("2001:db8::80", 80);
    let web4 = v4("192.0.2.1", 8080);
    cfg.static_bib.push(StaticBib {
        proto: Proto::Tcp,
        v6: web6,
        v4: web4,
    });
    let mut s = state(cfg);
    let browser = v4("203.0.113.5", 50000);
    let m = s
        .inbound(0, Proto::Tcp, browser, web4, TcpFlags::SYN)
        .unwrap();
    assert_eq!(m.v6, web6);
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::V4Init));
    // The server's SYN/ACK completes the opening.
    let back = s
        .outbound(SEC, Proto::Tcp, web6, browser, TcpFlags::SYN)
        .unwrap();
    assert_eq!(back.v4, web4);
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::Established));
    // The static entry outlives its sessions (TCP_EST, then TCP_TRANS).
    s.handle_timeout(10 * 3600 * SEC);
    s.handle_timeout(11 * 3600 * SEC);
    assert_eq!(s.session_count(), 0);
    let bibs = s.bib_entries();
    assert_eq!(bibs.len(), 1);
    assert!(bibs[0].is_static);
    assert_eq!(s.lookup_v4(Proto::Tcp, web4), Some(web6));
}

#[test]
fn static_bib_entries_outside_pool4_or_conflicting_are_refused() {
    let mut cfg = config(&["192.0.2.1"]);
    cfg.static_bib.push(StaticBib {
        proto: Proto::Udp,
        v6: v6("2001:db8::53", 53),
        v4: v4("192.0.2.99", 53),
    });
    assert!(matches!(
        State::new(cfg, SplitMix64::new(1)),
        Err(StateError::StaticNotInPool(..))
    ));
    let mut cfg = config(&["192.0.2.1"]);
    for port in [53, 54] {
        cfg.static_bib.push(StaticBib {
            proto: Proto::Udp,
            v6: v6("2001:db8::53", port),
            v4: v4("192.0.2.1", 53),
        });
    }
    assert!(matches!(
        State::new(cfg, SplitMix64::new(1)),
        Err(StateError::StaticConflict(..))
    ));
}

#[test]
fn a_static_port_inside_the_dynamic_range_is_never_handed_out() {
    let mut cfg = config(&["192.0.2.1 udp 2000-2001", "192.0.2.1 tcp", "192.0.2.1 icmp"]);
    cfg.static_bib.push(StaticBib {
        proto: Proto::Udp,
        v6: v6("2001:db8::53", 53),
        v4: v4("192.0.2.1", 2000),
    });
    let mut s = state(cfg);
    let m = s
        .outbound(0, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(m.v4.port, 2001);
    assert_eq!(
        s.outbound(
            0,
            Proto::Udp,
            v6("2001:db8::2", 1),
            server(),
            TcpFlags::NONE
        )
        .map_err(|r| r.reason),
        Err(Refuse::PoolExhausted)
    );
}

// ---- port selection ----

#[test]
fn well_known_source_ports_get_well_known_pool_ports_when_there_are_some() {
    let mut s = state(config(&[
        "192.0.2.1 tcp 1-1023",
        "192.0.2.1 tcp 61001-65535",
        "192.0.2.1 udp",
        "192.0.2.1 icmp",
    ]));
    for (i, src_port) in [22u16, 80, 443, 1023].into_iter().enumerate() {
        let src = v6(&format!("2001:db8::{}", i + 1), src_port);
        let m = s
            .outbound(0, Proto::Tcp, src, server(), TcpFlags::SYN)
            .unwrap();
        assert!(m.v4.port < 1024, "{src_port} -> {}", m.v4.port);
        assert_eq!(m.v4.port % 2, src_port % 2);
    }
    let m = s
        .outbound(
            0,
            Proto::Tcp,
            v6("2001:db8::9", 50001),
            server(),
            TcpFlags::SYN,
        )
        .unwrap();
    assert!(m.v4.port >= 61001);
    assert_eq!(m.v4.port % 2, 1);
}

#[test]
fn a_port_of_the_other_class_is_used_when_the_own_class_has_none() {
    let mut s = state(config(&["192.0.2.1"]));
    let m = s
        .outbound(
            0,
            Proto::Tcp,
            v6("2001:db8::1", 80),
            server(),
            TcpFlags::SYN,
        )
        .unwrap();
    assert!(m.v4.port >= 61001);
}

#[test]
fn port_choice_is_random_and_reproducible_from_the_seed() {
    let run = |seed: u64| -> Vec<u16> {
        let mut s = State::new(config(&["192.0.2.1"]), SplitMix64::new(seed)).unwrap();
        (0..20)
            .map(|i| {
                s.outbound(
                    0,
                    Proto::Udp,
                    v6("2001:db8::1", 40000 + i),
                    server(),
                    TcpFlags::NONE,
                )
                .unwrap()
                .v4
                .port
            })
            .collect()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    let ports = run(7);
    let sequential = ports.windows(2).all(|w| w[1] == w[0] + 2);
    assert!(!sequential, "ports are not handed out in order: {ports:?}");
}

#[test]
fn one_ipv6_host_keeps_one_ipv4_address() {
    let mut s = state(config(&["192.0.2.0/29"]));
    for host in 1..=5u16 {
        let addr = format!("2001:db8::{host}");
        let first = s
            .outbound(0, Proto::Udp, v6(&addr, 1024), server(), TcpFlags::NONE)
            .unwrap()
            .v4
            .addr;
        for port in 1025..1100 {
            let m = s
                .outbound(0, Proto::Udp, v6(&addr, port), server(), TcpFlags::NONE)
                .unwrap();
            assert_eq!(m.v4.addr, first, "paired pooling");
        }
    }
}

#[test]
fn icmp_identifiers_are_mapped_and_replies_found_by_identifier() {
    let mut s = state(config(&[
        "192.0.2.1 icmp 0-65535",
        "192.0.2.1 tcp",
        "192.0.2.1 udp",
    ]));
    let pinger = v6("2001:db8::1", 0x1234);
    let target = v4("198.51.100.7", 0x1234);
    let m = s
        .outbound(0, Proto::Icmp, pinger, target, TcpFlags::NONE)
        .unwrap();
    assert_eq!(m.remote, Taddr4::new(target.addr, m.v4.port));
    let reply = s
        .inbound(
            SEC,
            Proto::Icmp,
            Taddr4::new(target.addr, m.v4.port),
            m.v4,
            TcpFlags::NONE,
        )
        .unwrap();
    assert_eq!(reply.v6, pinger);
    assert_eq!(s.stats().sessions[2], 1);
}

// ---- timers ----

#[test]
fn udp_session_expires_after_5_min() {
    let mut s = state(config(&["192.0.2.1"]));
    let m = s
        .outbound(0, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(5 * MIN));
    assert_eq!(s.handle_timeout(5 * MIN - 1), 0);
    assert_eq!(s.session_count(), 1);
    assert_eq!(s.handle_timeout(5 * MIN), 1);
    assert_eq!(s.session_count(), 0);
    assert_eq!(
        s.stats().bib_entries[1],
        0,
        "the BIB entry goes with its last session"
    );
    assert_eq!(s.stats().ports_used[1], 0, "and the port is free again");
    assert_eq!(s.stats().sessions_expired[1], 1);
    assert_eq!(s.lookup_v4(Proto::Udp, m.v4), None);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn traffic_in_either_direction_refreshes_a_udp_session() {
    let mut s = state(config(&["192.0.2.1"]));
    let m = s
        .outbound(0, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    s.outbound(4 * MIN, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(9 * MIN));
    s.inbound(8 * MIN, Proto::Udp, server(), m.v4, TcpFlags::NONE)
        .unwrap();
    assert_eq!(s.handle_timeout(12 * MIN), 0);
    assert_eq!(s.handle_timeout(13 * MIN), 1);
}

#[test]
fn icmp_session_expires_after_60_s() {
    let mut s = state(config(&["192.0.2.1"]));
    s.outbound(0, Proto::Icmp, client(), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(60 * SEC));
    assert_eq!(s.handle_timeout(60 * SEC - 1), 0);
    assert_eq!(s.handle_timeout(60 * SEC), 1);
}

#[test]
fn configured_timeouts_apply_and_changing_them_applies_to_running_sessions() {
    let mut cfg = config(&["192.0.2.1"]);
    cfg.timeouts.udp = Duration::from_secs(2);
    let mut s = state(cfg);
    s.outbound(0, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(2 * SEC));
    s.set_timeouts(Timeouts {
        udp: Duration::from_secs(10),
        ..Timeouts::default()
    });
    assert_eq!(s.handle_timeout(9 * SEC), 0);
    assert_eq!(s.handle_timeout(10 * SEC), 1);
}

#[test]
fn a_session_created_mid_second_never_expires_early() {
    let mut s = state(config(&["192.0.2.1"]));
    s.outbound(1500, Proto::Icmp, client(), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(s.handle_timeout(1500 + 60 * SEC - 1), 0);
    assert!(s.poll_timeout().unwrap() >= 1500 + 60 * SEC);
    assert!(s.poll_timeout().unwrap() <= 2500 + 60 * SEC);
}

#[test]
fn expiry_follows_refresh_order_not_creation_order() {
    let mut s = state(config(&["192.0.2.1"]));
    let a = v6("2001:db8::a", 1000);
    let b = v6("2001:db8::b", 1000);
    s.outbound(0, Proto::Udp, a, server(), TcpFlags::NONE)
        .unwrap();
    s.outbound(SEC, Proto::Udp, b, server(), TcpFlags::NONE)
        .unwrap();
    s.outbound(2 * SEC, Proto::Udp, a, server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(s.handle_timeout(5 * MIN + SEC), 1);
    let left = s.sessions(5 * MIN + SEC);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].v6, a);
}

#[test]
fn a_clock_that_steps_back_does_not_expire_anything_early() {
    let mut s = state(config(&["192.0.2.1"]));
    s.outbound(10 * MIN, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    s.outbound(
        MIN,
        Proto::Udp,
        v6("2001:db8::2", 1),
        server(),
        TcpFlags::NONE,
    )
    .unwrap();
    assert_eq!(s.handle_timeout(15 * MIN - 1), 0);
    assert_eq!(s.handle_timeout(15 * MIN), 2);
}

#[test]
fn expiry_in_bounded_rounds_deletes_everything_due_and_nothing_else() {
    let mut s = state(config(&["192.0.2.1"]));
    for port in 0..100 {
        s.outbound(
            0,
            Proto::Udp,
            v6("2001:db8::1", port),
            server(),
            TcpFlags::NONE,
        )
        .unwrap();
    }
    s.outbound(
        MIN,
        Proto::Udp,
        v6("2001:db8::2", 1),
        server(),
        TcpFlags::NONE,
    )
    .unwrap();
    let mut rounds = 0;
    let mut deleted = 0;
    loop {
        let (d, more) = s.handle_timeout_at_most(5 * MIN, 30);
        deleted += d;
        rounds += 1;
        if !more {
            break;
        }
    }
    assert_eq!(deleted, 100);
    assert_eq!(rounds, 4);
    assert_eq!(s.session_count(), 1);
}

// ---- TCP states ----

/// Opens a connection from the IPv6 side: V6 SYN, then the V4 SYN/ACK.
fn open_from_v6(s: &mut State, now: u64) -> Mapping {
    let m = s
        .outbound(now, Proto::Tcp, client(), server(), TcpFlags::SYN)
        .unwrap();
    assert_eq!(tcp_state(s, Proto::Tcp), Some(TcpState::V6Init));
    s.inbound(now, Proto::Tcp, server(), m.v4, TcpFlags::SYN)
        .unwrap();
    assert_eq!(tcp_state(s, Proto::Tcp), Some(TcpState::Established));
    m
}

#[test]
fn tcp_v6_init_expires_after_tcp_trans() {
    let mut s = state(config(&["192.0.2.1"]));
    s.outbound(0, Proto::Tcp, client(), server(), TcpFlags::SYN)
        .unwrap();
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::V6Init));
    assert_eq!(s.poll_timeout(), Some(4 * MIN));
    // A retransmitted V6 SYN restarts TCP_TRANS.
    s.outbound(MIN, Proto::Tcp, client(), server(), TcpFlags::SYN)
        .unwrap();
    assert_eq!(s.handle_timeout(5 * MIN - 1), 0);
    assert_eq!(s.handle_timeout(5 * MIN), 1);
}

#[test]
fn tcp_v6_init_non_syn_packets_do_not_refresh() {
    let mut s = state(config(&["192.0.2.1"]));
    s.outbound(0, Proto::Tcp, client(), server(), TcpFlags::SYN)
        .unwrap();
    s.outbound(MIN, Proto::Tcp, client(), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(4 * MIN));
}

#[test]
fn tcp_v4_init_expires_after_6_s_without_a_v6_syn() {
    let mut cfg = config(&["192.0.2.1"]);
    cfg.static_bib.push(StaticBib {
        proto: Proto::Tcp,
        v6: v6("2001:db8::80", 80),
        v4: v4("192.0.2.1", 80),
    });
    let mut s = state(cfg);
    s.inbound(0, Proto::Tcp, server(), v4("192.0.2.1", 80), TcpFlags::SYN)
        .unwrap();
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::V4Init));
    assert_eq!(s.poll_timeout(), Some(6 * SEC));
    // A retransmitted V4 SYN does not extend it.
    s.inbound(
        3 * SEC,
        Proto::Tcp,
        server(),
        v4("192.0.2.1", 80),
        TcpFlags::SYN,
    )
    .unwrap();
    assert_eq!(s.handle_timeout(6 * SEC - 1), 0);
    assert_eq!(s.handle_timeout(6 * SEC), 1);
}

#[test]
fn tcp_established_lives_tcp_est_then_trans_then_goes() {
    let mut s = state(config(&["192.0.2.1"]));
    open_from_v6(&mut s, 0);
    let est = 124 * MIN;
    assert_eq!(s.poll_timeout(), Some(est));
    assert_eq!(s.handle_timeout(est - 1), 0);
    // TCP_EST over: a probe is queued and the session is in TRANS for
    // TCP_TRANS (probe_tests.rs follows the probe).
    assert_eq!(s.handle_timeout(est), 0);
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::Trans));
    let mut probes = Vec::new();
    s.take_probes(&mut probes);
    assert_eq!(probes.len(), 1);
    assert_eq!(s.poll_timeout(), Some(est + 4 * MIN));
    assert_eq!(s.handle_timeout(est + 4 * MIN), 1);
}

#[test]
fn tcp_traffic_refreshes_established() {
    let mut s = state(config(&["192.0.2.1"]));
    let m = open_from_v6(&mut s, 0);
    s.inbound(100 * MIN, Proto::Tcp, server(), m.v4, TcpFlags::NONE)
        .unwrap();
    assert_eq!(s.poll_timeout(), Some(224 * MIN));
}

#[test]
fn tcp_v6_fin_then_v4_fin_closes_after_tcp_trans() {
    let mut s = state(config(&["192.0.2.1"]));
    let m = open_from_v6(&mut s, 0);
    s.outbound(SEC, Proto::Tcp, client(), server(), TcpFlags::FIN)
        .unwrap();
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::V6FinRcv));
    assert_eq!(
        s.poll_timeout(),
        Some(SEC + 124 * MIN),
        "half closed keeps TCP_EST"
    );
    s.inbound(2 * SEC, Proto::Tcp, server(), m.v4, TcpFlags::FIN)
        .unwrap();
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::V4FinV6FinRcv));
    assert_eq!(s.poll_timeout(), Some(2 * SEC + 4 * MIN));
    // The last ACKs do not extend it.
    s.outbound(3 * SEC, Proto::Tcp, client(), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(s.handle_timeout(2 * SEC + 4 * MIN), 1);
}

#[test]
fn tcp_v4_fin_then_v6_fin_closes_after_tcp_trans() {
    let mut s = state(config(&["192.0.2.1"]));
    let m = open_from_v6(&mut s, 0);
    s.inbound(SEC, Proto::Tcp, server(), m.v4, TcpFlags::FIN)
        .unwrap();
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::V4FinRcv));
    // More data from either side keeps it half closed, on TCP_EST.
    s.outbound(2 * SEC, Proto::Tcp, client(), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::V4FinRcv));
    s.outbound(3 * SEC, Proto::Tcp, client(), server(), TcpFlags::FIN)
        .unwrap();
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::V4FinV6FinRcv));
    assert_eq!(s.handle_timeout(3 * SEC + 4 * MIN - 1), 0);
    assert_eq!(s.handle_timeout(3 * SEC + 4 * MIN), 1);
}

#[test]
fn tcp_half_closed_idle_for_tcp_est_goes_to_trans() {
    let mut s = state(config(&["192.0.2.1"]));
    open_from_v6(&mut s, 0);
    s.outbound(0, Proto::Tcp, client(), server(), TcpFlags::FIN)
        .unwrap();
    s.handle_timeout(124 * MIN);
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::Trans));
}

#[test]
fn tcp_rst_moves_to_trans_and_the_session_goes_after_tcp_trans() {
    let mut s = state(config(&["192.0.2.1"]));
    let m = open_from_v6(&mut s, 0);
    s.inbound(SEC, Proto::Tcp, server(), m.v4, TcpFlags::RST)
        .unwrap();
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::Trans));
    assert_eq!(s.poll_timeout(), Some(SEC + 4 * MIN));
    // Another RST changes nothing.
    s.outbound(2 * SEC, Proto::Tcp, client(), server(), TcpFlags::RST)
        .unwrap();
    assert_eq!(s.handle_timeout(SEC + 4 * MIN), 1);
}

#[test]
fn tcp_packet_in_trans_brings_the_session_back_to_established() {
    let mut s = state(config(&["192.0.2.1"]));
    open_from_v6(&mut s, 0);
    s.outbound(SEC, Proto::Tcp, client(), server(), TcpFlags::RST)
        .unwrap();
    s.outbound(2 * SEC, Proto::Tcp, client(), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::Established));
    assert_eq!(s.poll_timeout(), Some(2 * SEC + 124 * MIN));
}

#[test]
fn tcp_rst_in_a_half_closed_session_moves_to_trans() {
    let mut s = state(config(&["192.0.2.1"]));
    let m = open_from_v6(&mut s, 0);
    s.inbound(SEC, Proto::Tcp, server(), m.v4, TcpFlags::FIN)
        .unwrap();
    s.outbound(2 * SEC, Proto::Tcp, client(), server(), TcpFlags::RST)
        .unwrap();
    assert_eq!(tcp_state(&s, Proto::Tcp), Some(TcpState::Trans));
}

#[test]
fn tcp_segments_without_a_session_other_than_syn_are_refused() {
    let mut s = state(config(&["192.0.2.1"]));
    for flags in [TcpFlags::NONE, TcpFlags::FIN, TcpFlags::RST] {
        assert_eq!(
            s.outbound(0, Proto::Tcp, client(), server(), flags),
            Err(Refusal {
                reason: Refuse::TcpNoSession,
                icmp: None
            })
        );
    }
    assert_eq!(s.session_count(), 0);
    assert_eq!(s.stats().bib_entries[0], 0);
    // From IPv4, on an existing BIB entry (EIF), only a SYN opens.
    let m = open_from_v6(&mut s, 0);
    let other = v4("203.0.113.1", 80);
    assert_eq!(
        s.inbound(0, Proto::Tcp, other, m.v4, TcpFlags::NONE)
            .map_err(|r| r.reason),
        Err(Refuse::TcpNoSession)
    );
    assert!(s.inbound(0, Proto::Tcp, other, m.v4, TcpFlags::SYN).is_ok());
}

#[test]
fn tcp_simultaneous_syns_on_an_existing_bib_entry_establish() {
    let mut s = state(config(&["192.0.2.1"]));
    let m = open_from_v6(&mut s, 0);
    let peer = v4("203.0.113.1", 4000);
    s.inbound(0, Proto::Tcp, peer, m.v4, TcpFlags::SYN).unwrap();
    s.outbound(SEC, Proto::Tcp, client(), peer, TcpFlags::SYN)
        .unwrap();
    let states: Vec<_> = s.sessions(0).into_iter().map(|x| x.tcp_state).collect();
    assert_eq!(states, vec![Some(TcpState::Established); 2]);
}

// ---- limits and exhaustion ----

#[test]
fn a_pool_of_10_ports_refuses_the_11th_flow_and_keeps_the_first_10() {
    let mut s = state(config(&[
        "192.0.2.1 tcp 2000-2009",
        "192.0.2.1 udp",
        "192.0.2.1 icmp",
    ]));
    let mut mapped = Vec::new();
    for i in 0..10u16 {
        let src = v6("2001:db8::1", 30000 + i);
        mapped.push(
            s.outbound(0, Proto::Tcp, src, server(), TcpFlags::SYN)
                .unwrap(),
        );
    }
    let mut ports: Vec<u16> = mapped.iter().map(|m| m.v4.port).collect();
    ports.sort_unstable();
    assert_eq!(ports, (2000..2010).collect::<Vec<_>>());
    assert_eq!(
        s.outbound(
            0,
            Proto::Tcp,
            v6("2001:db8::1", 31000),
            server(),
            TcpFlags::SYN
        ),
        Err(Refusal {
            reason: Refuse::PoolExhausted,
            icmp: Some(IcmpError::V6AddressUnreachable)
        })
    );
    // The first ten keep working both ways.
    for m in &mapped {
        assert_eq!(
            s.inbound(SEC, Proto::Tcp, server(), m.v4, TcpFlags::SYN)
                .unwrap()
                .v6,
            m.v6
        );
        assert_eq!(
            s.outbound(SEC, Proto::Tcp, m.v6, server(), TcpFlags::NONE)
                .unwrap()
                .v4,
            m.v4
        );
    }
    // A new remote for an existing BIB entry still works (no new port).
    assert!(s
        .outbound(
            SEC,
            Proto::Tcp,
            mapped[0].v6,
            v4("203.0.113.1", 1),
            TcpFlags::SYN
        )
        .is_ok());
    assert_eq!(s.stats().ports_used[0], 10);
    assert_eq!(s.stats().refused[Refuse::PoolExhausted.index()], 1);
}

#[test]
fn an_exhausted_pool_recovers_when_sessions_expire() {
    let mut s = state(config(&[
        "192.0.2.1 udp 2000-2000",
        "192.0.2.1 tcp",
        "192.0.2.1 icmp",
    ]));
    s.outbound(
        0,
        Proto::Udp,
        v6("2001:db8::1", 1),
        server(),
        TcpFlags::NONE,
    )
    .unwrap();
    assert!(s
        .outbound(
            0,
            Proto::Udp,
            v6("2001:db8::2", 1),
            server(),
            TcpFlags::NONE
        )
        .is_err());
    s.handle_timeout(5 * MIN);
    let m = s
        .outbound(
            5 * MIN,
            Proto::Udp,
            v6("2001:db8::2", 1),
            server(),
            TcpFlags::NONE,
        )
        .unwrap();
    assert_eq!(m.v4.port, 2000);
}

#[test]
fn limit_action_drop_suppresses_the_icmp_error() {
    let mut cfg = config(&["192.0.2.1 udp 2000-2000", "192.0.2.1 tcp", "192.0.2.1 icmp"]);
    cfg.limits.on_limit = LimitAction::Drop;
    let mut s = state(cfg);
    s.outbound(
        0,
        Proto::Udp,
        v6("2001:db8::1", 1),
        server(),
        TcpFlags::NONE,
    )
    .unwrap();
    assert_eq!(
        s.outbound(
            0,
            Proto::Udp,
            v6("2001:db8::2", 1),
            server(),
            TcpFlags::NONE
        ),
        Err(Refusal {
            reason: Refuse::PoolExhausted,
            icmp: None
        })
    );
}

#[test]
fn per_source_limit_refuses_one_source_and_not_the_others() {
    let mut cfg = config(&["192.0.2.1"]);
    cfg.limits.max_sessions_per_source = 3;
    let mut s = state(cfg);
    let greedy = "2001:db8::bad";
    for port in 1..=3 {
        s.outbound(0, Proto::Udp, v6(greedy, port), server(), TcpFlags::NONE)
            .unwrap();
    }
    assert_eq!(
        s.outbound(0, Proto::Tcp, v6(greedy, 4), server(), TcpFlags::SYN),
        Err(Refusal {
            reason: Refuse::SourceLimit,
            icmp: Some(IcmpError::V6AddressUnreachable)
        })
    );
    // Inbound sessions on its BIB entries count too.
    let m = s
        .outbound(0, Proto::Udp, v6(greedy, 1), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(
        s.inbound(0, Proto::Udp, v4("203.0.113.1", 1), m.v4, TcpFlags::NONE)
            .map_err(|r| r.reason),
        Err(Refuse::SourceLimit)
    );
    // Existing sessions keep working; other sources are not affected.
    assert!(s
        .outbound(0, Proto::Udp, v6(greedy, 2), server(), TcpFlags::NONE)
        .is_ok());
    assert!(s
        .outbound(
            0,
            Proto::Udp,
            v6("2001:db8::600d", 1),
            server(),
            TcpFlags::NONE
        )
        .is_ok());
    // Expiry gives the source its budget back.
    s.handle_timeout(5 * MIN);
    assert!(s
        .outbound(5 * MIN, Proto::Udp, v6(greedy, 9), server(), TcpFlags::NONE)
        .is_ok());
}

#[test]
fn total_session_limit_refuses_new_sessions_only() {
    let mut cfg = config(&["192.0.2.1"]);
    cfg.limits.max_sessions = 2;
    let mut s = state(cfg);
    s.outbound(
        0,
        Proto::Udp,
        v6("2001:db8::1", 1),
        server(),
        TcpFlags::NONE,
    )
    .unwrap();
    s.outbound(
        0,
        Proto::Icmp,
        v6("2001:db8::2", 1),
        server(),
        TcpFlags::NONE,
    )
    .unwrap();
    assert_eq!(
        s.outbound(
            0,
            Proto::Udp,
            v6("2001:db8::3", 1),
            server(),
            TcpFlags::NONE
        )
        .map_err(|r| r.reason),
        Err(Refuse::SessionLimit)
    );
    assert!(s
        .outbound(
            0,
            Proto::Udp,
            v6("2001:db8::1", 1),
            server(),
            TcpFlags::NONE
        )
        .is_ok());
    assert_eq!(s.session_count(), 2);
    assert_eq!(
        s.stats().bib_entries[1],
        1,
        "the refused flow left no BIB entry"
    );
}

#[test]
fn icmp_errors_are_rate_limited_with_a_one_second_burst() {
    let mut cfg = config(&["192.0.2.1"]);
    cfg.limits.icmp_errors_per_second = 2;
    let mut s = state(cfg);
    let pool_port = v4("192.0.2.1", 61001);
    let icmp_of = |s: &mut State, now| {
        s.inbound(now, Proto::Udp, server(), pool_port, TcpFlags::NONE)
            .unwrap_err()
            .icmp
    };
    assert!(icmp_of(&mut s, 0).is_some());
    assert!(icmp_of(&mut s, 0).is_some());
    assert_eq!(icmp_of(&mut s, 0), None, "the burst is spent");
    assert_eq!(icmp_of(&mut s, 499), None);
    assert!(icmp_of(&mut s, 1000).is_some(), "refilled at 2 per second");
    assert_eq!(s.stats().icmp_errors_suppressed, 2);
    assert_eq!(
        s.stats().refused[Refuse::NoBinding.index()],
        5,
        "every refusal counts"
    );
}

// ---- hairpinning ----

#[test]
fn hairpinning_connects_two_ipv6_clients_through_their_pool4_addresses() {
    let mut s = state(config(&["192.0.2.1"]));
    let alice = v6("2001:db8::a", 5000);
    let bob = v6("2001:db8::b", 6000);
    // Bob talks to the IPv4 world first, so he has a BIB entry.
    let bob_out = s
        .outbound(0, Proto::Udp, bob, server(), TcpFlags::NONE)
        .unwrap();
    // Alice sends to Bob's pool4 address (Y' = prefix + T).
    let alice_out = s
        .outbound(SEC, Proto::Udp, alice, bob_out.v4, TcpFlags::NONE)
        .unwrap();
    assert!(
        s.is_pool4_addr(alice_out.remote.addr),
        "the caller hairpins"
    );
    // The IPv4 packet (T, ta) -> (T, tb) comes back in as inbound.
    let at_bob = s
        .inbound(
            SEC,
            Proto::Udp,
            alice_out.v4,
            alice_out.remote,
            TcpFlags::NONE,
        )
        .unwrap();
    assert_eq!(at_bob.v6, bob);
    assert_eq!(at_bob.remote, alice_out.v4, "Bob sees Alice as T:ta");
    // Bob answers to Alice's pool4 address: hairpinned the same way.
    let bob_reply = s
        .outbound(2 * SEC, Proto::Udp, bob, alice_out.v4, TcpFlags::NONE)
        .unwrap();
    assert_eq!(bob_reply.v4, bob_out.v4, "Bob keeps his mapping");
    let at_alice = s
        .inbound(
            2 * SEC,
            Proto::Udp,
            bob_reply.v4,
            bob_reply.remote,
            TcpFlags::NONE,
        )
        .unwrap();
    assert_eq!(at_alice.v6, alice);
    assert_eq!(at_alice.remote, bob_out.v4);
}

#[test]
fn hairpinned_tcp_opens_through_both_halves() {
    let client6 = v6("2001:db8::a", 5000);
    let server6 = v6("2001:db8::b", 80);
    let mut cfg = config(&["192.0.2.1"]);
    cfg.static_bib.push(StaticBib {
        proto: Proto::Tcp,
        v6: server6,
        v4: v4("192.0.2.1", 80),
    });
    let mut s = state(cfg);
    let out = s
        .outbound(0, Proto::Tcp, client6, v4("192.0.2.1", 80), TcpFlags::SYN)
        .unwrap();
    let inn = s
        .inbound(0, Proto::Tcp, out.v4, out.remote, TcpFlags::SYN)
        .unwrap();
    assert_eq!(inn.v6, server6);
    // SYN/ACK from the server, hairpinned back.
    let out2 = s
        .outbound(0, Proto::Tcp, server6, out.v4, TcpFlags::SYN)
        .unwrap();
    let inn2 = s
        .inbound(0, Proto::Tcp, out2.v4, out2.remote, TcpFlags::SYN)
        .unwrap();
    assert_eq!(inn2.v6, client6);
    let states: Vec<_> = s.sessions(0).into_iter().map(|x| x.tcp_state).collect();
    assert_eq!(states, vec![Some(TcpState::Established); 2]);
}

// ---- display and accounting ----

#[test]
fn sessions_and_bib_entries_are_listed() {
    let mut s = state(config(&["192.0.2.1"]));
    let m = s
        .outbound(0, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    s.outbound(0, Proto::Tcp, client(), server(), TcpFlags::SYN)
        .unwrap();
    let list = s.sessions(MIN);
    assert_eq!(list.len(), 2);
    let udp = list.iter().find(|x| x.proto == Proto::Udp).unwrap();
    assert_eq!((udp.v6, udp.v4, udp.remote), (client(), m.v4, server()));
    assert_eq!(udp.expires_in_ms, 4 * MIN);
    assert_eq!(udp.tcp_state, None);
    let tcp = list.iter().find(|x| x.proto == Proto::Tcp).unwrap();
    assert_eq!(tcp.tcp_state, Some(TcpState::V6Init));
    assert_eq!(s.bib_entries().len(), 2);
}

#[test]
fn listings_can_be_capped_per_protocol() {
    let mut s = state(config(&["192.0.2.1"]));
    for port in 0..10 {
        s.outbound(
            0,
            Proto::Udp,
            v6("2001:db8::1", port),
            server(),
            TcpFlags::NONE,
        )
        .unwrap();
        s.outbound(
            0,
            Proto::Icmp,
            v6("2001:db8::1", port),
            server(),
            TcpFlags::NONE,
        )
        .unwrap();
    }
    assert_eq!(s.sessions_at_most(0, 3).len(), 6);
    assert_eq!(s.bib_entries_at_most(4).len(), 8);
    assert_eq!(s.sessions(0).len(), 20);
}

#[test]
fn lookups_for_icmp_errors_neither_create_nor_refresh() {
    let mut s = state(config(&["192.0.2.1"]));
    let m = s
        .outbound(0, Proto::Udp, client(), server(), TcpFlags::NONE)
        .unwrap();
    assert_eq!(s.lookup_v6(Proto::Udp, client()), Some(m.v4));
    assert_eq!(s.lookup_v4(Proto::Udp, m.v4), Some(client()));
    assert_eq!(s.lookup_v6(Proto::Tcp, client()), None);
    assert_eq!(s.poll_timeout(), Some(5 * MIN));
}

#[test]
fn timeouts_below_the_rfc_minimums_are_reported() {
    let t = Timeouts {
        udp: Duration::from_secs(60),
        tcp_trans: Duration::from_secs(10),
        ..Timeouts::default()
    };
    let keys: Vec<_> = t.below_rfc_minimums().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec!["udp", "tcp_trans"]);
    assert!(Timeouts::default().below_rfc_minimums().is_empty());
}

// ---- properties ----

#[derive(Debug, Clone)]
enum Op {
    Out {
        proto: u8,
        host: u8,
        port: u8,
        remote: u8,
        flags: u8,
    },
    In {
        proto: u8,
        remote: u8,
        port4: u8,
        flags: u8,
    },
    Advance(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3, 0u8..6, 0u8..8, 0u8..4, 0u8..8).prop_map(|(proto, host, port, remote, flags)| {
            Op::Out {
                proto,
                host,
                port,
                remote,
                flags,
            }
        }),
        (0u8..3, 0u8..4, 0u8..12, 0u8..8).prop_map(|(proto, remote, port4, flags)| Op::In {
            proto,
            remote,
            port4,
            flags
        }),
        (0u32..400_000).prop_map(Op::Advance),
    ]
}

fn flags_of(bits: u8) -> TcpFlags {
    TcpFlags::from_octet(((bits & 1) << 1) | ((bits >> 1) & 1) | (((bits >> 2) & 1) << 2))
}

proptest! {
    /// Whatever the traffic: no session outlives its timeout once
    /// `handle_timeout` has run, the limits hold, and the counts agree.
    #[test]
    fn tables_stay_consistent_and_bounded(ops in proptest::collection::vec(op(), 1..300)) {
        let mut cfg = config(&["192.0.2.1 10-19", "192.0.2.2 20-29"]);
        cfg.limits.max_sessions = 40;
        cfg.limits.max_sessions_per_source = 12;
        cfg.timeouts.udp = Duration::from_secs(121);
        let mut s = state(cfg);
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Out { proto, host, port, remote, flags } => {
                    let proto = Proto::ALL[usize::from(proto)];
                    let src = Taddr6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(host)), u16::from(port));
                    let dst = Taddr4::new(Ipv4Addr::new(198, 51, 100, remote), 7);
                    if let Ok(m) = s.outbound(now, proto, src, dst, flags_of(flags)) {
                        prop_assert_eq!(m.v6, src);
                        prop_assert_eq!(s.lookup_v4(proto, m.v4), Some(src));
                    }
                }
                Op::In { proto, remote, port4, flags } => {
                    let proto = Proto::ALL[usize::from(proto)];
                    let (addr, port) = if port4 < 10 { ([192, 0, 2, 1], 10 + u16::from(port4)) } else { ([192, 0, 2, 2], 10 + u16::from(port4)) };
                    let dst = Taddr4::new(Ipv4Addr::from(addr), port);
                    let src = Taddr4::new(Ipv4Addr::new(198, 51, 100, remote), 7);
                    let bound = s.lookup_v4(proto, dst);
                    match s.inbound(now, proto, src, dst, flags_of(flags)) {
                        Ok(m) => prop_assert_eq!(Some(m.v6), bound),
                        Err(r) => if bound.is_none() { prop_assert_eq!(r.reason, Refuse::NoBinding) },
                    }
                }
                Op::Advance(ms) => {
                    now += u64::from(ms);
                    s.handle_timeout(now);
                    for x in s.sessions(now) {
                        prop_assert!(x.expires_in_ms > 0, "{x:?} outlived its timeout");
                    }
                    if let Some(next) = s.poll_timeout() {
                        prop_assert!(next > now);
                    }
                }
            }
            let st = s.stats();
            let total: u32 = st.sessions.iter().sum();
            prop_assert_eq!(total, s.session_count());
            prop_assert!(total <= 40);
            prop_assert_eq!(s.sessions(now).len(), total as usize);
            for i in 0..3 {
                prop_assert_eq!(st.ports_used[i], u64::from(st.bib_entries[i]));
                prop_assert!(st.bib_entries[i] <= st.sessions[i]);
            }
            let mut per_source = std::collections::HashMap::new();
            for x in s.sessions(now) {
                *per_source.entry(x.v6.addr).or_insert(0u32) += 1;
            }
            prop_assert!(per_source.values().all(|&n| n <= 12));
        }
        // Everything goes eventually, and the pool is whole again.
        s.handle_timeout(now + 3 * 3600 * SEC);
        s.handle_timeout(now + 6 * 3600 * SEC);
        prop_assert_eq!(s.session_count(), 0);
        prop_assert_eq!(s.stats().ports_used, [0, 0, 0]);
        prop_assert_eq!(s.poll_timeout(), None);
    }
}
