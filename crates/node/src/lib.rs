//! sixgate-node: node rules as nftables data, applied and kept in place.
//!
//! Not implemented yet: `sixgate node` and a `[node]` section of `sixgate run`
//! fail with a clear error until it is.

use serde::Deserialize;

/// The `[node]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}
