//! Zero-copy packet views in the smoltcp `wire` style.
//!
//! A view wraps any `T: AsRef<[u8]>`; `new_checked` verifies that every
//! field the getters read lies inside the buffer, after which no accessor
//! panics. Setters need `T: AsMut<[u8]>`. Field offsets are `Range<usize>`
//! constants in a private `field` module of each header.

pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

pub use icmp::IcmpPacket;
pub use ipv4::Ipv4Packet;
pub use ipv6::{Ipv6Packet, Ipv6Walk};
pub use tcp::TcpPacket;
pub use udp::UdpPacket;

/// A buffer is shorter than its header (or than a length field says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated")]
    Truncated,
    #[error("malformed header")]
    Malformed,
}

/// IP protocol numbers used here (IANA "Assigned Internet Protocol Numbers").
pub mod proto {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ICMPV6: u8 = 58;
    pub const DEST_OPTS: u8 = 60;
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn set_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
