//! sixgate-plan: IPv6 address planner for many clusters and its renderers.
//!
//! Not implemented yet: `sixgate plan` and a `[plan]` section of `sixgate run`
//! fail with a clear error until it is.

use serde::Deserialize;

/// The `[plan]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}
