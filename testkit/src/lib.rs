//! Test support for the whole workspace, one copy of each helper: inputs in every dataset's
//! distributed layout (`fixtures`, `pickle`), small ingested directories written with the real
//! shard writer (`datasets`), and the project venv's Python for reference computations
//! (`python`). A dev-dependency only: nothing here ships in the `ncsn` binary.

pub mod datasets;
pub mod fixtures;
pub mod pickle;
pub mod python;
