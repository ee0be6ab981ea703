//! sixgate-node: node rules as nftables data, applied and kept in place.
//!
//! - [`config`]: the `[node]` section and its checks, giving a [`Plan`].
//! - [`ruleset`]: the rules as data and their `nft -f` text (sans-IO).
//! - [`routes`]: owned routes as data, `ip` arguments, live comparison (sans-IO).
//! - [`detect`]: whether the node has IPv6 (from the interfaces).
//! - [`watch`]: backoff and line diff (sans-IO).
//! - [`system`] runs `nft` and `ip`; [`agent`] applies, reconciles, shows,
//!   diffs and deletes.
#![forbid(unsafe_code)]

pub mod agent;
pub mod config;
pub mod detect;
pub mod routes;
pub mod ruleset;
pub mod system;
pub mod types;
pub mod watch;

pub use agent::{Agent, ApplyError, Metrics, Outcome, Summary};
pub use config::{Config, Invalid, Plan};
