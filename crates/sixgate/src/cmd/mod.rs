//! One module per subcommand.

pub mod addr;
pub mod check;
pub mod demo;
mod demo_steps;
pub mod dns64;
pub mod nat64;
pub mod node;
pub mod plan;
pub mod proxy;
pub mod run;
pub mod siit;

use crate::cli::Command;

pub fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => run::command_all(&args),
        Command::Check(args) => check::command(&args),
        Command::Addr(args) => addr::command(&args),
        Command::Siit(args) => run::command(&args, Some(run::Part::Siit)),
        Command::Nat64(args) => nat64::command(&args),
        Command::Dns64(args) => run::command(&args, Some(run::Part::Dns64)),
        Command::Proxy(args) => run::command(&args, Some(run::Part::Proxy)),
        Command::Node(args) => node::command(args),
        Command::Plan(args) => plan::command(&args),
        Command::Demo(args) => demo::command(&args),
        Command::Version => {
            println!("sixgate {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
