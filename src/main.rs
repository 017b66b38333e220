//! `ncsn`: the front-end binary, linked without libtorch so that it starts in milliseconds. It
//! runs the subcommands that need no tensors itself (`ingest` and `ingest merge`, `inspect`,
//! `export`, `synth`, `--help`, `--version`); for the others (`train`, `doctor`, ...) it finds
//! libtorch and replaces itself (exec) with `ncsn-torch` beside it, same arguments
//! (src/launch.rs, src/libtorch.rs). Subcommands are declared once, in src/cli.rs.

/// Here a tensor subcommand's flags are not compiled: `ncsn-torch` parses them.
macro_rules! tensor {
    ($args:ty) => {
        crate::launch::Passthrough
    };
}

mod cli;
mod launch;
mod libtorch;

/// The subcommands that need no libtorch: the same files `ncsn-torch` compiles in src/cmd/.
#[path = "cmd"]
mod cmd {
    pub use crate::cli::Global;

    pub mod export;
    pub mod ingest;
    pub mod inspect;
    pub mod synth;
}

use clap::{CommandFactory, FromArgMatches};
use cli::{Cli, Command};

fn main() {
    cli::restore_sigpipe();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(name) = launch::tensor_subcommand(&argv) {
        cli::exit_on_error(Err(launch::exec_tensor(&argv, &name)));
    }
    let matches = Cli::command().get_matches_from(&argv);
    let name = matches.subcommand_name().unwrap_or_default().to_string();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let global = cmd::Global { quiet: cli.quiet };
    cli::exit_on_error(match cli.command {
        Command::Ingest(a) => cmd::ingest::run(a, &global),
        Command::Inspect(a) => cmd::inspect::run(a, &global),
        Command::Export(a) => cmd::export::run(a, &global),
        Command::Synth(a) => cmd::synth::run(a, &global),
        // A tensor subcommand that tensor_subcommand did not spot (`ncsn -qq train`).
        _ => Err(launch::exec_tensor(&argv, &name)),
    });
}
