//! `sixgate node apply|show|diff|delete|watch` and the `[node]` section of
//! `sixgate run` (which runs `watch`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::{Args as ClapArgs, Subcommand};
use sixgate_node::watch::Backoff;
use sixgate_node::{agent, Agent, Metrics};

use crate::cli::{ConfigArgs, RunArgs};
use crate::config::{Config, Invalid};
use crate::context::Context;

/// The `[node]` section.
pub type Section = sixgate_node::Config;

/// `sixgate node ...`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Put the rules and routes of the [node] section in place once.
    Apply(ConfigArgs),
    /// Print the live table ip6 sixgate (with counters) and sixgate's routes.
    Show,
    /// Compare the live rules and routes with the config (exit status 1 when they differ).
    Diff(ConfigArgs),
    /// Remove table ip6 sixgate and every route sixgate added, nothing else.
    Delete,
    /// Apply, then keep the rules and routes in place (what `sixgate run` does for [node]).
    Watch(RunArgs),
}

/// Checks of the section that need more than one value at a time.
pub fn validate(section: &Section) -> Result<(), Invalid> {
    section
        .plan()
        .map(drop)
        .map_err(|e| Invalid::new(e.key, e.reason))
}

fn load_plan(args: &ConfigArgs) -> anyhow::Result<sixgate_node::Plan> {
    let config = Config::load(&args.config)?;
    let section = config
        .node
        .ok_or_else(|| anyhow::anyhow!("the config has no [node] section"))?;
    section.plan().map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn command(args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::Apply(config) => {
            let mut agent = Agent::new(load_plan(&config)?, Arc::new(Metrics::default()));
            let summary = agent.apply()?;
            tracing::info!("node rules applied: {summary}");
            println!("applied: {summary}");
            Ok(())
        }
        Action::Show => {
            print!("{}", agent::show()?);
            Ok(())
        }
        Action::Diff(config) => {
            let mut agent = Agent::new(load_plan(&config)?, Arc::new(Metrics::default()));
            let (same, text) = agent.diff()?;
            print!("{text}");
            if same {
                println!("the live rules and routes match the config");
                Ok(())
            } else {
                anyhow::bail!("the live rules or routes differ from the config")
            }
        }
        Action::Delete => {
            let routes = agent::delete()?;
            tracing::info!("node rules deleted: table ip6 sixgate and {routes} routes");
            println!("deleted: table ip6 sixgate and {routes} routes");
            Ok(())
        }
        Action::Watch(run) => super::run::command(&run, Some(super::run::Part::Node)),
    }
}

/// `watch`: runs until `ctx.shutdown` is cancelled, re-applying what someone
/// else changed, with backoff after failures. The rules and routes stay in
/// place when it stops (`sixgate node delete` removes them).
pub async fn serve(section: Section, ctx: Context) -> anyhow::Result<()> {
    let plan = section.plan().map_err(|e| anyhow::anyhow!("{e}"))?;
    let ready = ctx.health.part("node");
    let metrics = Arc::new(Metrics::default());
    ctx.registry.register(metrics.clone());
    tracing::info!(
        "node watching table ip6 sixgate and its routes every {:?}",
        plan.period
    );
    let agent = Arc::new(Mutex::new(Agent::new(plan, metrics)));
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
    let mut config = ctx.config.clone();
    config.mark_unchanged();
    loop {
        let step_agent = Arc::clone(&agent);
        let step = tokio::task::spawn_blocking(move || {
            let mut agent = step_agent.lock().unwrap_or_else(PoisonError::into_inner);
            let outcome = agent.reconcile();
            (outcome, agent.plan().period)
        })
        .await?;
        let wait = match step {
            (Ok(_), period) => {
                ready.set(true);
                backoff.reset();
                period
            }
            (Err(err), _) => {
                ready.set(false);
                let wait = backoff.fail();
                tracing::error!("node: {err}; retrying in {wait:?}");
                wait
            }
        };
        tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
            changed = config.changed() => {
                if changed.is_err() {
                    continue;
                }
                let section = config.borrow_and_update().node.clone();
                match section.map(|s| s.plan()) {
                    Some(Ok(plan)) => {
                        tracing::info!("node: config reloaded");
                        agent.lock().unwrap_or_else(PoisonError::into_inner).set_plan(plan);
                    }
                    Some(Err(err)) => tracing::error!("node: reloaded config refused, keeping the running one: {err}"),
                    None => tracing::warn!("node: the reloaded config has no [node] section; keeping the running one"),
                }
            }
        }
    }
    ready.set(false);
    tracing::info!("node stopped; the rules and routes stay in place");
    Ok(())
}
