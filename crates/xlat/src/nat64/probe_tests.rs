//! RFC 6146 §3.5.2.2: the probe of an ESTABLISHED session whose TCP_EST ran
//! out, on a virtual clock, with etherparse (a crate we did not write) as the
//! oracle for the probe's headers and checksum.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

use super::*;
use crate::siit::SiitConfig;

const SEC: u64 = 1000;
const MIN: u64 = 60 * SEC;
/// TCP_EST and TCP_TRANS by default.
const EST: u64 = 124 * MIN;
const TRANS: u64 = 4 * MIN;

const PREFIX: &str = "64:ff9b:1::/96";
const C6: &str = "2001:db8:6::10";
const S4: &str = "198.51.100.7";
const S4_V6: &str = "64:ff9b:1::c633:6407";
const POOL: &str = "192.0.2.1";

fn a4(s: &str) -> [u8; 4] {
    s.parse::<Ipv4Addr>().unwrap().octets()
}

fn a6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

fn setup() -> (Translator, State) {
    let config = Config {
        pool4: Pool4::new(&[POOL.parse().unwrap()]).unwrap(),
        timeouts: Timeouts::default(),
        limits: Limits::default(),
        filtering: Filtering::default(),
        static_bib: Vec::new(),
    };
    (
        Translator::new(PREFIX.parse().unwrap(), SiitConfig::default()),
        State::new(config, SplitMix64::new(7)).unwrap(),
    )
}

fn tcp6(
    sport: u16,
    dport: u16,
    build: impl FnOnce(
        etherparse::PacketBuilderStep<etherparse::TcpHeader>,
    ) -> etherparse::PacketBuilderStep<etherparse::TcpHeader>,
) -> Vec<u8> {
    let mut v = Vec::new();
    build(PacketBuilder::ipv6(a6(C6), a6(S4_V6), 64).tcp(sport, dport, 1000, 65000))
        .write(&mut v, &[])
        .unwrap();
    v
}

fn tcp4(
    sport: u16,
    dport: u16,
    build: impl FnOnce(
        etherparse::PacketBuilderStep<etherparse::TcpHeader>,
    ) -> etherparse::PacketBuilderStep<etherparse::TcpHeader>,
) -> Vec<u8> {
    let mut v = Vec::new();
    build(PacketBuilder::ipv4(a4(S4), a4(POOL), 64).tcp(sport, dport, 5000, 65000))
        .write(&mut v, &[])
        .unwrap();
    v
}

fn state_of(st: &State) -> Option<TcpState> {
    let sessions = st.sessions(0);
    assert!(sessions.len() <= 1);
    sessions.first().and_then(|s| s.tcp_state)
}

/// C6 port 50000 → S4 port 80, opened through the translator at `now`:
/// returns the pool4 port.
fn open(x: &Translator, st: &mut State, now: u64) -> u16 {
    let mut out = Packets::new();
    let mut syn = tcp6(50000, 80, |b| b.syn());
    assert_eq!(x.translate(st, now, &mut syn, &mut out), Verdict::SixToFour);
    let q = out.get(0).unwrap().to_vec();
    let s = SlicedPacket::from_ip(&q).unwrap();
    let Some(TransportSlice::Tcp(t)) = &s.transport else {
        panic!("not TCP")
    };
    let t = t.source_port();
    let mut synack = tcp4(80, t, |b| b.syn().ack(1001));
    assert_eq!(
        x.translate(st, now, &mut synack, &mut out),
        Verdict::FourToSix
    );
    let mut ack = tcp6(50000, 80, |b| b.ack(5001));
    assert_eq!(x.translate(st, now, &mut ack, &mut out), Verdict::SixToFour);
    assert_eq!(state_of(st), Some(TcpState::Established));
    t
}

fn probes(st: &mut State) -> Vec<TcpProbe> {
    let mut v = Vec::new();
    st.take_probes(&mut v);
    v
}

#[test]
fn an_idle_established_session_is_probed_at_tcp_est_and_moves_to_trans() {
    let (x, mut st) = setup();
    open(&x, &mut st, 0);
    assert_eq!(st.handle_timeout(EST - 1), 0);
    assert!(probes(&mut st).is_empty(), "no probe before TCP_EST");
    assert_eq!(st.handle_timeout(EST), 0, "the session is kept");
    assert_eq!(state_of(&st), Some(TcpState::Trans));
    assert_eq!(st.poll_timeout(), Some(EST + TRANS));
    let queued = probes(&mut st);
    assert_eq!(
        queued,
        vec![TcpProbe {
            v6: Taddr6::new(C6.parse().unwrap(), 50000),
            remote: Taddr4::new(S4.parse().unwrap(), 80),
        }]
    );
    assert!(probes(&mut st).is_empty(), "taken once");
    assert_eq!(st.stats().tcp_probes_queued, 1);

    // The packet: toward the IPv6 endpoint, from the IPv4 peer as the IPv6
    // side knows it, as if it came through the NAT64.
    let p = x.tcp_probe(&queued[0]);
    let s = SlicedPacket::from_ip(&p).expect("etherparse parses the probe");
    let Some(NetSlice::Ipv6(ip)) = &s.net else {
        panic!("not IPv6")
    };
    let h = ip.header();
    assert_eq!(h.source(), a6(S4_V6));
    assert_eq!(h.destination(), a6(C6));
    assert_eq!(h.hop_limit(), 64);
    assert_eq!(usize::from(h.payload_length()) + 40, p.len());
    assert!(ip.extensions().is_empty());
    let Some(TransportSlice::Tcp(t)) = &s.transport else {
        panic!("not TCP")
    };
    assert_eq!((t.source_port(), t.destination_port()), (80, 50000));
    // RFC 6146 §3.5.2.2: no data, sequence and acknowledgment numbers
    // zero, all flags but ACK zero.
    assert!(t.payload().is_empty());
    assert_eq!(t.sequence_number(), 0);
    assert_eq!(t.acknowledgment_number(), 0);
    assert!(t.ack());
    assert!(!(t.syn() || t.fin() || t.rst() || t.psh() || t.urg() || t.ece() || t.cwr()));
    assert!(!t.ns());
    assert_eq!(t.header_len(), 20, "no options");
    assert_eq!(t.urgent_pointer(), 0);
    assert_eq!(
        t.calc_checksum_ipv6(h.source(), h.destination()).unwrap(),
        t.checksum(),
        "TCP checksum"
    );
}

#[test]
fn an_ack_answering_the_probe_brings_the_session_back_to_established() {
    let (x, mut st) = setup();
    open(&x, &mut st, 0);
    st.handle_timeout(EST);
    assert_eq!(probes(&mut st).len(), 1);
    // The client's TCP answers the out-of-window probe with an ACK of its
    // current numbers; it goes through to the server.
    let mut out = Packets::new();
    let mut ack = tcp6(50000, 80, |b| b.ack(5001));
    assert_eq!(
        x.translate(&mut st, EST + SEC, &mut ack, &mut out),
        Verdict::SixToFour
    );
    assert_eq!(out.len(), 1);
    assert_eq!(state_of(&st), Some(TcpState::Established));
    assert_eq!(st.poll_timeout(), Some(EST + SEC + EST));
    // Silence again: another probe one TCP_EST later.
    assert_eq!(st.handle_timeout(EST + SEC + EST), 0);
    assert_eq!(probes(&mut st).len(), 1);
    assert_eq!(state_of(&st), Some(TcpState::Trans));
}

#[test]
fn a_server_packet_after_the_probe_also_revives_the_session() {
    let (x, mut st) = setup();
    let t = open(&x, &mut st, 0);
    st.handle_timeout(EST);
    let mut out = Packets::new();
    let mut ack = tcp4(80, t, |b| b.ack(1001));
    assert_eq!(
        x.translate(&mut st, EST + SEC, &mut ack, &mut out),
        Verdict::FourToSix
    );
    assert_eq!(state_of(&st), Some(TcpState::Established));
}

#[test]
fn an_rst_answering_the_probe_leaves_trans_to_run_out() {
    let (x, mut st) = setup();
    open(&x, &mut st, 0);
    st.handle_timeout(EST);
    // A client that forgot the connection answers with an RST: it is
    // translated (the server learns it too) and the session stays in TRANS.
    let mut out = Packets::new();
    let mut rst = tcp6(50000, 80, |b| b.rst());
    assert_eq!(
        x.translate(&mut st, EST + SEC, &mut rst, &mut out),
        Verdict::SixToFour
    );
    assert_eq!(state_of(&st), Some(TcpState::Trans));
    assert_eq!(st.handle_timeout(EST + TRANS), 1);
    assert_eq!(st.session_count(), 0);
}

#[test]
fn silence_after_the_probe_expires_the_session_after_tcp_trans() {
    let (x, mut st) = setup();
    open(&x, &mut st, 0);
    st.handle_timeout(EST);
    assert_eq!(probes(&mut st).len(), 1);
    assert_eq!(st.handle_timeout(EST + TRANS - 1), 0);
    assert_eq!(state_of(&st), Some(TcpState::Trans));
    assert_eq!(st.handle_timeout(EST + TRANS), 1);
    assert_eq!(st.session_count(), 0);
    assert!(probes(&mut st).is_empty(), "TRANS ends without a probe");
    assert_eq!(st.stats().sessions_expired[Proto::Tcp.index()], 1);
    assert_eq!(st.stats().tcp_probes_queued, 1);
}

#[test]
fn only_established_sessions_are_probed() {
    let (x, mut st) = setup();
    let mut out = Packets::new();
    // V6 INIT (a SYN without answer) and a UDP session: they just expire.
    let mut syn = tcp6(50001, 80, |b| b.syn());
    x.translate(&mut st, 0, &mut syn, &mut out);
    let mut udp = Vec::new();
    PacketBuilder::ipv6(a6(C6), a6(S4_V6), 64)
        .udp(50002, 53)
        .write(&mut udp, b"q")
        .unwrap();
    x.translate(&mut st, 0, &mut udp, &mut out);
    assert_eq!(st.handle_timeout(5 * MIN), 2);
    assert!(probes(&mut st).is_empty());

    // Half closed (the client sent its FIN): TRANS at TCP_EST, no probe.
    let (x, mut st) = setup();
    open(&x, &mut st, 0);
    let mut fin = tcp6(50000, 80, |b| b.fin().ack(5001));
    x.translate(&mut st, 0, &mut fin, &mut out);
    assert_eq!(state_of(&st), Some(TcpState::V6FinRcv));
    assert_eq!(st.handle_timeout(EST), 0);
    assert_eq!(state_of(&st), Some(TcpState::Trans));
    assert!(probes(&mut st).is_empty());
    assert_eq!(st.stats().tcp_probes_queued, 0);
}

/// `n` ESTABLISHED sessions of one BIB entry (one client port, `n` server
/// ports), through the state alone.
fn established(st: &mut State, n: u16) {
    let client = Taddr6::new(C6.parse().unwrap(), 50000);
    for port in 1..=n {
        let server = Taddr4::new(S4.parse().unwrap(), port);
        let m = st
            .outbound(0, Proto::Tcp, client, server, TcpFlags::SYN)
            .unwrap();
        st.inbound(0, Proto::Tcp, server, m.v4, TcpFlags::SYN)
            .unwrap();
    }
    assert_eq!(st.session_count(), u32::from(n));
}

#[test]
fn probes_are_bounded_and_the_rest_still_move_to_trans() {
    let (_, mut st) = setup();
    let extra = 10;
    let n = u16::try_from(MAX_PENDING_PROBES).unwrap() + extra;
    established(&mut st, n);
    assert_eq!(st.handle_timeout(EST), 0);
    let queued = probes(&mut st);
    assert_eq!(queued.len(), MAX_PENDING_PROBES);
    let stats = st.stats();
    assert_eq!(stats.tcp_probes_queued, MAX_PENDING_PROBES as u64);
    assert_eq!(stats.tcp_probes_skipped, u64::from(extra));
    assert!(st
        .sessions(EST)
        .iter()
        .all(|s| s.tcp_state == Some(TcpState::Trans)));
    // Each probe names a distinct session.
    let mut ports: Vec<u16> = queued.iter().map(|p| p.remote.port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), MAX_PENDING_PROBES);
    assert_eq!(st.handle_timeout(EST + TRANS), u64::from(n));
}

#[test]
fn a_bounded_expiry_round_queues_no_more_probes_than_its_budget() {
    let (_, mut st) = setup();
    established(&mut st, 250);
    let mut total = 0;
    loop {
        let (deleted, more) = st.handle_timeout_at_most(EST, 100);
        assert_eq!(deleted, 0);
        let round = probes(&mut st).len();
        assert!(round <= 100, "{round} probes in a round of 100");
        total += round;
        if !more {
            break;
        }
    }
    assert_eq!(total, 250);
}

#[test]
fn a_connection_opened_from_ipv4_is_probed_at_its_ipv6_server() {
    let (x, _) = setup();
    let server6 = Taddr6::new("2001:db8:6::80".parse().unwrap(), 8080);
    let public = Taddr4::new(POOL.parse().unwrap(), 80);
    let config = Config {
        pool4: Pool4::new(&[POOL.parse().unwrap()]).unwrap(),
        timeouts: Timeouts::default(),
        limits: Limits::default(),
        filtering: Filtering::default(),
        static_bib: vec![StaticBib {
            proto: Proto::Tcp,
            v6: server6,
            v4: public,
        }],
    };
    let mut st = State::new(config, SplitMix64::new(3)).unwrap();
    let client4 = Taddr4::new(S4.parse().unwrap(), 40000);
    st.inbound(0, Proto::Tcp, client4, public, TcpFlags::SYN)
        .unwrap();
    st.outbound(0, Proto::Tcp, server6, client4, TcpFlags::SYN)
        .unwrap();
    assert_eq!(state_of(&st), Some(TcpState::Established));
    st.handle_timeout(EST);
    let queued = probes(&mut st);
    assert_eq!(
        queued,
        vec![TcpProbe {
            v6: server6,
            remote: client4
        }]
    );
    let p = x.tcp_probe(&queued[0]);
    let s = SlicedPacket::from_ip(&p).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &s.net else {
        panic!("not IPv6")
    };
    assert_eq!(ip.header().source(), a6(S4_V6));
    assert_eq!(ip.header().destination(), a6("2001:db8:6::80"));
    let Some(TransportSlice::Tcp(t)) = &s.transport else {
        panic!("not TCP")
    };
    assert_eq!((t.source_port(), t.destination_port()), (40000, 8080));
    assert_eq!(
        t.calc_checksum_ipv6(ip.header().source(), ip.header().destination())
            .unwrap(),
        t.checksum()
    );
}
