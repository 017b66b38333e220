//! One module per subcommand: its flags (clap) and the call into the library that does the work.

pub mod calibrate;
pub mod doctor;
pub mod ingest;
pub mod inspect;
pub mod model_info;
pub mod sample;
pub mod synth;
pub mod train;

use std::io::IsTerminal;

/// Flags shared by every subcommand.
pub struct Global {
    pub quiet: bool,
}

impl Global {
    /// Progress bars only for a person watching: not with `--quiet`, not into a pipe or file.
    pub fn progress(&self) -> bool {
        !self.quiet && std::io::stdout().is_terminal()
    }
}
