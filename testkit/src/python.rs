//! The reference Python (Pillow, numpy, pyarrow, torch, scipy) that parity tests compare
//! against: the project venv that `scripts/setup.sh` creates, or `NCSN_PYTHON`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The project venv's Python, or `NCSN_PYTHON`; panics with the fix when neither exists.
pub fn python() -> PathBuf {
    let py = std::env::var_os("NCSN_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    assert!(
        py.exists(),
        "{} not found: run scripts/setup.sh (it creates the venv with torch, Pillow, pyarrow, \
         numpy and scipy), or set NCSN_PYTHON",
        py.display()
    );
    py
}

/// The workspace's root directory (where `configs/`, `scripts/` and `.venv/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the workspace root")
        .to_path_buf()
}

/// stdout of `python -c CODE ARGS`, which must succeed (its stderr is shown otherwise).
pub fn py<A: AsRef<OsStr>>(code: &str, args: &[A]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python printed UTF-8")
}
