//! RFC 6147 DNS64 synthesis as a pure function of (question, upstream answers, policy).
//!
//! Nothing here touches a socket or the clock. The server asks [`plan`] what a
//! question needs, sends the upstream queries it names (the AAAA and the A
//! query at the same time), and hands the answers to [`synthesize`] or
//! [`ptr_alias`], which say what the client gets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use sixgate_xlat::Prefix64;

use crate::net::Prefix;

/// Which AAAA records a client gets for a name that has real ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AaaaMode {
    /// RFC 6147 §5.1.1: real AAAA records are returned when they exist.
    #[default]
    PreferNative,
    /// Names outside the exempt zones that have an A record always get
    /// synthesized addresses; names without an A record keep their AAAA.
    SynthesizeAll,
}

/// The synthesis policy (the parts of the config the core needs).
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: AaaaMode,
    /// RFC 6147 §5.1.4: AAAA records in these ranges are treated as absent.
    pub exclude: Vec<Prefix>,
    /// Only these IPv4 addresses are synthesized (empty: all), like BIND's `mapped`.
    pub mapped: Vec<Prefix>,
    /// Names at or under these zones are forwarded untouched.
    pub exempt: Vec<Name>,
    /// TTL of the locally answered `ipv4only.arpa` records.
    pub ipv4only_ttl: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            mode: AaaaMode::PreferNative,
            exclude: vec![Prefix::of(
                IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0)),
                96,
            )],
            mapped: Vec::new(),
            exempt: Vec::new(),
            ipv4only_ttl: IPV4ONLY_TTL,
        }
    }
}

/// RFC 6147 §5.1.7: the TTL cap when the negative AAAA answer had no SOA.
pub const NO_SOA_TTL: u32 = 600;

/// TTL of the `ipv4only.arpa` answers (RFC 8880 §7.2 lets the resolver choose).
pub const IPV4ONLY_TTL: u32 = 3600;

/// RFC 7050 §2.2 / RFC 8880: the well-known IPv4-only addresses.
pub const IPV4ONLY_ADDRS: [Ipv4Addr; 2] =
    [Ipv4Addr::new(192, 0, 0, 170), Ipv4Addr::new(192, 0, 0, 171)];

/// What the server must do for a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Not DNS64 business: forward the question and return the answer as is.
    Forward,
    /// Answer locally, without asking anybody (`ipv4only.arpa`).
    Local(Answer),
    /// Send the AAAA query and the A query (in parallel), then [`synthesize`].
    Dns64,
    /// RFC 6147 §5.3.1: a PTR question for an address under the prefix. Ask
    /// for the PTR of `target` (an `in-addr.arpa` name), then [`ptr_alias`].
    PtrAlias { target: Name },
}

/// The flags of the client's query that change what DNS64 does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryFlags {
    /// EDNS DO bit.
    pub dnssec_ok: bool,
    /// Header CD bit.
    pub checking_disabled: bool,
}

/// The answer sections and codes the client gets (the server adds the
/// header, the question and EDNS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// The upstream's AD bit; never set on a synthesized answer (RFC 6147 §5.5).
    pub authentic_data: bool,
    /// Whether at least one record was made by DNS64 (synthesized AAAA, PTR alias,
    /// `ipv4only.arpa`): the server adds an Extended DNS Error "Synthesized".
    pub synthesized: bool,
}

impl Answer {
    /// An empty answer with `rcode`.
    pub fn error(rcode: ResponseCode) -> Self {
        Self {
            rcode,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            authentic_data: false,
            synthesized: false,
        }
    }

    /// The upstream's answer passed through (the OPT record is not part of it).
    pub fn from_upstream(msg: &Message) -> Self {
        Self {
            rcode: msg.metadata.response_code,
            answers: msg.answers.clone(),
            authorities: msg.authorities.clone(),
            additionals: msg.additionals.clone(),
            authentic_data: msg.metadata.authentic_data,
            synthesized: false,
        }
    }

    /// What the upstream said, or SERVFAIL when it did not answer.
    pub fn from_result(result: &Upstream) -> Self {
        match result {
            Upstream::Answer(msg) => Self::from_upstream(msg),
            Upstream::Failed => Self::error(ResponseCode::ServFail),
        }
    }
}

/// The outcome of one upstream query.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// A response that matched the question.
    Answer(Message),
    /// No usable response: timeouts, garbage, every forwarder failed.
    /// RFC 6147 §5.1.2 treats it like SERVFAIL.
    Failed,
}

impl Upstream {
    fn rcode(&self) -> ResponseCode {
        match self {
            Upstream::Answer(m) => m.metadata.response_code,
            Upstream::Failed => ResponseCode::ServFail,
        }
    }
}

fn ipv4only_name() -> Name {
    Name::from_ascii("ipv4only.arpa.").expect("a valid constant name")
}

/// Decides what a question needs.
///
/// - RFC 7050 / RFC 8880 §7.2: `ipv4only.arpa` A and AAAA are answered locally.
/// - RFC 6147 §5.5: with DO=1 and CD=1 the client validates itself: no synthesis.
/// - Exempt zones (for example `cluster.local`) are never touched.
/// - RFC 6147 §5.3.1: PTR under the prefix becomes a CNAME to `in-addr.arpa`.
pub fn plan(
    qname: &Name,
    qtype: RecordType,
    qclass: DNSClass,
    flags: QueryFlags,
    policy: &Policy,
    prefix: &Prefix64,
) -> Plan {
    if qclass != DNSClass::IN {
        return Plan::Forward;
    }
    let ipv4only = ipv4only_name();
    if ipv4only.zone_of(qname) {
        return Plan::Local(ipv4only_answer(qname, qtype, policy, prefix));
    }
    match qtype {
        RecordType::AAAA => {
            let validating_client = flags.dnssec_ok && flags.checking_disabled;
            if validating_client || policy.exempt.iter().any(|zone| zone.zone_of(qname)) {
                Plan::Forward
            } else {
                Plan::Dns64
            }
        }
        RecordType::PTR => match ptr_target(qname, prefix) {
            Some(target) => Plan::PtrAlias { target },
            None => Plan::Forward,
        },
        _ => Plan::Forward,
    }
}

fn ipv4only_answer(qname: &Name, qtype: RecordType, policy: &Policy, prefix: &Prefix64) -> Answer {
    let mut answer = Answer::error(ResponseCode::NoError);
    answer.synthesized = true;
    if qname.num_labels() != 2 {
        // RFC 8880 §7.2: only the apex has records.
        answer.rcode = ResponseCode::NXDomain;
        return answer;
    }
    let ttl = policy.ipv4only_ttl;
    for v4 in IPV4ONLY_ADDRS {
        let data = match qtype {
            // 192.0.0.170/171 are not global: embedded on purpose (RFC 7050 §3).
            RecordType::AAAA => RData::AAAA(AAAA(prefix.embed_unchecked(v4))),
            RecordType::A => RData::A(A(v4)),
            _ => continue,
        };
        answer
            .answers
            .push(Record::from_rdata(qname.clone(), ttl, data));
    }
    answer
}

/// RFC 6147 §5.3.1: the `in-addr.arpa` name for an `ip6.arpa` name whose
/// address lies under `prefix`, or `None`.
pub fn ptr_target(qname: &Name, prefix: &Prefix64) -> Option<Name> {
    let v6 = parse_ip6_arpa(qname)?;
    if !prefix.contains(v6) {
        return None;
    }
    let v4 = prefix.extract(v6)?;
    let [a, b, c, d] = v4.octets();
    Name::from_ascii(format!("{d}.{c}.{b}.{a}.in-addr.arpa.")).ok()
}

/// A full 32-nibble `ip6.arpa` name as an address.
fn parse_ip6_arpa(qname: &Name) -> Option<Ipv6Addr> {
    let labels: Vec<&[u8]> = qname.iter().collect();
    if labels.len() != 34
        || !labels[32].eq_ignore_ascii_case(b"ip6")
        || !labels[33].eq_ignore_ascii_case(b"arpa")
    {
        return None;
    }
    let mut value: u128 = 0;
    for label in labels[..32].iter().rev() {
        let [nibble] = label else { return None };
        let digit = char::from(*nibble).to_digit(16)?;
        value = (value << 4) | u128::from(digit);
    }
    Some(Ipv6Addr::from(value))
}

/// The answer to a PTR question under the prefix: a CNAME from the question
/// to `target`, followed by what the upstream said about `target`.
pub fn ptr_alias(qname: &Name, target: &Name, upstream: &Upstream) -> Answer {
    let mut answer = Answer::from_result(upstream);
    if matches!(upstream, Upstream::Failed) {
        return answer;
    }
    let ttl = answer
        .answers
        .iter()
        .map(|r| r.ttl)
        .chain(negative_ttl(&answer.authorities))
        .min()
        .unwrap_or(NO_SOA_TTL)
        .min(NO_SOA_TTL);
    let cname = Record::from_rdata(qname.clone(), ttl, RData::CNAME(CNAME(target.clone())));
    answer.answers.insert(0, cname);
    answer.authentic_data = false;
    answer.synthesized = true;
    answer
}

/// RFC 2308 §5: the negative-caching TTL of a response, from its SOA:
/// the minimum of the SOA's own TTL and its MINIMUM field.
pub fn negative_ttl(authorities: &[Record]) -> Option<u32> {
    authorities.iter().find_map(|r| match &r.data {
        RData::SOA(SOA { minimum, .. }) => Some(r.ttl.min(*minimum)),
        _ => None,
    })
}

/// Whether an IPv4 address may be synthesized under `prefix`:
/// the `mapped` ranges, and RFC 6052 §3.1 under `64:ff9b::/96`.
fn synthesizable(v4: Ipv4Addr, policy: &Policy, prefix: &Prefix64) -> Option<Ipv6Addr> {
    if !policy.mapped.is_empty() && !policy.mapped.iter().any(|n| n.contains(IpAddr::V4(v4))) {
        return None;
    }
    prefix.embed(v4).ok()
}

fn excluded(v6: Ipv6Addr, policy: &Policy) -> bool {
    policy.exclude.iter().any(|n| n.contains(IpAddr::V6(v6)))
}

/// RFC 6147 §5.1: the client's answer to an AAAA question, from the upstream
/// answers to the AAAA query and to the A query (both sent at once).
///
/// - §5.1.2, §5.1.3: an AAAA answer that is NXDOMAIN is returned as is. An
///   empty answer (NODATA), or an error other than NXDOMAIN (a timeout counts
///   as SERVFAIL), leads to synthesis from the A answer.
/// - §5.1.4: AAAA records inside the excluded ranges are treated as absent;
///   only those records are dropped.
/// - RFC 6052 §3.1 and the `mapped` option: A records outside `mapped` or, under
///   `64:ff9b::/96`, non-global addresses are not synthesized.
/// - §5.1.5: the CNAME/DNAME chain of the A answer is kept, each A record is
///   replaced by its AAAA. When the A query failed the client gets its error.
/// - §5.1.7: a synthesized record's TTL is the minimum of the A record's TTL
///   and the negative-caching TTL of the AAAA answer (its SOA), or of the A
///   TTL and 600 s when no SOA came back.
/// - §5.5: the AD bit is never set on a synthesized answer; RRSIGs of the A
///   answer are dropped, as they cannot sign the new records.
pub fn synthesize(aaaa: &Upstream, a: &Upstream, policy: &Policy, prefix: &Prefix64) -> Answer {
    let aaaa_rcode = aaaa.rcode();
    if aaaa_rcode == ResponseCode::NXDomain {
        let mut answer = Answer::from_result(aaaa);
        answer.answers.retain(|r| match &r.data {
            RData::AAAA(AAAA(v6)) => !excluded(*v6, policy),
            _ => true,
        });
        return answer;
    }
    // The NOERROR AAAA answer without the excluded records: `native` when a
    // real AAAA is left, `negative` (NODATA, maybe with its SOA) when not.
    let (mut native, negative) = match aaaa {
        Upstream::Answer(msg) if aaaa_rcode == ResponseCode::NoError => {
            let mut answer = Answer::from_upstream(msg);
            let before = answer.answers.len();
            answer.answers.retain(|r| match &r.data {
                RData::AAAA(AAAA(v6)) => !excluded(*v6, policy),
                _ => true,
            });
            if answer.answers.len() != before {
                // What is left can no longer carry a valid DNSSEC proof.
                answer.authentic_data = false;
            }
            if answer
                .answers
                .iter()
                .any(|r| r.record_type() == RecordType::AAAA)
            {
                (Some(answer), None)
            } else {
                (None, Some(answer))
            }
        }
        _ => (None, None),
    };
    if policy.mode == AaaaMode::PreferNative {
        if let Some(answer) = native.take() {
            return answer;
        }
    }

    let a_msg = match a {
        Upstream::Answer(msg) if msg.metadata.response_code == ResponseCode::NoError => msg,
        // The A lookup failed. synthesize-all with nothing to synthesize from
        // keeps the real AAAA; otherwise the client gets the A lookup's error.
        _ => return native.unwrap_or_else(|| Answer::error(a.rcode()).with_upstream_sections(a)),
    };
    let has_a = a_msg
        .answers
        .iter()
        .any(|r| r.record_type() == RecordType::A);
    if !has_a {
        // No A record: a name with real AAAA keeps them; otherwise NODATA.
        return native
            .or(negative)
            .unwrap_or_else(|| Answer::from_upstream(a_msg));
    }

    let cap = negative
        .as_ref()
        .and_then(|answer| negative_ttl(&answer.authorities))
        .unwrap_or(NO_SOA_TTL);
    let mut out = Answer::error(ResponseCode::NoError);
    for record in &a_msg.answers {
        match &record.data {
            RData::A(A(v4)) => {
                if let Some(v6) = synthesizable(*v4, policy, prefix) {
                    let ttl = record.ttl.min(cap);
                    out.answers.push(Record::from_rdata(
                        record.name.clone(),
                        ttl,
                        RData::AAAA(AAAA(v6)),
                    ));
                    out.synthesized = true;
                }
            }
            _ if record.record_type() == RecordType::RRSIG => {}
            _ => out.answers.push(record.clone()),
        }
    }
    if !out.synthesized {
        // Every A record was outside `mapped` or non-global under the WKP.
        if let Some(answer) = native {
            return answer;
        }
        if let Some(answer) = negative {
            out.authorities = answer.authorities;
        }
    }
    out
}

impl Answer {
    /// Keeps the upstream's authority section (its SOA) on an error answer.
    fn with_upstream_sections(mut self, upstream: &Upstream) -> Self {
        if let Upstream::Answer(msg) = upstream {
            // The chain (CNAME, DNAME) without the A records themselves.
            self.answers = msg
                .answers
                .iter()
                .filter(|r| r.record_type() != RecordType::A)
                .cloned()
                .collect();
            self.authorities = msg.authorities.clone();
        }
        self
    }
}

#[cfg(test)]
mod tests;
