//! ncsn's command line, defined once and compiled into both binaries: `ncsn` (src/main.rs, the
//! front-end, which links no libtorch) and `ncsn-torch` (src/ncsn_torch.rs, every subcommand).
//!
//! A subcommand is one variant of [`Command`]. One that needs libtorch wraps its flags in
//! `tensor!(...)` and states its one-line summary in `about`: `ncsn-torch` defines
//! `tensor!(T)` as `T`, while `ncsn` defines it as [`Passthrough`] and, without compiling those
//! flags (their defaults come from the tch crates), lists the command in `ncsn --help` and
//! hands its arguments to `ncsn-torch` untouched. tests/cli.rs checks that each summary begins
//! the command's own `--help`.

use clap::{Parser, Subcommand};

/// Score-based generative models (NCSNv2), from raw datasets to samples.
///
/// The stages, in order:
///   1. `ingest`     raw dataset -> cropped/resized Parquet shards + _manifest.json
///   2. `calibrate`  shards -> calibration.json (sigma_1, gamma, L, epsilon; paper Techniques 1-4)
///   3. `train`      shards + config (+ calibration) -> checkpoints (EMA, Adam, exact resume)
///   4. `sample`     checkpoint -> PNG grid of annealed Langevin samples
///   5. `fid-stats`, `fid`  data statistics; FID and IS of samples, a checkpoint or a sweep
///   6. `neighbours` the nearest training images of samples (memorisation check, App. C.5.2)
///   7. `export`     shards -> WebDataset tars for other trainers (`inspect`: what they hold)
///
/// Start with `ncsn doctor` if something does not work.
#[derive(Parser)]
#[command(name = "ncsn", version, about, long_about, verbatim_doc_comment)]
pub struct Cli {
    /// No progress bars (they are also off when stdout is not a terminal) and no notes.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    Ingest(crate::cmd::ingest::Args),
    Inspect(crate::cmd::inspect::Args),
    Export(crate::cmd::export::Args),
    #[command(
        about = "Compute the noise scales and Langevin step size that configure NCSNv2 for a dataset."
    )]
    Calibrate(tensor!(crate::cmd::calibrate::Args)),
    #[command(
        about = "Train a score network with denoising score matching (Eq. 2), Adam and an EMA of \
                 the weights (Technique 5), streaming the shards of `ncsn ingest`."
    )]
    Train(tensor!(crate::cmd::train::Args)),
    #[command(about = "Draw samples from a trained score network with annealed Langevin dynamics")]
    Sample(tensor!(crate::cmd::sample::Args)),
    #[command(about = "FID reference statistics of a split of an `ncsn ingest` directory.")]
    FidStats(tensor!(crate::cmd::fid_stats::Args)),
    #[command(
        visible_alias = "evaluate",
        about = "FID and Inception Score of samples, as pytorch-fid and the original IS code \
                 compute them."
    )]
    Fid(tensor!(crate::cmd::fid::Args)),
    #[command(
        about = "The nearest training images of samples, to see whether a model memorises \
                 (App. C.5.2)."
    )]
    Neighbours(tensor!(crate::cmd::neighbours::Args)),
    #[command(
        about = "Print the score network a config builds (paper Tables 2–3): the architecture \
                 chosen like the authors' get_model (CIFAR10/CELEBA → NCSNv2, LSUN → \
                 NCSNv2Deeper, FFHQ → NCSNv2Deepest; `model.arch` overrides), one row per \
                 module with its output shape and parameter count, and the total"
    )]
    ModelInfo(tensor!(crate::cmd::model_info::Args)),
    #[command(
        about = "Print versions (ncsn, tch, libtorch), where libtorch was loaded from and how it \
                 was found, and what CUDA sees"
    )]
    Doctor(tensor!(crate::cmd::doctor::Args)),
    Synth(crate::cmd::synth::Args),
}

/// Flags shared by every subcommand.
pub struct Global {
    pub quiet: bool,
}

impl Global {
    /// Progress unless --quiet: bars on a terminal, plain lines in a log (the one rule:
    /// [`progress::visible`]).
    pub fn progress(&self) -> bool {
        progress::visible(self.quiet)
    }
}

/// What both binaries do first. A reader that stops early (`ncsn inspect DIR | head`) ends
/// ncsn the way it ends any Unix filter, by SIGPIPE, rather than as a "Broken pipe" panic
/// (exit 101): Rust starts programs with SIGPIPE ignored, so every `println!` into the closed
/// pipe would panic.
pub fn restore_sigpipe() {
    // SAFETY: restoring the default disposition at start-up, before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// How every subcommand ends on an error: exit 1 with one line.
pub fn exit_on_error(result: anyhow::Result<()>) {
    if let Err(err) = result {
        eprintln!("error: {}", one_line(&err));
        std::process::exit(1);
    }
}

/// The cause chain joined into one line, so scripts and people see what and where. Library
/// errors often already print their source (`file: No such file`), so a cause whose text the
/// line already ends with is not repeated.
pub fn one_line(err: &anyhow::Error) -> String {
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

/// The libtorch release tch 0.24 is built for (`ncsn-torch` checks at compile time that it is
/// torchrt's `EXPECTED_LIBTORCH`); the front-end takes no other.
pub const LIBTORCH_VERSION: &str = "2.11.0";

/// Environment the front-end sets for `ncsn-torch`: where it found libtorch and how, which
/// `ncsn doctor` reports.
pub const ENV_LIBTORCH_FOUND: &str = "NCSN_LIBTORCH_FOUND";
