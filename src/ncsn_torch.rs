//! `ncsn-torch`: every subcommand, linked against libtorch. The `ncsn` front-end execs it with
//! the user's arguments for the subcommands that need tensors, having found libtorch (its
//! LD_LIBRARY_PATH); run directly, it finds libtorch through its RUNPATH (build.rs). The
//! flags are parsed here, so `ncsn train --help` is this binary's.

/// Here a tensor subcommand's flags are its own (see src/cli.rs).
macro_rules! tensor {
    ($args:ty) => {
        $args
    };
}

mod cli;
mod cmd;

use clap::Parser;
use cli::{Cli, Command};

// The front-end checks the libtorch it finds against this version.
const _: () = assert!(
    same(cli::LIBTORCH_VERSION, torchrt::doctor::EXPECTED_LIBTORCH),
    "cli::LIBTORCH_VERSION differs from torchrt's EXPECTED_LIBTORCH"
);

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

fn main() {
    cli::restore_sigpipe();
    let cli = Cli::parse();
    let global = cmd::Global { quiet: cli.quiet };
    // The commands that run networks flush denormal floats to zero, as TensorFlow does by
    // default and `torch.set_flush_denormal(True)` does: on x86 every denormal operand costs
    // a ~100-cycle microcode assist, and ELU's backward pass and Adam's second moments make
    // many (the CIFAR-10 training step on 2 CPU threads took 4.1-4.6 s with them, 3.3-3.6 s
    // without; BENCHMARKS.md). Only values below 1.2e-38 change. It is set here, before
    // libtorch starts its thread pool, because threads inherit the mode when created.
    // Calibration, whose exactness arguments are about integers and f64 tails, is left alone.
    if matches!(
        cli.command,
        Command::Train(_)
            | Command::Sample(_)
            | Command::FidStats(_)
            | Command::Fid(_)
            | Command::Neighbours(_)
    ) {
        torchrt::accel::set_flush_denormal(true);
        torchrt::accel::keep_freed_memory();
    }
    cli::exit_on_error(match cli.command {
        Command::Ingest(a) => cmd::ingest::run(a, &global),
        Command::Inspect(a) => cmd::inspect::run(a, &global),
        Command::Export(a) => cmd::export::run(a, &global),
        Command::Calibrate(a) => cmd::calibrate::run(a, &global),
        Command::Train(a) => cmd::train::run(a, &global),
        Command::Sample(a) => cmd::sample::run(a, &global),
        Command::FidStats(a) => cmd::fid_stats::run(a, &global),
        Command::Fid(a) => cmd::fid::run(a, &global),
        Command::Neighbours(a) => cmd::neighbours::run(a, &global),
        Command::ModelInfo(a) => cmd::model_info::run(a, &global),
        Command::Doctor(a) => cmd::doctor::run(a, &global),
        Command::Synth(a) => cmd::synth::run(a, &global),
    });
}
