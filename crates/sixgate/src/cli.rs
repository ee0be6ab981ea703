//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cmd;

#[derive(Debug, Parser)]
#[command(
    name = "sixgate",
    version,
    about = "An IPv6 gateway for Kubernetes clusters and the hosts around them"
)]
pub struct Cli {
    /// Log format: human-readable text, or one JSON object per line (for Kubernetes).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SIXGATE_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter, in `tracing` EnvFilter syntax (`info`, `sixgate=debug`, ...).
    #[arg(long, global = true, default_value = "info", env = "SIXGATE_LOG")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every part that has a section in the config file (or the embedded default).
    Run(RunAllArgs),
    /// Validate a config file without running anything.
    Check(ConfigArgs),
    /// RFC 6052 calculator (embed, extract, explain) and host address derivation.
    Addr(cmd::addr::Args),
    /// Stateless IP/ICMP translation (RFC 7915) with an EAM table (RFC 7757).
    Siit(RunArgs),
    /// Stateful NAT64 (RFC 6146).
    Nat64(cmd::nat64::Args),
    /// DNS64 resolver (RFC 6147).
    Dns64(RunArgs),
    /// 6->4 L4 proxy with SNI routing and PROXY v2.
    Proxy(RunArgs),
    /// Node rules with nftables.
    Node(cmd::node::Args),
    /// IPv6 address planner for many clusters.
    Plan(cmd::plan::Args),
    /// Build the seeds' scenarios in network namespaces, run them, clean up (root).
    Demo(cmd::demo::Args),
    /// Print the version.
    Version,
}

/// Where the config comes from.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The TOML config file.
    #[arg(short, long, env = "SIXGATE_CONFIG")]
    pub config: PathBuf,
}

/// Options of `sixgate run`.
#[derive(Debug, Clone, Args)]
pub struct RunAllArgs {
    /// The TOML config file. Without it, the embedded default runs: dns64 on
    /// loopback and nat64 for 64:ff9b::/96 (see --print-default-config).
    #[arg(short, long, env = "SIXGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the embedded default config and exit.
    #[arg(long)]
    pub print_default_config: bool,
    /// Admin HTTP address; overrides `[admin] listen`.
    #[arg(long)]
    pub admin: Option<SocketAddr>,
    /// Reload when the config file's content changes (checked every 2 s).
    #[arg(long, env = "SIXGATE_WATCH_CONFIG")]
    pub watch_config: bool,
}

/// Options of the long-running commands.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Admin HTTP address (`/healthz`, `/readyz`, `/metrics`); overrides `[admin] listen`.
    #[arg(long)]
    pub admin: Option<SocketAddr>,
    /// Reload when the config file's content changes (checked every 2 s), as
    /// on SIGHUP. For a Kubernetes ConfigMap mounted as a directory.
    #[arg(long, env = "SIXGATE_WATCH_CONFIG")]
    pub watch_config: bool,
}
