//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) share one layout for what the
//! translator touches: type, code, checksum, and a 4-byte "rest of header"
//! (identifier and sequence, MTU, or pointer), then the body.

use super::{be16, set_be16, WireError};

mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
}

pub const HEADER_LEN: usize = 8;

/// ICMPv4 types (RFC 792 and the IANA registry).
pub mod v4 {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAMETER_PROBLEM: u8 = 12;
}

/// ICMPv6 types (RFC 4443).
pub mod v6 {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAMETER_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
}

/// A view of an ICMPv4 or ICMPv6 message.
#[derive(Debug, Clone)]
pub struct IcmpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Checks that the 8-byte header is there.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The 4 bytes after the checksum, as one big-endian word.
    pub fn rest(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::REST];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// ICMPv4 Fragmentation Needed next-hop MTU (RFC 1191 §4).
    pub fn v4_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    /// ICMPv4 Parameter Problem pointer / ICMPv6 pointer (low byte).
    pub fn v4_pointer(&self) -> u8 {
        self.buffer.as_ref()[4]
    }

    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Whether this is an error message (ICMPv4 types 3, 4, 5, 11, 12; ICMPv6
    /// types below 128).
    pub fn is_error(&self, v6: bool) -> bool {
        let t = self.msg_type();
        if v6 {
            t < 128
        } else {
            matches!(t, 3 | 4 | 5 | 11 | 12)
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    pub fn set_checksum(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::CHECKSUM.start, v);
    }

    pub fn set_rest(&mut self, v: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&v.to_be_bytes());
    }

    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deconstructs_and_constructs_an_echo_request() {
        let mut b = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i'];
        let mut p = IcmpPacket::new_checked(&mut b[..]).unwrap();
        assert_eq!((p.msg_type(), p.code(), p.rest()), (8, 0, 0x1234_0001));
        assert!(!p.is_error(false));
        p.set_msg_type(v6::ECHO_REQUEST);
        p.set_checksum(0xabcd);
        assert_eq!(p.body(), b"hi");
        assert_eq!(&b[..4], &[128, 0, 0xab, 0xcd]);
    }

    #[test]
    fn short_message_is_refused() {
        assert_eq!(
            IcmpPacket::new_checked(&[3u8, 4, 0][..]).unwrap_err(),
            WireError::Truncated
        );
    }
}
