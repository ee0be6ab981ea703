//! The forwarder client: UDP with TCP fallback on TC, a timeout per try,
//! failover through the forwarder list, random query IDs, a fresh socket
//! (a kernel-chosen ephemeral port) per query, and answers checked against
//! the question (RFC 5452 §9.1: ID, source address and question must match).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

use crate::metrics::{Metrics, UpstreamError};
use crate::synth::{QueryFlags, Upstream};

/// Our EDNS payload size towards forwarders (the DNS flag day 2020 value).
const UPSTREAM_PAYLOAD: u16 = 1232;

pub struct Forwarders {
    pub addrs: Vec<SocketAddr>,
    pub timeout: Duration,
    pub attempts: u32,
    pub metrics: Arc<Metrics>,
}

fn random_id() -> u16 {
    // A failure of the OS RNG leaves the time-derived fallback; never panics.
    getrandom::u32().map_or_else(
        |_| u16::try_from(Instant::now().elapsed().subsec_nanos() & 0xffff).unwrap_or(0),
        |v| u16::try_from(v & 0xffff).unwrap_or(0),
    )
}

impl Forwarders {
    /// Asks the forwarders `qname qtype qclass`; the first usable answer wins.
    /// SERVFAIL/REFUSED/NOTIMP/FORMERR and failures move to the next
    /// forwarder; after every try the last SERVFAIL is returned, or
    /// [`Upstream::Failed`].
    pub async fn query(
        &self,
        qname: &Name,
        qtype: RecordType,
        qclass: DNSClass,
        flags: QueryFlags,
    ) -> Upstream {
        let mut last_servfail = None;
        for _ in 0..self.attempts {
            for &addr in &self.addrs {
                let id = random_id();
                let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
                msg.metadata.recursion_desired = true;
                msg.metadata.checking_disabled = flags.checking_disabled;
                let mut q = Query::query(qname.clone(), qtype);
                q.set_query_class(qclass);
                msg.add_query(q.clone());
                let mut edns = Edns::new();
                edns.set_max_payload(UPSTREAM_PAYLOAD);
                edns.set_dnssec_ok(flags.dnssec_ok);
                msg.set_edns(edns);
                let Ok(bytes) = msg.to_vec() else {
                    return Upstream::Failed;
                };
                let started = Instant::now();
                match self.exchange(addr, &bytes, id, &q).await {
                    Ok(answer) => {
                        self.metrics.upstream_latency(started.elapsed());
                        match answer.metadata.response_code {
                            ResponseCode::ServFail => {
                                self.metrics.upstream_error(UpstreamError::ErrorRcode);
                                last_servfail = Some(answer);
                            }
                            ResponseCode::Refused
                            | ResponseCode::NotImp
                            | ResponseCode::FormErr => {
                                self.metrics.upstream_error(UpstreamError::ErrorRcode);
                            }
                            _ => return Upstream::Answer(answer),
                        }
                    }
                    Err(reason) => {
                        tracing::trace!("forwarder {addr}: {}", reason.as_str());
                        self.metrics.upstream_error(reason);
                    }
                }
            }
        }
        last_servfail.map_or(Upstream::Failed, Upstream::Answer)
    }

    async fn exchange(
        &self,
        addr: SocketAddr,
        bytes: &[u8],
        id: u16,
        q: &Query,
    ) -> Result<Message, UpstreamError> {
        self.metrics.upstream_queries.inc();
        let answer = tokio::time::timeout(
            self.timeout,
            udp_exchange(addr, bytes, id, q, &self.metrics),
        )
        .await
        .map_err(|_| UpstreamError::Timeout)??;
        if !answer.metadata.truncation {
            return Ok(answer);
        }
        // RFC 7766 §5: a truncated UDP answer is asked again over TCP.
        self.metrics.upstream_tcp_fallbacks.inc();
        self.metrics.upstream_queries.inc();
        tokio::time::timeout(self.timeout, tcp_exchange(addr, bytes, id, q))
            .await
            .map_err(|_| UpstreamError::Timeout)?
    }
}

/// Whether `answer` answers our query `id` for `q`.
fn matches(answer: &Message, id: u16, q: &Query) -> bool {
    answer.metadata.id == id
        && answer.metadata.message_type == MessageType::Response
        && answer.metadata.op_code == OpCode::Query
        && answer.queries.len() == 1
        && answer.queries[0].name == q.name
        && answer.queries[0].query_type == q.query_type
        && answer.queries[0].query_class == q.query_class
}

async fn udp_exchange(
    addr: SocketAddr,
    bytes: &[u8],
    id: u16,
    q: &Query,
    metrics: &Metrics,
) -> Result<Message, UpstreamError> {
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|_| UpstreamError::Network)?;
    // Connected: the kernel drops datagrams from any other source, and an
    // ICMP port unreachable ends the wait at once.
    socket
        .connect(addr)
        .await
        .map_err(|_| UpstreamError::Network)?;
    socket
        .send(bytes)
        .await
        .map_err(|_| UpstreamError::Network)?;
    // Room for the largest datagram, not zeroed: `recv_buf` fills the spare capacity.
    let mut buf = Vec::with_capacity(65_535);
    loop {
        buf.clear();
        let n = socket
            .recv_buf(&mut buf)
            .await
            .map_err(|_| UpstreamError::Network)?;
        // A reply that does not match is ignored (spoofing attempts, late
        // answers); the timeout ends the wait.
        if let Ok(answer) = Message::from_vec(&buf[..n]) {
            if matches(&answer, id, q) {
                return Ok(answer);
            }
        }
        metrics.upstream_error(UpstreamError::BadAnswer);
    }
}

async fn tcp_exchange(
    addr: SocketAddr,
    bytes: &[u8],
    id: u16,
    q: &Query,
) -> Result<Message, UpstreamError> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|_| UpstreamError::Tcp)?;
    let len = u16::try_from(bytes.len()).map_err(|_| UpstreamError::Tcp)?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream
        .write_all(&framed)
        .await
        .map_err(|_| UpstreamError::Tcp)?;
    let len = stream.read_u16().await.map_err(|_| UpstreamError::Tcp)?;
    let mut buf = vec![0u8; usize::from(len)];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|_| UpstreamError::Tcp)?;
    let answer = Message::from_vec(&buf).map_err(|_| UpstreamError::BadAnswer)?;
    if matches(&answer, id, q) {
        Ok(answer)
    } else {
        Err(UpstreamError::BadAnswer)
    }
}
