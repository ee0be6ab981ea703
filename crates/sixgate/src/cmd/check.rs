//! `sixgate check --config F`: validate without running.

use crate::cli::ConfigArgs;
use crate::config::Config;

pub fn command(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let sections: Vec<&str> = [
        config.siit.as_ref().map(|_| "siit"),
        config.nat64.as_ref().map(|_| "nat64"),
        config.dns64.as_ref().map(|_| "dns64"),
        config.proxy.as_ref().map(|_| "proxy"),
        config.node.as_ref().map(|_| "node"),
    ]
    .into_iter()
    .flatten()
    .collect();
    println!(
        "{}: ok (parts: {})",
        args.config.display(),
        if sections.is_empty() {
            "none".to_owned()
        } else {
            sections.join(", ")
        }
    );
    Ok(())
}
