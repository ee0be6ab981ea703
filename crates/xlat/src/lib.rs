//! sixgate-xlat: the sans-IO translation core.
//!
//! Nothing here touches a socket, a TUN device or the clock: bytes go in,
//! a verdict naming where the resulting bytes go comes out.
#![forbid(unsafe_code)]

pub mod nat64;
pub mod prefix64;

pub use prefix64::{EmbedError, Prefix64, Prefix64Error};
