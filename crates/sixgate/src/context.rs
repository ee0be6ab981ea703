//! What every long-running part gets from the program around it.

use sixgate_telemetry::{Health, Registry};

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::admin::Endpoints;
use crate::config::Config;

/// Shared runtime handles: metrics, readiness and the shutdown signal.
#[derive(Clone)]
pub struct Context {
    /// Collectors served on `/metrics`.
    pub registry: Registry,
    /// Readiness served on `/readyz`.
    pub health: Health,
    /// Cancelled on SIGTERM or SIGINT; parts stop accepting work and drain.
    pub shutdown: CancellationToken,
    /// Extra text endpoints on the admin port.
    pub endpoints: Endpoints,
    /// The config as last loaded; a new value arrives on each successful reload (SIGHUP).
    pub config: watch::Receiver<Arc<Config>>,
}

impl Context {
    pub fn new(config: watch::Receiver<Arc<Config>>) -> Self {
        Self {
            registry: Registry::new(),
            health: Health::new(),
            shutdown: CancellationToken::new(),
            endpoints: Endpoints::default(),
            config,
        }
    }
}
