//! The `sixgate` binary: CLI, config, admin port and the drivers that wire
//! the sans-IO cores to sockets and TUN devices.

mod admin;
mod cli;
mod cmd;
mod config;
mod context;
mod default_config;
mod logging;
mod offload;
mod routes;
mod tun;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format, &cli.log_level);
    let log_format = cli.log_format;
    match cmd::dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the whole chain of causes on one line: as a log
            // record for machines, as a plain line for people, never both.
            match log_format {
                cli::LogFormat::Json => tracing::error!("{err:#}"),
                cli::LogFormat::Text => eprintln!("sixgate: {err:#}"),
            }
            ExitCode::FAILURE
        }
    }
}
