//! sixgate-xlat: the sans-IO translation core.
//!
//! Nothing here touches a socket, a TUN device or the clock: bytes go in,
//! a verdict naming where the resulting bytes go comes out.
#![forbid(unsafe_code)]

pub mod checksum;
pub mod eam;
pub mod nat64;
pub mod prefix64;
mod rfc7915;
pub mod siit;
pub mod wire;

pub use eam::{EamEntry, EamError, EamTable, Ipv4Prefix, Ipv6Prefix, PrefixError};
pub use prefix64::{EmbedError, Prefix64, Prefix64Error};
pub use siit::{ConfigError, DropReason, Output, Siit, SiitConfig, Verdict};
