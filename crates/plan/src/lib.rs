//! sixgate-plan: an IPv6 address planner for many Kubernetes clusters, and
//! the renderers of the configs that use the plan.
//!
//! Sans-IO: text in ([`Plan::parse`], [`Lock::parse`]), text out
//! ([`Lock::to_text`], [`render::render`], [`show::show`]). The `sixgate plan`
//! command owns the files (and writes the lock atomically).
//!
//! The flow: `plan.toml` → [`Plan`]; [`allocate`] keeps every block the
//! previous [`Lock`] holds and hands out the lowest free block for whatever
//! is new; the renderers turn (plan, lock) into one folder per cluster.
#![forbid(unsafe_code)]

pub mod allocate;
pub mod derive;
pub mod lock;
pub mod model;
pub mod prefix;
pub mod render;
pub mod show;
pub mod space;

use std::fmt;

pub use allocate::{allocate, is_current};
pub use lock::Lock;
pub use model::Plan;
pub use prefix::Prefix;

/// A refused input: the key it is about (`clusters[2].max_nodes`,
/// `clusters.a.pods` in a lock file) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

impl std::error::Error for Invalid {}
