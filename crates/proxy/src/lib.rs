//! sixgate-proxy: 6->4 L4 proxy: listeners, SNI routing, PROXY v2, backends.
//!
//! Not implemented yet: `sixgate proxy` and a `[proxy]` section of `sixgate run`
//! fail with a clear error until it is.

use serde::Deserialize;

/// The `[proxy]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}
