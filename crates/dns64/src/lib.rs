//! sixgate-dns64: RFC 6147 DNS64, a caching forwarder that synthesizes AAAA
//! records for IPv4-only names.
//!
//! - [`synth`]: the sans-IO synthesis core, a pure function of (question,
//!   upstream answers, policy).
//! - [`wire`] and [`cache`]: sans-IO parts of the server (fast query parsing,
//!   finishing stored answers, the answer cache); time is passed in.
//! - [`server`] and [`upstream`]: the tokio drivers.
#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
pub mod metrics;
pub mod net;
pub mod server;
pub mod synth;
pub mod upstream;
pub mod wire;

pub use config::Config;
pub use metrics::Metrics;
pub use server::{bind, Listeners, Server, ServerError};
