//! The server's wire work, sans-IO: reading a client's query without a full
//! decode, and finishing a stored response for one client (ID, question case,
//! TTLs that have run down, EDNS, truncation).
//!
//! A response is encoded once (with hickory-proto) into a [`Stored`] answer
//! that the cache keeps; each client then gets a copy patched in place, so a
//! cache hit costs a parse of the question, a lookup and a copy.

use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::synth::{Answer, QueryFlags};

const HEADER_LEN: usize = 12;
const TYPE_OPT: u16 = 41;
/// RFC 8914 Extended DNS Error option code.
const EDNS_EDE: u16 = 15;
/// RFC 8914 registry: INFO-CODE 29 "Synthesized".
const EDE_SYNTHESIZED: u16 = 29;
/// RFC 6891 §6.1.3: BADVERS, an extended RCODE (16): 1 in the OPT's upper bits.
const BADVERS_HIGH: u8 = 1;

/// The EDNS(0) part of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub payload: u16,
    pub dnssec_ok: bool,
    pub version: u8,
}

/// A client's query, read far enough to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInfo {
    pub id: u16,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    pub authentic_data: bool,
    /// The question name in wire form, as the client wrote it (its case).
    pub qname: Vec<u8>,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
}

/// Why a query gets no normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Not answered at all: too short to carry an ID, or a response.
    Drop(DropReason),
    /// Answered with this response (FORMERR, NOTIMP, BADVERS).
    Respond(Vec<u8>, ResponseCode),
}

/// Why a message was dropped without an answer; `as_str` is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Short,
    Response,
    Overload,
    TcpLimit,
}

impl DropReason {
    pub const ALL: [DropReason; 4] = [Self::Short, Self::Response, Self::Overload, Self::TcpLimit];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::Response => "response_bit",
            Self::Overload => "overload",
            Self::TcpLimit => "tcp_limit",
        }
    }
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

/// Skips a (possibly compressed) name; returns the offset after it.
fn skip_name(buf: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *buf.get(at)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(at + 1),
            0x00 => at += 1 + usize::from(len),
            0xc0 => return Some(at + 2).filter(|&end| end <= buf.len()),
            _ => return None,
        }
    }
}

/// An uncompressed question name: its end, or `None` when malformed.
fn question_name_end(buf: &[u8], mut at: usize) -> Option<usize> {
    let start = at;
    loop {
        let len = usize::from(*buf.get(at)?);
        if len == 0 {
            return Some(at + 1).filter(|end| end - start <= 255);
        }
        if len > 63 {
            return None; // compression in a question, or a bad label type
        }
        at += 1 + len;
    }
}

fn error_header(buf: &[u8], rcode: ResponseCode) -> Vec<u8> {
    // ID, then QR=1, opcode and RD copied, RA=1.
    let mut out = vec![0u8; HEADER_LEN];
    out[..2].copy_from_slice(&buf[..2]);
    out[2] = 0x80 | (buf[2] & 0x79);
    out[3] = 0x80 | (rcode.low() & 0x0f);
    out
}

/// Reads a query. Only what the server needs is decoded: the question and
/// the OPT record. RFC 1035 §4.1.1 header, RFC 6891 OPT.
pub fn parse_query(buf: &[u8]) -> Result<QueryInfo, Reject> {
    if buf.len() < HEADER_LEN {
        return Err(Reject::Drop(DropReason::Short));
    }
    if buf[2] & 0x80 != 0 {
        return Err(Reject::Drop(DropReason::Response));
    }
    let formerr = || {
        Reject::Respond(
            error_header(buf, ResponseCode::FormErr),
            ResponseCode::FormErr,
        )
    };
    let opcode = (buf[2] >> 3) & 0x0f;
    if opcode != 0 {
        return Err(Reject::Respond(
            error_header(buf, ResponseCode::NotImp),
            ResponseCode::NotImp,
        ));
    }
    let counts = |i: usize| u16_at(buf, 4 + 2 * i).unwrap_or(0);
    let (qd, an, ns, ar) = (counts(0), counts(1), counts(2), counts(3));
    if qd != 1 || an != 0 || ns != 0 {
        return Err(formerr());
    }
    let name_end = question_name_end(buf, HEADER_LEN).ok_or_else(formerr)?;
    let qtype = u16_at(buf, name_end).ok_or_else(formerr)?;
    let qclass = u16_at(buf, name_end + 2).ok_or_else(formerr)?;
    let mut at = name_end + 4;
    let mut edns = None;
    for _ in 0..ar {
        let name_at = at;
        at = skip_name(buf, at).ok_or_else(formerr)?;
        let rtype = u16_at(buf, at).ok_or_else(formerr)?;
        let class = u16_at(buf, at + 2).ok_or_else(formerr)?;
        let ttl_hi = u16_at(buf, at + 4).ok_or_else(formerr)?;
        let flags = u16_at(buf, at + 6).ok_or_else(formerr)?;
        let rdlen = usize::from(u16_at(buf, at + 8).ok_or_else(formerr)?);
        at += 10 + rdlen;
        if at > buf.len() {
            return Err(formerr());
        }
        if rtype == TYPE_OPT {
            // RFC 6891 §6.1.1: one OPT, owned by the root; more is FORMERR.
            if edns.is_some() || buf[name_at] != 0 {
                return Err(formerr());
            }
            let [_, version] = ttl_hi.to_be_bytes();
            edns = Some(Edns {
                payload: class.max(512),
                dnssec_ok: flags & 0x8000 != 0,
                version,
            });
        }
    }
    let info = QueryInfo {
        id: u16::from_be_bytes([buf[0], buf[1]]),
        recursion_desired: buf[2] & 0x01 != 0,
        checking_disabled: buf[3] & 0x10 != 0,
        authentic_data: buf[3] & 0x20 != 0,
        qname: buf[HEADER_LEN..name_end].to_vec(),
        qtype,
        qclass,
        edns,
    };
    if let Some(e) = edns.filter(|e| e.version != 0) {
        // RFC 6891 §6.1.3: answer BADVERS with our version (0).
        let _ = e;
        let mut out = error_header(buf, ResponseCode::NoError);
        out[5] = 1; // the question is kept
        out.extend_from_slice(&buf[HEADER_LEN..name_end + 4]);
        out[11] = 1;
        push_opt(&mut out, 1232, false, BADVERS_HIGH, false);
        return Err(Reject::Respond(out, ResponseCode::BADVERS));
    }
    Ok(info)
}

impl QueryInfo {
    pub fn flags(&self) -> QueryFlags {
        QueryFlags {
            dnssec_ok: self.edns.is_some_and(|e| e.dnssec_ok),
            checking_disabled: self.checking_disabled,
        }
    }

    /// The question name, decoded.
    pub fn name(&self) -> Option<Name> {
        Name::read(&mut BinDecoder::new(&self.qname)).ok()
    }

    /// The cache key: the name in lower case, type, class, the flags that
    /// change the answer, and the prefix chosen for the client.
    pub fn cache_key(&self, prefix_index: u8) -> Box<[u8]> {
        let mut key = Vec::with_capacity(self.qname.len() + 6);
        key.extend(self.qname.iter().map(u8::to_ascii_lowercase));
        key.extend_from_slice(&self.qtype.to_be_bytes());
        key.extend_from_slice(&self.qclass.to_be_bytes());
        let flags = self.flags();
        key.push(u8::from(flags.dnssec_ok) | (u8::from(flags.checking_disabled) << 1));
        key.push(prefix_index);
        key.into_boxed_slice()
    }

    /// The largest response this client takes over UDP (RFC 6891 §6.2.5).
    pub fn udp_limit(&self, our_payload: u16) -> usize {
        match self.edns {
            Some(e) => usize::from(e.payload.min(our_payload).max(512)),
            None => 512,
        }
    }
}

/// A response encoded once, to be finished for each client.
#[derive(Debug)]
pub struct Stored {
    /// The full response with ID 0 and no OPT record.
    pub wire: Box<[u8]>,
    /// Offset and original value of every TTL in `wire`.
    ttls: Box<[(u16, u32)]>,
    pub rcode: ResponseCode,
    pub synthesized: bool,
    /// When the answer was made and how long it may be given out.
    pub born: Instant,
    pub ttl: Option<u32>,
}

impl Stored {
    /// Encodes `answer` to `question`. `ttl` is how long it may be cached.
    pub fn encode(
        question: &Query,
        answer: &Answer,
        ttl: Option<u32>,
        now: Instant,
    ) -> Option<Self> {
        let mut msg = Message::new(0, MessageType::Response, OpCode::Query);
        msg.metadata.recursion_available = true;
        msg.metadata.authentic_data = answer.authentic_data && !answer.synthesized;
        msg.metadata.response_code = answer.rcode;
        msg.add_query(question.clone());
        msg.answers.clone_from(&answer.answers);
        msg.authorities.clone_from(&answer.authorities);
        msg.additionals = answer
            .additionals
            .iter()
            .filter(|r| r.record_type() != RecordType::OPT)
            .cloned()
            .collect();
        let wire = msg.to_vec().ok()?;
        let ttls = ttl_offsets(&wire)?;
        Some(Self {
            wire: wire.into_boxed_slice(),
            ttls: ttls.into_boxed_slice(),
            rcode: answer.rcode,
            synthesized: answer.synthesized,
            born: now,
            ttl,
        })
    }

    /// Bytes of memory this answer holds, for the cache's budget.
    pub fn cost(&self) -> usize {
        self.wire.len() + self.ttls.len() * 8 + std::mem::size_of::<Self>()
    }

    pub fn expires(&self) -> Option<Instant> {
        self.ttl
            .map(|t| self.born + Duration::from_secs(u64::from(t)))
    }

    /// The response for `query`: its ID, flags and question case, TTLs
    /// lowered by the time spent in the cache (or set to `ttl_override`,
    /// for stale answers), an OPT when the query had one, and truncated to
    /// `limit` bytes with TC=1 when larger.
    pub fn finish(
        &self,
        query: &QueryInfo,
        now: Instant,
        ttl_override: Option<u32>,
        limit: usize,
        our_payload: u16,
    ) -> Vec<u8> {
        let elapsed =
            u32::try_from(now.saturating_duration_since(self.born).as_secs()).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(self.wire.len() + 24);
        out.extend_from_slice(&self.wire);
        out[..2].copy_from_slice(&query.id.to_be_bytes());
        out[2] = 0x80 | u8::from(query.recursion_desired);
        let ad_wanted = query.authentic_data || query.flags().dnssec_ok;
        out[3] = (out[3] & (0x80 | 0x0f | if ad_wanted { 0x20 } else { 0 }))
            | if query.checking_disabled { 0x10 } else { 0 };
        let qname_end = HEADER_LEN + query.qname.len();
        // The stored question is the same name (the cache key is the name in
        // lower case); give the client back its own spelling (RFC 1035 §7.3, 0x20).
        if out
            .get(HEADER_LEN..qname_end)
            .is_some_and(|stored| stored.eq_ignore_ascii_case(&query.qname))
        {
            out[HEADER_LEN..qname_end].copy_from_slice(&query.qname);
        }
        for &(offset, ttl) in self.ttls.iter() {
            let at = usize::from(offset);
            let value = ttl_override.unwrap_or_else(|| ttl.saturating_sub(elapsed));
            out[at..at + 4].copy_from_slice(&value.to_be_bytes());
        }
        let opt_len = if query.edns.is_some() {
            11 + if self.synthesized { 6 } else { 0 }
        } else {
            0
        };
        if out.len() + opt_len > limit {
            // RFC 2181 §9 / RFC 6891 §7: the header and question only, TC=1.
            out.truncate(qname_end + 4);
            out[2] |= 0x02;
            out[6..12].fill(0);
        }
        if let Some(e) = query.edns {
            let arcount = u16_at(&out, 10).unwrap_or(0).saturating_add(1);
            out[10..12].copy_from_slice(&arcount.to_be_bytes());
            push_opt(&mut out, our_payload, e.dnssec_ok, 0, self.synthesized);
        }
        out
    }
}

/// Appends an OPT record: our payload size, DO echoed, and the RFC 8914
/// "Synthesized" Extended DNS Error when asked.
fn push_opt(out: &mut Vec<u8>, payload: u16, dnssec_ok: bool, rcode_high: u8, synthesized: bool) {
    out.push(0); // root
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&payload.to_be_bytes());
    out.extend_from_slice(&[rcode_high, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
    if synthesized {
        out.extend_from_slice(&6u16.to_be_bytes());
        out.extend_from_slice(&EDNS_EDE.to_be_bytes());
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&EDE_SYNTHESIZED.to_be_bytes());
    } else {
        out.extend_from_slice(&0u16.to_be_bytes());
    }
}

/// Offsets of the TTL fields of every record (OPT excluded) of a response.
fn ttl_offsets(wire: &[u8]) -> Option<Vec<(u16, u32)>> {
    let count = |i: usize| usize::from(u16_at(wire, 4 + 2 * i).unwrap_or(0));
    let mut at = HEADER_LEN;
    for _ in 0..count(0) {
        at = skip_name(wire, at)? + 4;
    }
    let records = count(1) + count(2) + count(3);
    let mut out = Vec::with_capacity(records);
    for _ in 0..records {
        at = skip_name(wire, at)?;
        let rtype = u16_at(wire, at)?;
        let ttl_at = at + 4;
        let ttl = u32::from_be_bytes(wire.get(ttl_at..ttl_at + 4)?.try_into().ok()?);
        let rdlen = usize::from(u16_at(wire, at + 8)?);
        if rtype != TYPE_OPT {
            out.push((u16::try_from(ttl_at).ok()?, ttl));
        }
        at += 10 + rdlen;
    }
    (at <= wire.len()).then_some(out)
}

/// The question of a parsed query, as hickory-proto's type.
pub fn question(query: &QueryInfo) -> Option<Query> {
    let mut q = Query::query(query.name()?, RecordType::from(query.qtype));
    q.set_query_class(DNSClass::from(query.qclass));
    Some(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::{RData, Record};

    fn query_bytes(name: &str, qtype: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some((payload, dnssec_ok)) = edns {
            let mut e = hickory_proto::op::Edns::new();
            e.set_max_payload(payload);
            e.set_dnssec_ok(dnssec_ok);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn answer(n: usize) -> Answer {
        let mut a = Answer::error(ResponseCode::NoError);
        a.answers.push(Record::from_rdata(
            Name::from_ascii("www.test.").unwrap(),
            300,
            RData::CNAME(CNAME(Name::from_ascii("v4.test.").unwrap())),
        ));
        for i in 0..n {
            a.answers.push(Record::from_rdata(
                Name::from_ascii("v4.test.").unwrap(),
                100,
                RData::A(A(std::net::Ipv4Addr::new(
                    198,
                    51,
                    100,
                    u8::try_from(i % 250).unwrap(),
                ))),
            ));
        }
        a
    }

    #[test]
    fn parses_a_query_with_edns() {
        let q = parse_query(&query_bytes(
            "WwW.Test.",
            RecordType::AAAA,
            Some((4096, true)),
        ))
        .unwrap();
        assert_eq!(q.id, 0x1234);
        assert!(q.recursion_desired);
        assert_eq!(q.qtype, 28);
        assert_eq!(
            q.edns,
            Some(Edns {
                payload: 4096,
                dnssec_ok: true,
                version: 0
            })
        );
        assert_eq!(q.name().unwrap(), Name::from_ascii("www.test.").unwrap());
        assert_eq!(
            q.cache_key(0),
            parse_query(&query_bytes(
                "www.test.",
                RecordType::AAAA,
                Some((512, true))
            ))
            .unwrap()
            .cache_key(0)
        );
    }

    #[test]
    fn malformed_queries_get_formerr_or_are_dropped() {
        assert_eq!(parse_query(&[0; 5]), Err(Reject::Drop(DropReason::Short)));
        let mut response = query_bytes("a.test.", RecordType::A, None);
        response[2] |= 0x80;
        assert_eq!(
            parse_query(&response),
            Err(Reject::Drop(DropReason::Response))
        );
        let mut two_questions = query_bytes("a.test.", RecordType::A, None);
        two_questions[5] = 2;
        assert!(matches!(
            parse_query(&two_questions),
            Err(Reject::Respond(_, ResponseCode::FormErr))
        ));
        let good = query_bytes("a.test.", RecordType::A, None);
        for cut in HEADER_LEN..good.len() {
            assert!(matches!(
                parse_query(&good[..cut]),
                Err(Reject::Respond(_, ResponseCode::FormErr))
            ));
        }
        // Two OPT records.
        let mut two_opt = query_bytes("a.test.", RecordType::A, Some((1232, false)));
        let opt = two_opt[two_opt.len() - 11..].to_vec();
        two_opt.extend_from_slice(&opt);
        two_opt[11] = 2;
        let Err(Reject::Respond(bytes, ResponseCode::FormErr)) = parse_query(&two_opt) else {
            panic!()
        };
        let decoded = Message::from_vec(&bytes).unwrap();
        assert_eq!(decoded.metadata.id, 0x1234);
        assert_eq!(decoded.metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn other_opcodes_get_notimp_and_edns_version_1_gets_badvers() {
        let mut notify = query_bytes("a.test.", RecordType::SOA, None);
        notify[2] |= 4 << 3;
        assert!(matches!(
            parse_query(&notify),
            Err(Reject::Respond(_, ResponseCode::NotImp))
        ));
        let mut v1 = query_bytes("a.test.", RecordType::A, Some((1232, false)));
        let len = v1.len();
        v1[len - 5] = 1; // version
        let Err(Reject::Respond(bytes, _)) = parse_query(&v1) else {
            panic!()
        };
        let decoded = Message::from_vec(&bytes).unwrap();
        // 16 is BADVERS in an OPT context (hickory names it BADSIG).
        assert_eq!(u16::from(decoded.metadata.response_code), 16, "{decoded:?}");
    }

    #[test]
    fn finish_sets_id_case_ttls_and_edns() {
        let q = parse_query(&query_bytes(
            "wWw.TeSt.",
            RecordType::A,
            Some((1232, false)),
        ))
        .unwrap();
        let t0 = Instant::now();
        let mut a = answer(2);
        a.synthesized = true;
        let stored = Stored::encode(&question(&q).unwrap(), &a, Some(100), t0).unwrap();
        let bytes = stored.finish(&q, t0 + Duration::from_secs(30), None, 1232, 1232);
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.metadata.id, 0x1234);
        assert!(m.metadata.recursion_desired && m.metadata.recursion_available);
        assert!(m.queries[0]
            .name
            .eq_case(&Name::from_ascii("wWw.TeSt.").unwrap()));
        assert_eq!(
            m.answers.iter().map(|r| r.ttl).collect::<Vec<_>>(),
            vec![270, 70, 70]
        );
        let edns = m.edns.unwrap();
        assert_eq!(edns.max_payload(), 1232);
        let ede = edns
            .option(hickory_proto::rr::rdata::opt::EdnsCode::Unknown(15))
            .expect("EDE present");
        assert_eq!(
            ede,
            &hickory_proto::rr::rdata::opt::EdnsOption::Unknown(15, vec![0, 29])
        );
        // Stale: TTLs forced down.
        let m = Message::from_vec(&stored.finish(
            &q,
            t0 + Duration::from_secs(1000),
            Some(30),
            1232,
            1232,
        ))
        .unwrap();
        assert!(m.answers.iter().all(|r| r.ttl == 30));
    }

    #[test]
    fn large_answers_are_truncated_for_udp() {
        let q = parse_query(&query_bytes("www.test.", RecordType::A, None)).unwrap();
        let t0 = Instant::now();
        let stored = Stored::encode(&question(&q).unwrap(), &answer(60), Some(100), t0).unwrap();
        let udp = stored.finish(&q, t0, None, q.udp_limit(1232), 1232);
        assert!(udp.len() <= 512);
        let m = Message::from_vec(&udp).unwrap();
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty());
        assert_eq!(m.queries.len(), 1);
        let tcp = stored.finish(&q, t0, None, 65535, 1232);
        let m = Message::from_vec(&tcp).unwrap();
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 61);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse_query(&buf);
            let _ = ttl_offsets(&buf);
        }

        #[test]
        fn mutated_queries_never_panic_and_stay_answerable(
            flips in proptest::collection::vec((0usize..64, proptest::prelude::any::<u8>()), 0..6),
            cut in 0usize..80,
        ) {
            let mut buf = query_bytes("www.sixgate.test.", RecordType::AAAA, Some((1232, true)));
            for (at, byte) in flips {
                if let Some(b) = buf.get_mut(at) {
                    *b = byte;
                }
            }
            buf.truncate(buf.len().saturating_sub(cut));
            if let Ok(q) = parse_query(&buf) {
                // Whatever parsed can be answered without panicking.
                if let Some(question) = question(&q) {
                    let now = Instant::now();
                    if let Some(stored) = Stored::encode(&question, &answer(3), Some(60), now) {
                        let out = stored.finish(&q, now, None, q.udp_limit(1232), 1232);
                        proptest::prop_assert!(out.len() >= HEADER_LEN);
                    }
                }
            }
        }
    }
}
