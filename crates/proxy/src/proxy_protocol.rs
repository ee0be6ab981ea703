//! The PROXY protocol (HAProxy, version 1 text and version 2 binary): decoding
//! a header that a trusted load balancer puts in front of a connection, and
//! encoding the version 2 header we send to backends.
//!
//! Spec: "The PROXY protocol, Versions 1 & 2" (haproxy.org, 2020/03/05).
//! §2.1: a v1 line is at most 107 bytes including the CRLF, `PROXY TCP4|TCP6|
//! UNKNOWN SRC DST SPORT DPORT\r\n`. §2.2: v2 starts with the 12-byte signature
//! `\r\n\r\n\0\r\nQUIT\n`, then version/command, family/protocol, a 16-bit
//! length of what follows, the addresses and then TLVs. §2.2.7: TLV type 0x02
//! (`PP2_TYPE_AUTHORITY`) carries the host name the client asked for (SNI).
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V2_HEADER: usize = 16;
/// §2.1: the longest v1 line, CRLF included.
const V1_MAX: usize = 107;
/// `PP2_TYPE_AUTHORITY`.
pub const TLV_AUTHORITY: u8 = 0x02;
/// Largest v2 header we accept; real ones are a few hundred bytes.
pub const V2_MAX_ACCEPTED: usize = 4096;
/// The longest authority we put in a TLV (a DNS name is at most 253).
pub const MAX_AUTHORITY: usize = 255;
/// The longest v2 header we emit: header, two IPv6 addresses and ports, one TLV.
pub const V2_MAX_EMITTED: usize = V2_HEADER + 36 + 3 + MAX_AUTHORITY;

/// Why a PROXY header was refused. `as_str` is also the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// The bytes start neither with `PROXY ` nor with the v2 signature.
    Missing,
    /// A field does not parse or lengths disagree.
    Malformed,
    /// Longer than the spec (v1) or our limit (v2) allows.
    TooLarge,
    /// A version or command this side does not know.
    Unsupported,
}

impl HeaderError {
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderError::Missing => "proxy_header_missing",
            HeaderError::Malformed => "proxy_header_malformed",
            HeaderError::TooLarge => "proxy_header_too_large",
            HeaderError::Unsupported => "proxy_header_unsupported",
        }
    }
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// Bytes the header takes at the start of the stream.
    pub len: usize,
    /// The original source and destination, when the header carries them
    /// (`None` for v1 `UNKNOWN`, v2 `LOCAL` and v2 unspecified/unix families).
    pub addresses: Option<(SocketAddr, SocketAddr)>,
    /// The v2 `PP2_TYPE_AUTHORITY` TLV, when present.
    pub authority: Option<&'a [u8]>,
}

/// What the bytes so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    NeedMore,
    Header(Header<'a>),
}

/// Decodes a v1 or v2 header at the start of `buf`.
///
/// # Errors
///
/// [`HeaderError`] when the bytes cannot become a valid header.
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, HeaderError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        if n < V2_SIGNATURE.len() {
            return Ok(Decoded::NeedMore);
        }
        return decode_v2(buf);
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        if n < 6 {
            return Ok(Decoded::NeedMore);
        }
        return decode_v1(buf);
    }
    Err(HeaderError::Missing)
}

/// §2.1, the human-readable header.
fn decode_v1(buf: &[u8]) -> Result<Decoded<'_>, HeaderError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        if buf.len() >= V1_MAX {
            return Err(HeaderError::TooLarge);
        }
        return Ok(Decoded::NeedMore);
    };
    match window.get(cr + 1) {
        None => return Ok(Decoded::NeedMore),
        Some(b'\n') => {}
        Some(_) => return Err(HeaderError::Malformed),
    }
    let line = std::str::from_utf8(&window[6..cr]).map_err(|_| HeaderError::Malformed)?;
    let len = cr + 2;
    let mut fields = line.split(' ');
    let family = fields.next().ok_or(HeaderError::Malformed)?;
    if family == "UNKNOWN" {
        // "the receiver must ignore anything presented before the CRLF".
        return Ok(Decoded::Header(Header {
            len,
            addresses: None,
            authority: None,
        }));
    }
    let mut next = || fields.next().ok_or(HeaderError::Malformed);
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(HeaderError::Malformed);
    }
    let (src, dst): (IpAddr, IpAddr) = match family {
        "TCP4" => (parse_v4(src)?.into(), parse_v4(dst)?.into()),
        "TCP6" => (
            src.parse::<Ipv6Addr>()
                .map_err(|_| HeaderError::Malformed)?
                .into(),
            dst.parse::<Ipv6Addr>()
                .map_err(|_| HeaderError::Malformed)?
                .into(),
        ),
        _ => return Err(HeaderError::Unsupported),
    };
    Ok(Decoded::Header(Header {
        len,
        addresses: Some((
            SocketAddr::new(src, parse_port(sport)?),
            SocketAddr::new(dst, parse_port(dport)?),
        )),
        authority: None,
    }))
}

fn parse_v4(s: &str) -> Result<Ipv4Addr, HeaderError> {
    s.parse().map_err(|_| HeaderError::Malformed)
}

/// §2.1: ports are decimal 0..65535 without leading zeroes.
fn parse_port(s: &str) -> Result<u16, HeaderError> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(HeaderError::Malformed);
    }
    s.parse().map_err(|_| HeaderError::Malformed)
}

/// §2.2, the binary header.
fn decode_v2(buf: &[u8]) -> Result<Decoded<'_>, HeaderError> {
    let Some(fixed) = buf.get(..V2_HEADER) else {
        return Ok(Decoded::NeedMore);
    };
    let (ver_cmd, fam, len) = (
        fixed[12],
        fixed[13],
        u16::from_be_bytes([fixed[14], fixed[15]]),
    );
    if ver_cmd >> 4 != 2 {
        return Err(HeaderError::Unsupported);
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(HeaderError::Unsupported),
    };
    let total = V2_HEADER + usize::from(len);
    if total > V2_MAX_ACCEPTED {
        return Err(HeaderError::TooLarge);
    }
    let Some(body) = buf.get(V2_HEADER..total) else {
        return Ok(Decoded::NeedMore);
    };
    let (addresses, tlvs) = match fam >> 4 {
        // AF_INET
        1 => {
            let (a, rest) = body.split_at_checked(12).ok_or(HeaderError::Malformed)?;
            let src = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            let dst = Ipv4Addr::new(a[4], a[5], a[6], a[7]);
            let ports = (
                u16::from_be_bytes([a[8], a[9]]),
                u16::from_be_bytes([a[10], a[11]]),
            );
            (
                Some((
                    SocketAddr::new(src.into(), ports.0),
                    SocketAddr::new(dst.into(), ports.1),
                )),
                rest,
            )
        }
        // AF_INET6
        2 => {
            let (a, rest) = body.split_at_checked(36).ok_or(HeaderError::Malformed)?;
            let mut src = [0; 16];
            let mut dst = [0; 16];
            src.copy_from_slice(&a[..16]);
            dst.copy_from_slice(&a[16..32]);
            let ports = (
                u16::from_be_bytes([a[32], a[33]]),
                u16::from_be_bytes([a[34], a[35]]),
            );
            (
                Some((
                    SocketAddr::new(Ipv6Addr::from(src).into(), ports.0),
                    SocketAddr::new(Ipv6Addr::from(dst).into(), ports.1),
                )),
                rest,
            )
        }
        // AF_UNSPEC
        0 => (None, &[][..]),
        // AF_UNIX: 216 bytes of addresses, which say nothing useful to us.
        3 => (None, body.get(216..).ok_or(HeaderError::Malformed)?),
        _ => return Err(HeaderError::Unsupported),
    };
    let mut authority = None;
    let mut rest = tlvs;
    while !rest.is_empty() {
        let (head, after) = rest.split_at_checked(3).ok_or(HeaderError::Malformed)?;
        let len = usize::from(u16::from_be_bytes([head[1], head[2]]));
        let (value, after) = after.split_at_checked(len).ok_or(HeaderError::Malformed)?;
        if head[0] == TLV_AUTHORITY {
            authority = Some(value);
        }
        rest = after;
    }
    Ok(Decoded::Header(Header {
        len: total,
        // §2.2: with LOCAL "the receiver must accept this connection as valid
        // and must use the real connection endpoints and discard the protocol
        // block including the family".
        addresses: if local { None } else { addresses },
        authority,
    }))
}

/// A v2 header built on the stack.
#[derive(Clone)]
pub struct V2Header {
    buf: [u8; V2_MAX_EMITTED],
    len: usize,
}

impl V2Header {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Debug for V2Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("V2Header").field(&self.as_bytes()).finish()
    }
}

/// Encodes a v2 `PROXY` header for a TCP connection from `src` to `dst`,
/// with `authority` (the SNI) as a `PP2_TYPE_AUTHORITY` TLV.
///
/// IPv4-mapped IPv6 addresses are sent as IPv4. The spec wants both
/// addresses in one family: when they differ, the IPv4 one is sent
/// IPv4-mapped in an IPv6 block. An authority longer than [`MAX_AUTHORITY`]
/// is left out.
pub fn encode_v2(src: SocketAddr, dst: SocketAddr, authority: Option<&[u8]>) -> V2Header {
    let mut out = V2Header {
        buf: [0; V2_MAX_EMITTED],
        len: V2_HEADER,
    };
    out.buf[..12].copy_from_slice(&V2_SIGNATURE);
    out.buf[12] = 0x21; // version 2, PROXY
    let (src_ip, dst_ip) = (unmap(src.ip()), unmap(dst.ip()));
    let push = |out: &mut V2Header, bytes: &[u8]| {
        out.buf[out.len..out.len + bytes.len()].copy_from_slice(bytes);
        out.len += bytes.len();
    };
    match (src_ip, dst_ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.buf[13] = 0x11; // AF_INET, STREAM
            push(&mut out, &s.octets());
            push(&mut out, &d.octets());
        }
        (s, d) => {
            out.buf[13] = 0x21; // AF_INET6, STREAM
            push(&mut out, &as_v6(s).octets());
            push(&mut out, &as_v6(d).octets());
        }
    }
    push(&mut out, &src.port().to_be_bytes());
    push(&mut out, &dst.port().to_be_bytes());
    if let Some(authority) = authority.filter(|a| !a.is_empty() && a.len() <= MAX_AUTHORITY) {
        push(&mut out, &[TLV_AUTHORITY]);
        // At most MAX_AUTHORITY (255) bytes: fits in u16.
        let tlv_len = u16::try_from(authority.len()).unwrap_or(0);
        push(&mut out, &tlv_len.to_be_bytes());
        push(&mut out, authority);
    }
    // At most V2_MAX_EMITTED (310) bytes in all: the body fits in u16.
    let body = u16::try_from(out.len - V2_HEADER).unwrap_or(0);
    out.buf[14..16].copy_from_slice(&body.to_be_bytes());
    out
}

/// The IPv4 address behind an IPv4-mapped IPv6 one, else the address itself.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn header(buf: &[u8]) -> Header<'_> {
        match decode(buf) {
            Ok(Decoded::Header(h)) => h,
            other => panic!("expected a header, got {other:?}"),
        }
    }

    #[test]
    fn v1_tcp4_and_tcp6_decode() {
        let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
        let h = header(line);
        assert_eq!(h.len, line.len() - 5);
        assert_eq!(
            h.addresses,
            Some((sa("192.0.2.1:56324"), sa("198.51.100.2:443")))
        );
        let line = b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n";
        assert_eq!(
            header(line).addresses,
            Some((sa("[2001:db8::1]:1"), sa("[2001:db8::2]:65535")))
        );
    }

    #[test]
    fn v1_unknown_has_no_addresses() {
        let h = header(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n");
        assert_eq!(h.addresses, None);
        assert_eq!(header(b"PROXY UNKNOWN\r\n").len, 15);
    }

    #[test]
    fn v1_prefixes_need_more_and_bad_lines_fail() {
        let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
        for cut in 0..line.len() {
            assert_eq!(decode(&line[..cut]), Ok(Decoded::NeedMore), "cut {cut}");
        }
        assert_eq!(
            decode(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"),
            Err(HeaderError::Malformed)
        );
        assert_eq!(
            decode(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"),
            Err(HeaderError::Malformed)
        );
        assert_eq!(
            decode(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"),
            Err(HeaderError::Malformed)
        );
        assert_eq!(
            decode(b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n"),
            Err(HeaderError::Malformed)
        );
        assert_eq!(
            decode(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
            Err(HeaderError::Malformed)
        );
        assert_eq!(
            decode(b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
            Err(HeaderError::Unsupported)
        );
        assert_eq!(decode(&[b'P'; 200][..]), Err(HeaderError::Missing));
        let mut long = b"PROXY TCP4 ".to_vec();
        long.resize(V1_MAX, b'1');
        assert_eq!(decode(&long), Err(HeaderError::TooLarge));
    }

    #[test]
    fn other_bytes_are_missing_header() {
        assert_eq!(decode(&[22, 3, 1]), Err(HeaderError::Missing));
        assert_eq!(decode(b"GET / HTTP/1.1"), Err(HeaderError::Missing));
        assert_eq!(decode(b""), Ok(Decoded::NeedMore));
    }

    /// The example from the spec's §2.2 layout, written out by hand:
    /// PROXY, TCP over IPv6, 2001:db8::1 port 56324 → 2001:db8::2 port 443,
    /// authority "api.example.com".
    const V2_TCP6_AUTHORITY: &[u8] = &[
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
        0x21, 0x21, 0x00, 0x36, // v2 PROXY, AF_INET6 STREAM, 54 bytes follow
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // dst
        0xdc, 0x04, 0x01, 0xbb, // ports 56324, 443
        0x02, 0x00, 0x0f, b'a', b'p', b'i', b'.', b'e', b'x', b'a', b'm', b'p', b'l', b'e', b'.',
        b'c', b'o', b'm',
    ];

    #[test]
    fn v2_encode_matches_the_spec_layout() {
        let h = encode_v2(
            sa("[2001:db8::1]:56324"),
            sa("[2001:db8::2]:443"),
            Some(b"api.example.com"),
        );
        assert_eq!(h.as_bytes(), V2_TCP6_AUTHORITY);
    }

    #[test]
    fn v2_decode_reads_addresses_and_authority() {
        let h = header(V2_TCP6_AUTHORITY);
        assert_eq!(h.len, V2_TCP6_AUTHORITY.len());
        assert_eq!(
            h.addresses,
            Some((sa("[2001:db8::1]:56324"), sa("[2001:db8::2]:443")))
        );
        assert_eq!(h.authority, Some(&b"api.example.com"[..]));
        for cut in 0..V2_TCP6_AUTHORITY.len() {
            assert_eq!(decode(&V2_TCP6_AUTHORITY[..cut]), Ok(Decoded::NeedMore));
        }
    }

    #[test]
    fn v2_ipv4_round_trip_and_mapped_addresses_become_ipv4() {
        let h = encode_v2(sa("[::ffff:192.0.2.7]:1000"), sa("198.51.100.1:80"), None);
        assert_eq!(h.as_bytes().len(), 28);
        assert_eq!(h.as_bytes()[13], 0x11);
        assert_eq!(
            header(h.as_bytes()).addresses,
            Some((sa("192.0.2.7:1000"), sa("198.51.100.1:80")))
        );
    }

    #[test]
    fn v2_mixed_families_are_sent_as_ipv6() {
        let h = encode_v2(sa("[2001:db8::9]:5"), sa("192.0.2.1:443"), None);
        assert_eq!(h.as_bytes()[13], 0x21);
        assert_eq!(
            header(h.as_bytes()).addresses,
            Some((sa("[2001:db8::9]:5"), sa("[::ffff:192.0.2.1]:443")))
        );
    }

    #[test]
    fn v2_longest_authority_fits_and_longer_is_dropped() {
        let name = [b'a'; MAX_AUTHORITY];
        let h = encode_v2(sa("[2001:db8::1]:1"), sa("[2001:db8::2]:2"), Some(&name));
        assert_eq!(h.as_bytes().len(), V2_MAX_EMITTED);
        assert_eq!(header(h.as_bytes()).authority, Some(&name[..]));
        let long = [b'a'; MAX_AUTHORITY + 1];
        let h = encode_v2(sa("[2001:db8::1]:1"), sa("[2001:db8::2]:2"), Some(&long));
        assert_eq!(header(h.as_bytes()).authority, None);
    }

    #[test]
    fn v2_local_uses_real_endpoints() {
        let mut buf = V2_TCP6_AUTHORITY.to_vec();
        buf[12] = 0x20;
        assert_eq!(header(&buf).addresses, None);
    }

    #[test]
    fn v2_bad_headers_are_refused() {
        let mut buf = V2_TCP6_AUTHORITY.to_vec();
        buf[12] = 0x11; // version 1 in a v2 block
        assert_eq!(decode(&buf), Err(HeaderError::Unsupported));
        let mut buf = V2_TCP6_AUTHORITY.to_vec();
        buf[12] = 0x22; // unknown command
        assert_eq!(decode(&buf), Err(HeaderError::Unsupported));
        let mut buf = V2_TCP6_AUTHORITY.to_vec();
        buf[15] = 0x20; // too short for two IPv6 addresses
        assert_eq!(decode(&buf[..48]), Err(HeaderError::Malformed));
        let mut buf = V2_TCP6_AUTHORITY.to_vec();
        buf[53] = 0x30; // TLV longer than the block
        assert_eq!(decode(&buf), Err(HeaderError::Malformed));
        let mut buf = V2_TCP6_AUTHORITY.to_vec();
        buf[14] = 0xff; // 65 KiB block
        assert_eq!(decode(&buf), Err(HeaderError::TooLarge));
    }

    #[test]
    fn garbage_after_the_signature_never_panics() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut buf = V2_SIGNATURE.to_vec();
            let len = usize::try_from(next() % 300).unwrap();
            buf.extend((0..len).map(|_| next().to_le_bytes()[0]));
            if let Ok(Decoded::Header(h)) = decode(&buf) {
                assert!(h.len <= buf.len());
            }
            let mut v1 = b"PROXY ".to_vec();
            v1.extend(
                (0..len % 120)
                    .map(|_| b" 0123456789.:TCP46\r\n"[usize::from(next().to_le_bytes()[0]) % 20]),
            );
            if let Ok(Decoded::Header(h)) = decode(&v1) {
                assert!(h.len <= v1.len());
            }
        }
    }

    #[test]
    fn v2_encode_then_decode_gives_back_addresses_and_authority() {
        let mut state = 0x1234_5678_9abc_def1_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5_000 {
            let port = |x: u64| u16::try_from(x & 0xffff).unwrap();
            let (src, dst) = if next() % 2 == 0 {
                let a = Ipv4Addr::from(u32::try_from(next() >> 32).unwrap());
                let b = Ipv4Addr::from(u32::try_from(next() >> 32).unwrap());
                (
                    SocketAddr::new(a.into(), port(next())),
                    SocketAddr::new(b.into(), port(next())),
                )
            } else {
                let a = Ipv6Addr::from((u128::from(next()) << 64) | u128::from(next()));
                let b = Ipv6Addr::from((u128::from(next()) << 64) | u128::from(next()));
                (
                    SocketAddr::new(unmap(a.into()), port(next())),
                    SocketAddr::new(unmap(b.into()), port(next())),
                )
            };
            let len = usize::try_from(next() % 256).unwrap();
            let authority: Vec<u8> = (0..len)
                .map(|i| b'a' + u8::try_from(i % 26).unwrap())
                .collect();
            let h = encode_v2(src, dst, Some(&authority));
            let d = header(h.as_bytes());
            let (s2, d2) = d.addresses.unwrap();
            assert_eq!((unmap(s2.ip()), s2.port()), (src.ip(), src.port()));
            assert_eq!((unmap(d2.ip()), d2.port()), (dst.ip(), dst.port()));
            assert_eq!(
                d.authority,
                (!authority.is_empty()).then_some(&authority[..])
            );
            assert_eq!(d.len, h.as_bytes().len());
        }
    }
}
