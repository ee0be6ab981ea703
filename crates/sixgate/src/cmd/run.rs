//! `sixgate run` (every configured part) and `sixgate <part>` (one of them).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinSet;

use std::net::SocketAddr;

use crate::cli::{RunAllArgs, RunArgs};
use crate::config::Config;
use crate::context::Context;
use crate::{admin, cmd, default_config};

/// How often `--watch-config` looks at the file.
const WATCH_PERIOD: Duration = Duration::from_secs(2);

/// The long-running parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Siit,
    Nat64,
    Dns64,
    Proxy,
    Node,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Siit => "siit",
            Part::Nat64 => "nat64",
            Part::Dns64 => "dns64",
            Part::Proxy => "proxy",
            Part::Node => "node",
        }
    }
}

/// Where the running config came from, and how it may change.
struct Source {
    /// The file, or `None` for the embedded default (nothing to reload).
    path: Option<PathBuf>,
    admin: Option<SocketAddr>,
    watch_config: bool,
}

/// `sixgate run`: the config file's parts, or the embedded default.
pub fn command_all(args: &RunAllArgs) -> anyhow::Result<()> {
    if args.print_default_config {
        print!("{}", default_config::TEXT);
        return Ok(());
    }
    let (path, config) = match &args.config {
        Some(path) => (Some(path.clone()), Config::load(path)?),
        None => {
            tracing::info!(
                "no --config: running the embedded default (sixgate run --print-default-config)"
            );
            (None, default_config::for_this_host()?)
        }
    };
    let source = Source {
        path,
        admin: args.admin,
        watch_config: args.watch_config,
    };
    block_on(run(source, config, None))
}

/// `sixgate <part> --config F`: one part of the file.
pub fn command(args: &RunArgs, only: Option<Part>) -> anyhow::Result<()> {
    let path = args.config.config.clone();
    let config = Config::load(&path)?;
    let source = Source {
        path: Some(path),
        admin: args.admin,
        watch_config: args.watch_config,
    };
    block_on(run(source, config, only))
}

fn block_on(future: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sixgate")
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}

/// Runs the configured parts (or only `only`) until SIGTERM/SIGINT, or until
/// one of them fails.
async fn run(source: Source, config: Config, only: Option<Part>) -> anyhow::Result<()> {
    let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
    let config_tx = Arc::new(config_tx);
    let ctx = Context::new(config_rx);
    let admin_listener = admin::bind(source.admin.unwrap_or(config.admin.listen)).await?;
    tokio::spawn(admin::serve(admin_listener, ctx.clone()));
    tokio::spawn(handle_signals(
        source.path.clone(),
        Arc::clone(&config_tx),
        ctx.clone(),
    ));
    if let (true, Some(path)) = (source.watch_config, source.path) {
        tokio::spawn(watch_file(path, config_tx, ctx.clone()));
    }

    let wanted = |part: Part| only.is_none_or(|only| only == part);
    // Every part to run is registered not-ready before any starts, so that
    // /readyz cannot say ready while a part is still setting up.
    for (part, present) in [
        (Part::Siit, config.siit.is_some()),
        (Part::Nat64, config.nat64.is_some()),
        (Part::Dns64, config.dns64.is_some()),
        (Part::Proxy, config.proxy.is_some()),
        (Part::Node, config.node.is_some()),
    ] {
        if present && wanted(part) {
            ctx.health.part(part.name());
        }
    }
    let mut parts = JoinSet::new();
    if let Some(section) = config.siit.filter(|_| wanted(Part::Siit)) {
        parts.spawn(named(Part::Siit, cmd::siit::serve(section, ctx.clone())));
    }
    if let Some(section) = config.nat64.filter(|_| wanted(Part::Nat64)) {
        parts.spawn(named(Part::Nat64, cmd::nat64::serve(section, ctx.clone())));
    }
    if let Some(section) = config.dns64.filter(|_| wanted(Part::Dns64)) {
        parts.spawn(named(Part::Dns64, cmd::dns64::serve(section, ctx.clone())));
    }
    if let Some(section) = config.proxy.filter(|_| wanted(Part::Proxy)) {
        parts.spawn(named(Part::Proxy, cmd::proxy::serve(section, ctx.clone())));
    }
    if let Some(section) = config.node.filter(|_| wanted(Part::Node)) {
        parts.spawn(named(Part::Node, cmd::node::serve(section, ctx.clone())));
    }
    if parts.is_empty() {
        anyhow::bail!(match only {
            Some(part) => format!("the config has no [{}] section", part.name()),
            None => "nothing to run: the config has no [siit], [nat64], [dns64], [proxy] or [node] section".to_owned(),
        });
    }

    let mut failure = None;
    while let Some(joined) = parts.join_next().await {
        let result = joined.unwrap_or_else(|err| Err(anyhow::anyhow!("a part panicked: {err}")));
        if let Err(err) = result {
            tracing::error!("{err:#}");
            failure.get_or_insert(err);
            // One part failing stops the others: a half-running gateway is worse
            // than a restarted one.
            ctx.health.start_draining();
            ctx.shutdown.cancel();
        }
    }
    tracing::info!("stopped");
    failure.map_or(Ok(()), Err)
}

async fn named(
    part: Part,
    future: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    future.await.with_context(|| part.name())
}

/// SIGTERM/SIGINT: not ready, then shut down (a second one exits at once).
/// SIGHUP: reload the config file; a bad file is logged and the running config kept.
async fn handle_signals(
    path: Option<PathBuf>,
    config_tx: Arc<watch::Sender<Arc<Config>>>,
    ctx: Context,
) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {
                match &path {
                    Some(path) => reload(path, &config_tx),
                    None => tracing::info!("SIGHUP: the embedded default config has nothing to reload"),
                }
                continue;
            }
        }
        if ctx.shutdown.is_cancelled() {
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        }
        tracing::info!("shutting down");
        ctx.health.start_draining();
        ctx.shutdown.cancel();
    }
}

/// Reloads when the file's bytes change. Content, not mtime: a Kubernetes
/// ConfigMap update swaps a symlink and keeps old timestamps.
async fn watch_file(path: PathBuf, config_tx: Arc<watch::Sender<Arc<Config>>>, ctx: Context) {
    let mut last = std::fs::read(&path).ok();
    let mut tick = tokio::time::interval(WATCH_PERIOD);
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = std::fs::read(&path).ok();
        if now.is_some() && now != last {
            last = now;
            reload(&path, &config_tx);
        }
    }
}

fn reload(path: &std::path::Path, config_tx: &watch::Sender<Arc<Config>>) {
    match Config::load(path) {
        Ok(config) => {
            tracing::info!("reloaded {}", path.display());
            config_tx.send_replace(Arc::new(config));
        }
        Err(err) => tracing::error!("reload failed, keeping the running config: {err}"),
    }
}
