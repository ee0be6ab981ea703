//! sixgate-dns64: RFC 6147 DNS64, a caching forwarder that synthesizes AAAA
//! records for IPv4-only names.
//!
//! - [`synth`]: the sans-IO synthesis core, a pure function of (question,
//!   upstream answers, policy).
//! - [`wire`] and [`cache`]: sans-IO helpers of the server (fast query parsing,
//!   response finishing, the answer cache; time is passed in).
//! - [`server`] and [`upstream`]: the tokio drivers.
#![forbid(unsafe_code)]

pub mod net;
pub mod synth;

use serde::Deserialize;

/// The `[dns64]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}
