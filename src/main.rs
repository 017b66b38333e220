//! `ncsn`: the one binary. It parses flags and calls the `pipeline`, `calibrate`, `trainer` and
//! `evaluate` libraries; behaviour lives there.

mod cmd;

use clap::{Parser, Subcommand};

/// Score-based generative models (NCSNv2), from raw datasets to samples.
///
/// The stages, in order:
///   1. `ingest`     raw dataset -> cropped/resized Parquet shards + _manifest.json
///   2. `calibrate`  shards -> calibration.json (sigma_1, gamma, L, epsilon; paper Techniques 1-4)
///   3. `train`      shards + config (+ calibration) -> checkpoints (EMA, Adam, exact resume)
///   4. `sample`     checkpoint -> PNG grid of annealed Langevin samples
///   5. `fid-stats`, `fid`  reference statistics of the data; FID and Inception Score of samples
///   6. `export`     shards -> WebDataset tars for other trainers (`inspect`: what they hold)
///
/// Start with `ncsn doctor` if something does not work.
#[derive(Parser)]
#[command(name = "ncsn", version, about, long_about, verbatim_doc_comment)]
struct Cli {
    /// No progress bars (they are also off when stdout is not a terminal) and no notes.
    #[arg(long, short, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Ingest(cmd::ingest::Args),
    Inspect(cmd::inspect::Args),
    Export(cmd::export::Args),
    Calibrate(cmd::calibrate::Args),
    Train(cmd::train::Args),
    Sample(cmd::sample::Args),
    FidStats(cmd::fid_stats::Args),
    #[command(visible_alias = "evaluate")]
    Fid(cmd::fid::Args),
    Neighbours(cmd::neighbours::Args),
    ModelInfo(cmd::model_info::Args),
    Doctor(cmd::doctor::Args),
    Synth(cmd::synth::Args),
}

fn main() {
    // A reader that stops early (`ncsn inspect DIR | head`) ends ncsn the way it ends any Unix
    // filter, by SIGPIPE, rather than as a "Broken pipe" panic (exit 101): Rust starts
    // programs with SIGPIPE ignored, so every `println!` into the closed pipe would panic.
    // SAFETY: restoring the default disposition at start-up, before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let global = cmd::Global { quiet: cli.quiet };
    let result = match cli.command {
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
    };
    if let Err(err) = result {
        eprintln!("error: {}", one_line(&err));
        std::process::exit(1);
    }
}

/// The cause chain joined into one line, so scripts and people see what and where. Library
/// errors often already print their source (`file: No such file`), so a cause whose text the
/// line already ends with is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}
