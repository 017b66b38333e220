//! Test support for the whole workspace, one copy of each helper: inputs in every dataset's
//! distributed layout (`fixtures`, `pickle`), images whose headers lie (`hostile`), small
//! ingested directories written with the real shard writer (`datasets`), the project venv's
//! Python for reference computations (`python`), and the largest allocation a call makes
//! (`alloc`). A dev-dependency only: nothing here ships in the `ncsn` binary.

pub mod alloc;
pub mod datasets;
pub mod fixtures;
pub mod hostile;
pub mod pickle;
pub mod python;
