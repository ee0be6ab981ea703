//! sixgate-dns64: RFC 6147 DNS64: synthesis core and the caching forwarder around it.
//!
//! Not implemented yet: `sixgate dns64` and a `[dns64]` section of `sixgate run`
//! fail with a clear error until it is.

use serde::Deserialize;

/// The `[dns64]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}
