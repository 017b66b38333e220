//! One module per subcommand: its flags (clap) and the call into the library that does the work.
//! A new subcommand is also one variant in src/cli.rs (inside `tensor!(...)` when it needs
//! libtorch) and one line in the dispatch of src/ncsn_torch.rs (and src/main.rs if light).

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

pub use crate::cli::Global;
