use std::str::FromStr;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use proptest::prelude::*;
use sixgate_xlat::prefix64::WELL_KNOWN;

use super::*;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn nsp() -> Prefix64 {
    Prefix64::from_str("2001:db8:64::/96").unwrap()
}

fn msg(
    qname: &str,
    qtype: RecordType,
    rcode: ResponseCode,
    answers: Vec<Record>,
    soa: Option<(u32, u32)>,
) -> Upstream {
    let mut m = Message::new(1, MessageType::Response, OpCode::Query);
    m.metadata.response_code = rcode;
    m.add_query(Query::query(name(qname), qtype));
    m.answers = answers;
    if let Some((ttl, minimum)) = soa {
        let soa = SOA::new(
            name("ns.test."),
            name("admin.test."),
            1,
            3600,
            600,
            86400,
            minimum,
        );
        m.authorities
            .push(Record::from_rdata(name("test."), ttl, RData::SOA(soa)));
    }
    Upstream::Answer(m)
}

fn a(owner: &str, ttl: u32, v4: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::A(A(v4.parse().unwrap())))
}

fn aaaa(owner: &str, ttl: u32, v6: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::AAAA(AAAA(v6.parse().unwrap())))
}

fn cname(owner: &str, ttl: u32, target: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::CNAME(CNAME(name(target))))
}

fn nodata(qname: &str, qtype: RecordType) -> Upstream {
    msg(
        qname,
        qtype,
        ResponseCode::NoError,
        vec![],
        Some((3600, 300)),
    )
}

fn addrs(answer: &Answer) -> Vec<Ipv6Addr> {
    answer
        .answers
        .iter()
        .filter_map(|r| match r.data {
            RData::AAAA(AAAA(v6)) => Some(v6),
            _ => None,
        })
        .collect()
}

fn policy() -> Policy {
    Policy::default()
}

#[test]
fn nodata_aaaa_is_synthesized_from_a() {
    let out = synthesize(
        &nodata("v4.test.", RecordType::AAAA),
        &msg(
            "v4.test.",
            RecordType::A,
            ResponseCode::NoError,
            vec![a("v4.test.", 100, "198.51.100.7")],
            None,
        ),
        &policy(),
        &nsp(),
    );
    assert_eq!(out.rcode, ResponseCode::NoError);
    assert_eq!(
        addrs(&out),
        vec!["2001:db8:64::c633:6407".parse::<Ipv6Addr>().unwrap()]
    );
    assert!(out.synthesized);
    assert!(!out.authentic_data);
}

#[test]
fn rfc6052_well_known_prefix_embeds_as_section_2_4() {
    let out = synthesize(
        &nodata("v4.test.", RecordType::AAAA),
        &msg(
            "v4.test.",
            RecordType::A,
            ResponseCode::NoError,
            vec![a("v4.test.", 100, "192.0.2.33")],
            None,
        ),
        &policy(),
        &Prefix64::from_str("2001:db8:122:344::/64").unwrap(),
    );
    // RFC 6052 §2.4 table, /64 row.
    assert_eq!(
        addrs(&out),
        vec!["2001:db8:122:344:c0:2:2100:0".parse::<Ipv6Addr>().unwrap()]
    );
}

#[test]
fn native_aaaa_is_returned_unchanged_with_prefer_native() {
    let out = synthesize(
        &msg(
            "dual.test.",
            RecordType::AAAA,
            ResponseCode::NoError,
            vec![aaaa("dual.test.", 50, "2001:db8::1")],
            None,
        ),
        &msg(
            "dual.test.",
            RecordType::A,
            ResponseCode::NoError,
            vec![a("dual.test.", 50, "198.51.100.1")],
            None,
        ),
        &policy(),
        &nsp(),
    );
    assert_eq!(
        addrs(&out),
        vec!["2001:db8::1".parse::<Ipv6Addr>().unwrap()]
    );
    assert!(!out.synthesized);
}

#[test]
fn synthesize_all_replaces_native_aaaa_when_an_a_record_exists() {
    let p = Policy {
        mode: AaaaMode::SynthesizeAll,
        ..policy()
    };
    let out = synthesize(
        &msg(
            "dual.test.",
            RecordType::AAAA,
            ResponseCode::NoError,
            vec![aaaa("dual.test.", 50, "2001:db8::1")],
            None,
        ),
        &msg(
            "dual.test.",
            RecordType::A,
            ResponseCode::NoError,
            vec![a("dual.test.", 50, "198.51.100.1")],
            None,
        ),
        &p,
        &nsp(),
    );
    assert_eq!(
        addrs(&out),
        vec!["2001:db8:64::c633:6401".parse::<Ipv6Addr>().unwrap()]
    );
    assert!(out.synthesized);
}

#[test]
fn synthesize_all_keeps_native_aaaa_of_names_without_a() {
    let p = Policy {
        mode: AaaaMode::SynthesizeAll,
        ..policy()
    };
    let native = msg(
        "v6.test.",
        RecordType::AAAA,
        ResponseCode::NoError,
        vec![aaaa("v6.test.", 50, "2001:db8::6")],
        None,
    );
    for a_side in [nodata("v6.test.", RecordType::A), Upstream::Failed] {
        let out = synthesize(&native, &a_side, &p, &nsp());
        assert_eq!(
            addrs(&out),
            vec!["2001:db8::6".parse::<Ipv6Addr>().unwrap()]
        );
        assert!(!out.synthesized);
    }
}

#[test]
fn exempt_zones_are_forwarded_untouched() {
    let p = Policy {
        mode: AaaaMode::SynthesizeAll,
        exempt: vec![name("cluster.local.")],
        ..policy()
    };
    let flags = QueryFlags::default();
    assert_eq!(
        plan(
            &name("svc.NS.Cluster.Local."),
            RecordType::AAAA,
            DNSClass::IN,
            flags,
            &p,
            &nsp()
        ),
        Plan::Forward
    );
    assert_eq!(
        plan(
            &name("cluster.local."),
            RecordType::AAAA,
            DNSClass::IN,
            flags,
            &p,
            &nsp()
        ),
        Plan::Forward
    );
    assert_eq!(
        plan(
            &name("notcluster.local."),
            RecordType::AAAA,
            DNSClass::IN,
            flags,
            &p,
            &nsp()
        ),
        Plan::Dns64
    );
}

#[test]
fn nxdomain_stays_nxdomain_whatever_the_a_answer() {
    let out = synthesize(
        &msg(
            "gone.test.",
            RecordType::AAAA,
            ResponseCode::NXDomain,
            vec![],
            Some((60, 60)),
        ),
        &msg(
            "gone.test.",
            RecordType::A,
            ResponseCode::NoError,
            vec![a("gone.test.", 100, "198.51.100.7")],
            None,
        ),
        &policy(),
        &nsp(),
    );
    assert_eq!(out.rcode, ResponseCode::NXDomain);
    assert!(out.answers.is_empty());
    assert_eq!(
        out.authorities.len(),
        1,
        "the SOA is kept for negative caching"
    );
    assert!(!out.synthesized);
}

#[test]
fn servfail_or_timeout_on_aaaa_still_synthesizes() {
    let a_side = msg(
        "v4.test.",
        RecordType::A,
        ResponseCode::NoError,
        vec![a("v4.test.", 100, "198.51.100.7")],
        None,
    );
    for aaaa_side in [
        Upstream::Failed,
        msg(
            "v4.test.",
            RecordType::AAAA,
            ResponseCode::ServFail,
            vec![],
            None,
        ),
        msg(
            "v4.test.",
            RecordType::AAAA,
            ResponseCode::Refused,
            vec![],
            None,
        ),
    ] {
        let out = synthesize(&aaaa_side, &a_side, &policy(), &nsp());
        assert_eq!(out.rcode, ResponseCode::NoError);
        assert_eq!(addrs(&out).len(), 1);
        // No SOA came back: the TTL is capped at 600 s.
        assert_eq!(out.answers[0].ttl, 100);
    }
}

#[test]
fn failed_a_lookup_gives_its_error_code() {
    let cases = [
        (Upstream::Failed, ResponseCode::ServFail),
        (
            msg(
                "x.test.",
                RecordType::A,
                ResponseCode::ServFail,
                vec![],
                None,
            ),
            ResponseCode::ServFail,
        ),
        (
            msg(
                "x.test.",
                RecordType::A,
                ResponseCode::NXDomain,
                vec![],
                Some((60, 60)),
            ),
            ResponseCode::NXDomain,
        ),
    ];
    for (a_side, want) in cases {
        let out = synthesize(
            &nodata("x.test.", RecordType::AAAA),
            &a_side,
            &policy(),
            &nsp(),
        );
        assert_eq!(out.rcode, want);
        assert!(addrs(&out).is_empty());
    }
}

#[test]
fn no_a_record_gives_nodata_with_the_soa() {
    let out = synthesize(
        &nodata("none.test.", RecordType::AAAA),
        &nodata("none.test.", RecordType::A),
        &policy(),
        &nsp(),
    );
    assert_eq!(out.rcode, ResponseCode::NoError);
    assert!(out.answers.is_empty());
    assert_eq!(negative_ttl(&out.authorities), Some(300));
    assert!(!out.synthesized);
}

#[test]
fn mapped_ipv4_aaaa_is_excluded_and_synthesized_instead() {
    let out = synthesize(
        &msg(
            "mapped.test.",
            RecordType::AAAA,
            ResponseCode::NoError,
            vec![aaaa("mapped.test.", 50, "::ffff:198.51.100.9")],
            None,
        ),
        &msg(
            "mapped.test.",
            RecordType::A,
            ResponseCode::NoError,
            vec![a("mapped.test.", 50, "198.51.100.9")],
            None,
        ),
        &policy(),
        &nsp(),
    );
    assert_eq!(
        addrs(&out),
        vec!["2001:db8:64::c633:6409".parse::<Ipv6Addr>().unwrap()]
    );
}

#[test]
fn only_excluded_records_are_dropped() {
    let out = synthesize(
        &msg(
            "mix.test.",
            RecordType::AAAA,
            ResponseCode::NoError,
            vec![
                aaaa("mix.test.", 50, "::ffff:198.51.100.9"),
                aaaa("mix.test.", 50, "2001:db8::9"),
            ],
            None,
        ),
        &msg(
            "mix.test.",
            RecordType::A,
            ResponseCode::NoError,
            vec![a("mix.test.", 50, "198.51.100.9")],
            None,
        ),
        &policy(),
        &nsp(),
    );
    assert_eq!(
        addrs(&out),
        vec!["2001:db8::9".parse::<Ipv6Addr>().unwrap()]
    );
    assert!(!out.synthesized);
}

#[test]
fn configured_exclude_ranges_apply() {
    let p = Policy {
        exclude: vec!["2001:db8:bad::/48".parse().unwrap()],
        ..policy()
    };
    let out = synthesize(
        &msg(
            "ex.test.",
            RecordType::AAAA,
            ResponseCode::NoError,
            vec![aaaa("ex.test.", 50, "2001:db8:bad::1")],
            None,
        ),
        &msg(
            "ex.test.",
            RecordType::A,
            ResponseCode::NoError,
            vec![a("ex.test.", 50, "198.51.100.2")],
            None,
        ),
        &p,
        &nsp(),
    );
    assert_eq!(
        addrs(&out),
        vec!["2001:db8:64::c633:6402".parse::<Ipv6Addr>().unwrap()]
    );
}

#[test]
fn mapped_ranges_limit_what_is_synthesized() {
    let p = Policy {
        mapped: vec!["198.51.100.0/25".parse().unwrap()],
        ..policy()
    };
    let out = synthesize(
        &nodata("m.test.", RecordType::AAAA),
        &msg(
            "m.test.",
            RecordType::A,
            ResponseCode::NoError,
            vec![
                a("m.test.", 50, "198.51.100.2"),
                a("m.test.", 50, "198.51.100.200"),
            ],
            None,
        ),
        &p,
        &nsp(),
    );
    assert_eq!(
        addrs(&out),
        vec!["2001:db8:64::c633:6402".parse::<Ipv6Addr>().unwrap()]
    );
}

#[test]
fn well_known_prefix_never_carries_private_ipv4() {
    let a_side = msg(
        "priv.test.",
        RecordType::A,
        ResponseCode::NoError,
        vec![
            a("priv.test.", 50, "10.1.2.3"),
            a("priv.test.", 50, "192.168.1.1"),
            a("priv.test.", 50, "8.8.8.8"),
        ],
        None,
    );
    let out = synthesize(
        &nodata("priv.test.", RecordType::AAAA),
        &a_side,
        &policy(),
        &WELL_KNOWN,
    );
    assert_eq!(
        addrs(&out),
        vec!["64:ff9b::808:808".parse::<Ipv6Addr>().unwrap()]
    );
    // With only private addresses: NODATA, with the AAAA answer's SOA.
    let only_private = msg(
        "priv.test.",
        RecordType::A,
        ResponseCode::NoError,
        vec![a("priv.test.", 50, "10.1.2.3")],
        None,
    );
    let out = synthesize(
        &nodata("priv.test.", RecordType::AAAA),
        &only_private,
        &policy(),
        &WELL_KNOWN,
    );
    assert_eq!(out.rcode, ResponseCode::NoError);
    assert!(out.answers.is_empty());
    assert!(negative_ttl(&out.authorities).is_some());
    // A network-specific prefix carries them (RFC 6052 §3.1 is about the WKP only).
    let out = synthesize(
        &nodata("priv.test.", RecordType::AAAA),
        &only_private,
        &policy(),
        &nsp(),
    );
    assert_eq!(
        addrs(&out),
        vec!["2001:db8:64::a01:203".parse::<Ipv6Addr>().unwrap()]
    );
}

#[test]
fn cname_chain_into_a_only_name_is_kept() {
    let a_side = msg(
        "alias.test.",
        RecordType::A,
        ResponseCode::NoError,
        vec![
            cname("alias.test.", 300, "mid.test."),
            cname("mid.test.", 300, "v4.test."),
            a("v4.test.", 100, "198.51.100.7"),
        ],
        None,
    );
    let out = synthesize(
        &nodata("alias.test.", RecordType::AAAA),
        &a_side,
        &policy(),
        &nsp(),
    );
    assert_eq!(out.answers.len(), 3);
    assert_eq!(out.answers[0], cname("alias.test.", 300, "mid.test."));
    assert_eq!(out.answers[1], cname("mid.test.", 300, "v4.test."));
    assert_eq!(out.answers[2].name, name("v4.test."));
    assert_eq!(
        addrs(&out),
        vec!["2001:db8:64::c633:6407".parse::<Ipv6Addr>().unwrap()]
    );
}

#[test]
fn dname_chain_is_kept() {
    let dname = Record::from_rdata(
        name("old.test."),
        300,
        RData::Unknown {
            code: RecordType::DNAME,
            rdata: hickory_proto::rr::rdata::NULL::with(vec![
                3, b'n', b'e', b'w', 4, b't', b'e', b's', b't', 0,
            ]),
        },
    );
    let a_side = msg(
        "www.old.test.",
        RecordType::A,
        ResponseCode::NoError,
        vec![
            dname.clone(),
            cname("www.old.test.", 300, "www.new.test."),
            a("www.new.test.", 100, "198.51.100.7"),
        ],
        None,
    );
    let out = synthesize(
        &nodata("www.old.test.", RecordType::AAAA),
        &a_side,
        &policy(),
        &nsp(),
    );
    assert_eq!(out.answers[0], dname);
    assert_eq!(out.answers[1].record_type(), RecordType::CNAME);
    assert_eq!(
        addrs(&out),
        vec!["2001:db8:64::c633:6407".parse::<Ipv6Addr>().unwrap()]
    );
}

#[test]
fn ttl_is_min_of_a_ttl_and_soa_negative_ttl() {
    let a_side = msg(
        "t.test.",
        RecordType::A,
        ResponseCode::NoError,
        vec![a("t.test.", 1000, "198.51.100.7")],
        None,
    );
    // SOA TTL 3600, MINIMUM 300: negative TTL 300.
    let out = synthesize(
        &nodata("t.test.", RecordType::AAAA),
        &a_side,
        &policy(),
        &nsp(),
    );
    assert_eq!(out.answers[0].ttl, 300);
    // SOA TTL 120 below MINIMUM 300: RFC 2308 §5 takes 120.
    let aaaa_side = msg(
        "t.test.",
        RecordType::AAAA,
        ResponseCode::NoError,
        vec![],
        Some((120, 300)),
    );
    assert_eq!(
        synthesize(&aaaa_side, &a_side, &policy(), &nsp()).answers[0].ttl,
        120
    );
    // A TTL below both.
    let short = msg(
        "t.test.",
        RecordType::A,
        ResponseCode::NoError,
        vec![a("t.test.", 30, "198.51.100.7")],
        None,
    );
    assert_eq!(
        synthesize(
            &nodata("t.test.", RecordType::AAAA),
            &short,
            &policy(),
            &nsp()
        )
        .answers[0]
            .ttl,
        30
    );
    // No SOA: 600 s at most.
    let no_soa = msg(
        "t.test.",
        RecordType::AAAA,
        ResponseCode::NoError,
        vec![],
        None,
    );
    assert_eq!(
        synthesize(&no_soa, &a_side, &policy(), &nsp()).answers[0].ttl,
        600
    );
}

#[test]
fn dnssec_ok_with_checking_disabled_is_not_synthesized() {
    let flags = QueryFlags {
        dnssec_ok: true,
        checking_disabled: true,
    };
    assert_eq!(
        plan(
            &name("v4.test."),
            RecordType::AAAA,
            DNSClass::IN,
            flags,
            &policy(),
            &nsp()
        ),
        Plan::Forward
    );
    let flags = QueryFlags {
        dnssec_ok: true,
        checking_disabled: false,
    };
    assert_eq!(
        plan(
            &name("v4.test."),
            RecordType::AAAA,
            DNSClass::IN,
            flags,
            &policy(),
            &nsp()
        ),
        Plan::Dns64
    );
}

#[test]
fn synthesized_answers_never_carry_ad_or_rrsig() {
    let Upstream::Answer(mut a_msg) = msg(
        "v4.test.",
        RecordType::A,
        ResponseCode::NoError,
        vec![a("v4.test.", 100, "198.51.100.7")],
        None,
    ) else {
        unreachable!()
    };
    a_msg.metadata.authentic_data = true;
    let rrsig = Record::from_rdata(
        name("v4.test."),
        100,
        RData::Unknown {
            code: RecordType::RRSIG,
            rdata: hickory_proto::rr::rdata::NULL::with(vec![0; 20]),
        },
    );
    a_msg.answers.push(rrsig);
    let out = synthesize(
        &nodata("v4.test.", RecordType::AAAA),
        &Upstream::Answer(a_msg),
        &policy(),
        &nsp(),
    );
    assert!(!out.authentic_data);
    assert!(out
        .answers
        .iter()
        .all(|r| r.record_type() != RecordType::RRSIG));
}

#[test]
fn ipv4only_arpa_is_answered_locally_from_the_prefix() {
    let flags = QueryFlags::default();
    let Plan::Local(answer) = plan(
        &name("IPv4only.arpa."),
        RecordType::AAAA,
        DNSClass::IN,
        flags,
        &policy(),
        &nsp(),
    ) else {
        panic!("not local");
    };
    assert_eq!(
        addrs(&answer),
        vec![
            "2001:db8:64::c000:aa".parse::<Ipv6Addr>().unwrap(),
            "2001:db8:64::c000:ab".parse::<Ipv6Addr>().unwrap()
        ]
    );
    // Under the WKP too, though 192.0.0.170 is not global (RFC 7050 §3).
    let Plan::Local(answer) = plan(
        &name("ipv4only.arpa."),
        RecordType::AAAA,
        DNSClass::IN,
        flags,
        &policy(),
        &WELL_KNOWN,
    ) else {
        panic!("not local");
    };
    assert_eq!(
        addrs(&answer)[0],
        "64:ff9b::c000:aa".parse::<Ipv6Addr>().unwrap()
    );
    let Plan::Local(answer) = plan(
        &name("ipv4only.arpa."),
        RecordType::A,
        DNSClass::IN,
        flags,
        &policy(),
        &nsp(),
    ) else {
        panic!("not local");
    };
    assert_eq!(answer.answers.len(), 2);
    let Plan::Local(answer) = plan(
        &name("x.ipv4only.arpa."),
        RecordType::AAAA,
        DNSClass::IN,
        flags,
        &policy(),
        &nsp(),
    ) else {
        panic!("not local");
    };
    assert_eq!(answer.rcode, ResponseCode::NXDomain);
}

fn ip6_arpa(v6: Ipv6Addr) -> Name {
    let hex: String = format!("{:032x}", u128::from(v6));
    let labels: Vec<String> = hex.chars().rev().map(|c| c.to_string()).collect();
    name(&format!("{}.ip6.arpa.", labels.join(".")))
}

#[test]
fn ptr_under_the_prefix_is_a_cname_to_in_addr_arpa() {
    let q = ip6_arpa("2001:db8:64::c633:6407".parse().unwrap());
    let flags = QueryFlags::default();
    let Plan::PtrAlias { target } =
        plan(&q, RecordType::PTR, DNSClass::IN, flags, &policy(), &nsp())
    else {
        panic!("not an alias");
    };
    assert_eq!(target, name("7.100.51.198.in-addr.arpa."));
    let ptr = Record::from_rdata(
        target.clone(),
        200,
        RData::PTR(hickory_proto::rr::rdata::PTR(name("v4.test."))),
    );
    let out = ptr_alias(
        &q,
        &target,
        &msg(
            "7.100.51.198.in-addr.arpa.",
            RecordType::PTR,
            ResponseCode::NoError,
            vec![ptr.clone()],
            None,
        ),
    );
    assert_eq!(
        out.answers,
        vec![cname(&q.to_ascii(), 200, "7.100.51.198.in-addr.arpa."), ptr]
    );
    // Outside the prefix: forwarded.
    let other = ip6_arpa("2001:db8:99::1".parse().unwrap());
    assert_eq!(
        plan(
            &other,
            RecordType::PTR,
            DNSClass::IN,
            flags,
            &policy(),
            &nsp()
        ),
        Plan::Forward
    );
    // Not 32 nibbles: forwarded.
    assert_eq!(
        plan(
            &name("8.b.d.0.1.0.0.2.ip6.arpa."),
            RecordType::PTR,
            DNSClass::IN,
            flags,
            &policy(),
            &nsp()
        ),
        Plan::Forward
    );
    // Upstream failure: SERVFAIL.
    assert_eq!(
        ptr_alias(&q, &target, &Upstream::Failed).rcode,
        ResponseCode::ServFail
    );
}

#[test]
fn other_types_and_classes_are_forwarded() {
    let flags = QueryFlags::default();
    for t in [
        RecordType::A,
        RecordType::MX,
        RecordType::TXT,
        RecordType::ANY,
    ] {
        assert_eq!(
            plan(&name("v4.test."), t, DNSClass::IN, flags, &policy(), &nsp()),
            Plan::Forward
        );
    }
    assert_eq!(
        plan(
            &name("v4.test."),
            RecordType::AAAA,
            DNSClass::CH,
            flags,
            &policy(),
            &nsp()
        ),
        Plan::Forward
    );
}

fn arb_v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn arb_upstream(qtype: RecordType) -> impl Strategy<Value = Upstream> {
    let records = proptest::collection::vec((any::<u32>(), any::<u128>(), 0u32..100_000), 0..4);
    (
        0u8..4,
        records,
        proptest::option::of((0u32..100_000, 0u32..100_000)),
    )
        .prop_map(move |(rc, recs, soa)| {
            let rcode = match rc {
                0 => ResponseCode::NoError,
                1 => ResponseCode::NXDomain,
                2 => ResponseCode::ServFail,
                _ => return Upstream::Failed,
            };
            let answers = recs
                .into_iter()
                .map(|(v4, v6, ttl)| match qtype {
                    RecordType::A => a("p.test.", ttl, &Ipv4Addr::from(v4).to_string()),
                    // Some of them in ::ffff:0:0/96.
                    _ if v6 % 3 == 0 => aaaa(
                        "p.test.",
                        ttl,
                        &Ipv6Addr::from(0xffff_0000_0000 | (v6 & 0xffff_ffff)).to_string(),
                    ),
                    _ => aaaa("p.test.", ttl, &Ipv6Addr::from(v6).to_string()),
                })
                .collect();
            msg("p.test.", qtype, rcode, answers, soa)
        })
}

proptest! {
    #[test]
    fn every_synthesized_address_comes_from_an_allowed_a_record(
        aaaa_side in arb_upstream(RecordType::AAAA),
        a_side in arb_upstream(RecordType::A),
        all in any::<bool>(),
        wkp in any::<bool>(),
        mapped in proptest::option::of(arb_v4()),
    ) {
        let prefix = if wkp { WELL_KNOWN } else { nsp() };
        let p = Policy {
            mode: if all { AaaaMode::SynthesizeAll } else { AaaaMode::PreferNative },
            mapped: mapped.map(|m| vec![Prefix::of(std::net::IpAddr::V4(m), 8)]).unwrap_or_default(),
            ..policy()
        };
        let out = synthesize(&aaaa_side, &a_side, &p, &prefix);
        let a_records: Vec<(Ipv4Addr, u32)> = match &a_side {
            Upstream::Answer(m) => m.answers.iter().filter_map(|r| match r.data { RData::A(A(v4)) => Some((v4, r.ttl)), _ => None }).collect(),
            Upstream::Failed => vec![],
        };
        // NXDOMAIN on the AAAA side is never overridden.
        if aaaa_side.rcode() == ResponseCode::NXDomain {
            prop_assert_eq!(out.rcode, ResponseCode::NXDomain);
            prop_assert!(!out.synthesized);
        }
        for record in &out.answers {
            if let RData::AAAA(AAAA(v6)) = record.data {
                // Never an excluded address.
                prop_assert!(!excluded(v6, &p));
                if out.synthesized {
                    let v4 = prefix.extract(v6).expect("under the prefix");
                    let (_, a_ttl) = a_records.iter().find(|(x, _)| *x == v4).copied().expect("from an A record");
                    prop_assert!(record.ttl <= a_ttl && record.ttl <= 100_000);
                    if wkp { prop_assert!(sixgate_xlat::prefix64::is_global_v4(v4)); }
                    if let Some(net) = p.mapped.first() { prop_assert!(net.contains(std::net::IpAddr::V4(v4))); }
                }
            }
        }
        // prefer-native: a usable real AAAA wins.
        let has_native = match &aaaa_side {
            Upstream::Answer(m) if m.metadata.response_code == ResponseCode::NoError =>
                m.answers.iter().any(|r| matches!(r.data, RData::AAAA(AAAA(v6)) if !excluded(v6, &p))),
            _ => false,
        };
        if has_native && !all {
            prop_assert!(!out.synthesized);
            prop_assert!(!out.answers.is_empty());
        }
        if out.synthesized { prop_assert!(!out.authentic_data); prop_assert_eq!(out.rcode, ResponseCode::NoError); }
    }

    #[test]
    fn ptr_target_inverts_embedding(v4 in arb_v4(), len_idx in 0usize..6) {
        let len = sixgate_xlat::prefix64::ALLOWED_LENGTHS[len_idx];
        let prefix = Prefix64::new("2001:db8::".parse().unwrap(), len).unwrap();
        let v6 = prefix.embed_unchecked(v4);
        let target = ptr_target(&ip6_arpa(v6), &prefix).expect("under the prefix");
        let [a, b, c, d] = v4.octets();
        prop_assert_eq!(target, name(&format!("{d}.{c}.{b}.{a}.in-addr.arpa.")));
    }
}
