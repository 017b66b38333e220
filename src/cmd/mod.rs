//! One module per subcommand: its flags (clap) and the call into the library that does the work.

pub mod calibrate;
pub mod doctor;
pub mod export;
pub mod fid;
pub mod fid_stats;
pub mod ingest;
pub mod inspect;
pub mod model_info;
pub mod neighbours;
pub mod sample;
pub mod synth;
pub mod train;

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
