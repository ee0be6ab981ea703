//! Reading the server name (SNI) and the offered ALPN protocols from a TLS
//! ClientHello without terminating TLS.
//!
//! The parser works on whatever prefix of the connection has arrived so far:
//! it answers [`Peek::NeedMore`] until the whole ClientHello is there, so the
//! caller can read more bytes and call it again. It never allocates unless the
//! ClientHello is split over several TLS records, and then only into a scratch
//! buffer that the caller owns and reuses, bounded by `max_len`.
//!
//! RFC 8446 §5.1 (records): `ContentType type; ProtocolVersion
//! legacy_record_version; uint16 length; opaque fragment[length]`, with
//! `length` at most 2^14; handshake messages MAY be fragmented across several
//! records, and zero-length handshake fragments MUST NOT be sent.
//! RFC 8446 §4.1.2 (ClientHello): `legacy_version, random[32],
//! legacy_session_id<0..32>, cipher_suites<2..2^16-2>,
//! legacy_compression_methods<1..2^8-1>, extensions<8..2^16-1>`; TLS 1.2 (RFC
//! 5246 §7.4.1.2) allows the extensions to be absent.
//! RFC 6066 §3 (server_name, type 0) and RFC 7301 §3.1 (ALPN, type 16).
#![forbid(unsafe_code)]

/// TLS record content type of handshake records.
const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake message type of a ClientHello.
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const RECORD_HEADER: usize = 5;
const HANDSHAKE_HEADER: usize = 4;
/// RFC 8446 §5.1: a plaintext record carries at most 2^14 bytes.
const MAX_RECORD: usize = 1 << 14;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
/// A DNS host name is at most 253 characters; longer names are refused.
pub const MAX_SNI_LEN: usize = 253;

/// Why the first bytes of a connection are not a usable ClientHello.
/// `as_str` is also the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloError {
    /// The first record is not a TLS handshake record.
    NotTls,
    /// The first handshake message is not a ClientHello.
    NotClientHello,
    /// A length field or value is inconsistent.
    Malformed,
    /// The ClientHello is longer than the configured limit.
    TooLarge,
}

impl HelloError {
    pub fn as_str(self) -> &'static str {
        match self {
            HelloError::NotTls => "hello_not_tls",
            HelloError::NotClientHello => "hello_not_client_hello",
            HelloError::Malformed => "hello_malformed",
            HelloError::TooLarge => "hello_too_large",
        }
    }
}

impl std::fmt::Display for HelloError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the bytes so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek<'a> {
    /// The ClientHello is not complete yet: read more and call again.
    NeedMore,
    /// The whole ClientHello arrived.
    Done(ClientHello<'a>),
}

/// The parts of a ClientHello that routing looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// `legacy_version` of the ClientHello (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// The host name from the server_name extension, as sent (ASCII).
    pub server_name: Option<&'a str>,
    /// The raw ALPN `protocol_name_list` (empty when the extension is absent).
    alpn: &'a [u8],
    /// Bytes of the connection that the ClientHello records take up.
    pub records_len: usize,
}

impl<'a> ClientHello<'a> {
    /// The protocols offered in the ALPN extension, in the client's order.
    pub fn alpn(&self) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
        AlpnIter(self.alpn)
    }
}

#[derive(Clone)]
struct AlpnIter<'a>(&'a [u8]);

impl<'a> Iterator for AlpnIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.0.split_first()?;
        let len = usize::from(len);
        // Validated in `parse_alpn`; stop rather than panic all the same.
        let (name, rest) = rest.split_at_checked(len)?;
        self.0 = rest;
        Some(name)
    }
}

/// Parses the ClientHello at the start of `buf`, the bytes a client has sent
/// so far.
///
/// `max_len` bounds the ClientHello handshake message; `scratch` is used (and
/// cleared first) only when the message is split over several records.
///
/// # Errors
///
/// [`HelloError`] when the bytes can never become a usable ClientHello.
pub fn peek_client_hello<'a>(
    buf: &'a [u8],
    max_len: usize,
    scratch: &'a mut Vec<u8>,
) -> Result<Peek<'a>, HelloError> {
    // The first record header tells if this is TLS at all: check what there is.
    if let Some(&content_type) = buf.first() {
        if content_type != CONTENT_HANDSHAKE {
            return Err(HelloError::NotTls);
        }
    }
    if let Some(&major) = buf.get(1) {
        if major != 3 {
            return Err(HelloError::NotTls);
        }
    }
    let Some(first) = record(buf)? else {
        return Ok(Peek::NeedMore);
    };
    // Refuse early what the first bytes of the handshake already rule out,
    // before waiting for the rest of the record.
    let partial = &buf[RECORD_HEADER..buf.len().min(RECORD_HEADER + first.len)];
    if partial
        .first()
        .is_some_and(|&kind| kind != HANDSHAKE_CLIENT_HELLO)
    {
        return Err(HelloError::NotClientHello);
    }
    if partial.len() >= HANDSHAKE_HEADER {
        handshake_len(partial, max_len)?;
    }
    // The handshake header may itself be split over records (legal, if odd);
    // gather at least 4 bytes of handshake data to read the message length.
    let Some(fragment) = first.fragment else {
        return Ok(Peek::NeedMore);
    };
    if fragment.len() >= HANDSHAKE_HEADER {
        let message_len = handshake_len(fragment, max_len)?;
        if fragment.len() >= HANDSHAKE_HEADER + message_len {
            // The common case: one record holds the whole ClientHello.
            let message = &fragment[HANDSHAKE_HEADER..HANDSHAKE_HEADER + message_len];
            let hello = parse_client_hello(message, RECORD_HEADER + first.len)?;
            return Ok(Peek::Done(hello));
        }
    } else if let Some(&kind) = fragment.first() {
        if kind != HANDSHAKE_CLIENT_HELLO {
            return Err(HelloError::NotClientHello);
        }
    }
    // Several records: copy their fragments together.
    scratch.clear();
    let mut offset = 0;
    let mut needed = None;
    loop {
        let Some(rec) = record(&buf[offset..])? else {
            return Ok(Peek::NeedMore);
        };
        let Some(fragment) = rec.fragment else {
            return Ok(Peek::NeedMore);
        };
        offset += RECORD_HEADER + rec.len;
        let room = max_len.saturating_add(HANDSHAKE_HEADER);
        if scratch.len() + fragment.len() > room.saturating_add(MAX_RECORD) {
            return Err(HelloError::TooLarge);
        }
        scratch.extend_from_slice(fragment);
        if needed.is_none() && scratch.len() >= HANDSHAKE_HEADER {
            needed = Some(HANDSHAKE_HEADER + handshake_len(scratch, max_len)?);
        }
        if let Some(needed) = needed {
            if scratch.len() >= needed {
                let scratch: &'a Vec<u8> = scratch;
                let hello = parse_client_hello(&scratch[HANDSHAKE_HEADER..needed], offset)?;
                return Ok(Peek::Done(hello));
            }
        }
        if offset >= buf.len() {
            return Ok(Peek::NeedMore);
        }
    }
}

struct Record<'a> {
    /// Declared fragment length.
    len: usize,
    /// The fragment, when all of it has arrived.
    fragment: Option<&'a [u8]>,
}

/// One handshake record at the start of `buf`; `None` until its header is there.
fn record(buf: &[u8]) -> Result<Option<Record<'_>>, HelloError> {
    let Some(header) = buf.get(..RECORD_HEADER) else {
        return Ok(None);
    };
    if header[0] != CONTENT_HANDSHAKE || header[1] != 3 {
        // Only handshake records may come before the ClientHello is complete.
        return Err(HelloError::NotTls);
    }
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if len == 0 || len > MAX_RECORD {
        return Err(HelloError::Malformed);
    }
    Ok(Some(Record {
        len,
        fragment: buf.get(RECORD_HEADER..RECORD_HEADER + len),
    }))
}

/// Checks the handshake header at the start of `data` and returns the length
/// of the message body.
fn handshake_len(data: &[u8], max_len: usize) -> Result<usize, HelloError> {
    if data[0] != HANDSHAKE_CLIENT_HELLO {
        return Err(HelloError::NotClientHello);
    }
    let len = (usize::from(data[1]) << 16) | (usize::from(data[2]) << 8) | usize::from(data[3]);
    if len > max_len {
        return Err(HelloError::TooLarge);
    }
    Ok(len)
}

/// A cursor over a byte slice that never reads past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HelloError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(HelloError::Malformed)?;
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, HelloError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, HelloError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    /// A vector with a one-byte length prefix.
    fn vec8(&mut self) -> Result<&'a [u8], HelloError> {
        let len = self.u8()?;
        self.take(usize::from(len))
    }
    /// A vector with a two-byte length prefix.
    fn vec16(&mut self) -> Result<&'a [u8], HelloError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// RFC 8446 §4.1.2: the ClientHello body (after the handshake header).
fn parse_client_hello(body: &[u8], records_len: usize) -> Result<ClientHello<'_>, HelloError> {
    let mut r = Reader(body);
    let legacy_version = r.u16()?;
    if legacy_version >> 8 != 3 {
        return Err(HelloError::NotTls);
    }
    r.take(32)?; // random
    let session_id = r.vec8()?;
    if session_id.len() > 32 {
        return Err(HelloError::Malformed);
    }
    let suites = r.vec16()?;
    if suites.len() < 2 || suites.len() % 2 != 0 {
        return Err(HelloError::Malformed);
    }
    let compression = r.vec8()?;
    if compression.is_empty() {
        return Err(HelloError::Malformed);
    }
    let mut hello = ClientHello {
        legacy_version,
        server_name: None,
        alpn: &[],
        records_len,
    };
    if r.is_empty() {
        return Ok(hello); // TLS 1.2 without extensions
    }
    let mut extensions = Reader(r.vec16()?);
    if !r.is_empty() {
        return Err(HelloError::Malformed);
    }
    let (mut seen_sni, mut seen_alpn) = (false, false);
    while !extensions.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vec16()?;
        match kind {
            EXT_SERVER_NAME => {
                // RFC 8446 §4.2: no extension type may appear twice.
                if std::mem::replace(&mut seen_sni, true) {
                    return Err(HelloError::Malformed);
                }
                hello.server_name = parse_server_name(data)?;
            }
            EXT_ALPN => {
                if std::mem::replace(&mut seen_alpn, true) {
                    return Err(HelloError::Malformed);
                }
                hello.alpn = parse_alpn(data)?;
            }
            _ => {}
        }
    }
    Ok(hello)
}

/// RFC 6066 §3: `ServerName server_name_list<1..2^16-1>`, each a
/// `NameType name_type` and, for `host_name(0)`, `HostName<1..2^16-1>`.
/// "The ServerNameList MUST NOT contain more than one name of the same
/// name_type."
fn parse_server_name(data: &[u8]) -> Result<Option<&str>, HelloError> {
    let mut outer = Reader(data);
    let mut list = Reader(outer.vec16()?);
    if !outer.is_empty() || list.is_empty() {
        return Err(HelloError::Malformed);
    }
    let mut host = None;
    while !list.is_empty() {
        let name_type = list.u8()?;
        let name = list.vec16()?;
        if name_type != 0 {
            continue; // no other name types are defined; skip them
        }
        if host.is_some() {
            return Err(HelloError::Malformed);
        }
        host = Some(name);
    }
    let Some(host) = host else { return Ok(None) };
    if host.is_empty()
        || host.len() > MAX_SNI_LEN
        || !host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(HelloError::Malformed);
    }
    // Only ASCII bytes were accepted above, so this cannot fail.
    std::str::from_utf8(host)
        .map(Some)
        .map_err(|_| HelloError::Malformed)
}

/// RFC 7301 §3.1: `ProtocolName protocol_name_list<2..2^16-1>`, each
/// `opaque ProtocolName<1..2^8-1>`.
fn parse_alpn(data: &[u8]) -> Result<&[u8], HelloError> {
    let mut outer = Reader(data);
    let list = outer.vec16()?;
    if !outer.is_empty() || list.len() < 2 {
        return Err(HelloError::Malformed);
    }
    let mut names = Reader(list);
    while !names.is_empty() {
        if names.vec8()?.is_empty() {
            return Err(HelloError::Malformed);
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 16 * 1024;

    /// Captured from `openssl s_client -servername api.example.com -alpn h2,http/1.1` (OpenSSL 3.0).
    const OPENSSL_SNI_ALPN: &[u8] = include_bytes!("../testdata/openssl_sni_alpn.bin");
    /// Captured from `openssl s_client -noservername`.
    const OPENSSL_NO_SNI: &[u8] = include_bytes!("../testdata/openssl_no_sni.bin");
    /// Captured from `openssl s_client -servername legacy.example.org -tls1_2`.
    const OPENSSL_TLS12: &[u8] = include_bytes!("../testdata/openssl_tls12.bin");
    /// Captured from `curl https://www.example.net/` (curl 7.88, OpenSSL 3.0).
    const CURL_SNI: &[u8] = include_bytes!("../testdata/curl_sni.bin");

    fn peek(buf: &[u8]) -> Result<Peek<'_>, HelloError> {
        // The scratch buffer must outlive the result; leak it in tests.
        let scratch = Box::leak(Box::new(Vec::new()));
        peek_client_hello(buf, MAX, scratch)
    }

    fn done(buf: &[u8]) -> ClientHello<'_> {
        match peek(buf) {
            Ok(Peek::Done(hello)) => hello,
            other => panic!("expected a complete hello, got {other:?}"),
        }
    }

    fn alpn(hello: &ClientHello<'_>) -> Vec<String> {
        hello
            .alpn()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    #[test]
    fn openssl_hello_gives_sni_and_alpn() {
        let hello = done(OPENSSL_SNI_ALPN);
        assert_eq!(hello.server_name, Some("api.example.com"));
        assert_eq!(alpn(&hello), ["h2", "http/1.1"]);
        assert_eq!(hello.legacy_version, 0x0303);
        assert_eq!(hello.records_len, OPENSSL_SNI_ALPN.len());
    }

    #[test]
    fn hello_without_server_name_has_none() {
        let hello = done(OPENSSL_NO_SNI);
        assert_eq!(hello.server_name, None);
        assert!(alpn(&hello).is_empty());
    }

    #[test]
    fn tls12_and_curl_hellos_parse() {
        assert_eq!(done(OPENSSL_TLS12).server_name, Some("legacy.example.org"));
        let curl = done(CURL_SNI);
        assert_eq!(curl.server_name, Some("www.example.net"));
        assert_eq!(alpn(&curl), ["http/1.1"]);
    }

    #[test]
    fn every_proper_prefix_needs_more() {
        for capture in [OPENSSL_SNI_ALPN, OPENSSL_NO_SNI, OPENSSL_TLS12, CURL_SNI] {
            for cut in 0..capture.len() {
                assert_eq!(peek(&capture[..cut]), Ok(Peek::NeedMore), "cut at {cut}");
            }
        }
    }

    /// Re-frames one ClientHello record into records of at most `size` bytes.
    fn fragment(capture: &[u8], size: usize) -> Vec<u8> {
        let body = &capture[RECORD_HEADER..];
        let mut out = Vec::new();
        for chunk in body.chunks(size) {
            out.extend_from_slice(&[22, 3, 1]);
            out.extend_from_slice(&u16::try_from(chunk.len()).unwrap().to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn hello_split_over_several_records_parses() {
        for size in [1, 2, 3, 4, 5, 7, 64, 100, 200] {
            let framed = fragment(CURL_SNI, size);
            let hello = done(&framed);
            assert_eq!(hello.server_name, Some("www.example.net"), "size {size}");
            assert_eq!(alpn(&hello), ["http/1.1"]);
            assert_eq!(hello.records_len, framed.len());
            // And every prefix of the re-framed bytes asks for more.
            for cut in 0..framed.len() {
                assert_eq!(
                    peek(&framed[..cut]),
                    Ok(Peek::NeedMore),
                    "size {size} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn bytes_after_the_hello_are_not_part_of_it() {
        let mut buf = OPENSSL_SNI_ALPN.to_vec();
        buf.extend_from_slice(&[0x17, 3, 3, 0, 1, 0]);
        assert_eq!(done(&buf).records_len, OPENSSL_SNI_ALPN.len());
    }

    #[test]
    fn plain_http_is_not_tls() {
        assert_eq!(peek(b"GET / HTTP/1.1\r\n"), Err(HelloError::NotTls));
        assert_eq!(peek(b"G"), Err(HelloError::NotTls));
        assert_eq!(peek(&[22, 2]), Err(HelloError::NotTls));
    }

    #[test]
    fn other_handshake_message_is_refused() {
        let mut buf = OPENSSL_SNI_ALPN.to_vec();
        buf[5] = 2; // ServerHello
        assert_eq!(peek(&buf), Err(HelloError::NotClientHello));
        assert_eq!(peek(&buf[..6]), Err(HelloError::NotClientHello));
    }

    #[test]
    fn declared_length_over_the_limit_is_too_large_at_once() {
        // A record header and a handshake header announcing 1 MiB.
        let buf = [22, 3, 1, 0x40, 0x00, 1, 0x10, 0x00, 0x00];
        assert_eq!(peek(&buf), Err(HelloError::TooLarge));
        let mut scratch = Vec::new();
        assert_eq!(
            peek_client_hello(OPENSSL_SNI_ALPN, 100, &mut scratch),
            Err(HelloError::TooLarge)
        );
    }

    #[test]
    fn zero_and_oversized_records_are_malformed() {
        assert_eq!(peek(&[22, 3, 1, 0, 0]), Err(HelloError::Malformed));
        assert_eq!(peek(&[22, 3, 1, 0x40, 0x01]), Err(HelloError::Malformed));
    }

    #[test]
    fn interleaved_non_handshake_record_is_refused() {
        let mut framed = fragment(CURL_SNI, 100);
        framed[105] = 23; // second record becomes application data
        assert_eq!(peek(&framed), Err(HelloError::NotTls));
    }

    #[test]
    fn lying_inner_lengths_are_malformed_not_panics() {
        // Corrupt each byte of the hello in turn: never a panic, and a
        // complete (if odd) hello still reports at most the bytes it has.
        for i in 0..CURL_SNI.len() {
            for value in [0x00, 0x01, 0x7f, 0xff] {
                let mut buf = CURL_SNI.to_vec();
                buf[i] = value;
                let mut scratch = Vec::new();
                if let Ok(Peek::Done(hello)) = peek_client_hello(&buf, MAX, &mut scratch) {
                    assert!(hello.records_len <= buf.len());
                }
            }
        }
    }

    #[test]
    fn non_hostname_sni_is_malformed() {
        let mut buf = CURL_SNI.to_vec();
        let at = buf
            .windows(15)
            .position(|w| w == b"www.example.net")
            .unwrap();
        buf[at + 3] = b'/';
        assert_eq!(peek(&buf), Err(HelloError::Malformed));
    }

    #[test]
    fn garbage_never_panics() {
        // A cheap deterministic generator: xorshift.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = usize::try_from(next() % 600).unwrap();
            let mut buf: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
            if next() % 2 == 0 && buf.len() > 5 {
                buf[0] = 22;
                buf[1] = 3;
                buf[5] = 1;
            }
            let _ = peek(&buf);
        }
    }
}
