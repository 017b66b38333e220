//! Where the front-end finds libtorch for `ncsn-torch`, in order; the first directory holding
//! libtorch's libraries in the version tch needs wins:
//!
//! 1. `$LIBTORCH/lib` when `LIBTORCH` is set (a libtorch, or a torch package directory), and
//!    then only there: a wrong `LIBTORCH` is an error, not a silent fallback;
//! 2. beside the executable: `<bin>/../lib`, `<bin>/../libtorch/lib` (a relocated install);
//! 3. the setup's location baked in at build time (`<clone>/.libtorch/libtorch/lib`, symlinks
//!    into the clone's `.venv`), which `cargo install --path .` keeps pointing at
//!    ([`SETUP_OVERRIDE`] replaces it);
//! 4. each directory of `LD_LIBRARY_PATH`.
//!
//! `ncsn-torch`'s RUNPATH holds 2 and 3 (build.rs), so run directly it finds the same
//! libtorch. Nothing here imports Python: `python -c 'import torch'` costs a second per call.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Replaces step 3's directory, which is otherwise compiled in: for tests that need a build
/// whose setup has gone, and for a clone moved elsewhere.
pub const SETUP_OVERRIDE: &str = "NCSN_SETUP_LIBTORCH_LIB";

/// What `ncsn-torch` links (its NEEDED entries from libtorch).
const LIBRARIES: [&str; 3] = ["libtorch_cpu.so", "libtorch.so", "libc10.so"];

/// A libtorch directory and how it was found (for `ncsn doctor`).
pub struct Found {
    pub dir: PathBuf,
    pub how: String,
}

/// Looks in the places above; on failure the error is one line naming every place and why
/// each was not taken, and how to fix it.
pub fn find(exe_dir: &Path, what: &str) -> Result<Found, String> {
    let mut looked = vec![];
    for (dir, how) in candidates(exe_dir, std::env::var_os("LIBTORCH")) {
        match check(&dir) {
            Ok(real) => return Ok(Found { dir: real, how }),
            Err(why) => looked.push(format!("{} ({how}: {why})", dir.display())),
        }
    }
    let ld = std::env::var_os("LD_LIBRARY_PATH").unwrap_or_default();
    if std::env::var_os("LIBTORCH").is_none() {
        for dir in std::env::split_paths(&ld).filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(real) = check(&dir) {
                let how = format!("LD_LIBRARY_PATH ({})", dir.display());
                return Ok(Found { dir: real, how });
            }
        }
        looked.push(if ld.is_empty() {
            "LD_LIBRARY_PATH (unset)".to_string()
        } else {
            format!("LD_LIBRARY_PATH ({})", ld.to_string_lossy())
        });
    }
    let fix = match std::env::var_os("LIBTORCH") {
        Some(_) => "point LIBTORCH at a libtorch {version} directory, or unset it",
        None => "run `bash scripts/setup.sh` in the clone ncsn was built from, or set LIBTORCH to a libtorch {version} directory",
    };
    Err(format!(
        "{what} needs libtorch {version} and found none: looked in {}; {} (one with \
         lib/libtorch_cpu.so, such as the torch package's: python3 -c 'import torch, os; \
         print(os.path.dirname(torch.__file__))')",
        looked.join(", "),
        fix.replace("{version}", crate::cli::LIBTORCH_VERSION),
        version = crate::cli::LIBTORCH_VERSION,
    ))
}

/// The directories of steps 1-3, each with how it came to be looked at.
fn candidates(exe_dir: &Path, libtorch: Option<OsString>) -> Vec<(PathBuf, String)> {
    if let Some(root) = libtorch {
        return vec![(Path::new(&root).join("lib"), "LIBTORCH".into())];
    }
    let prefix = exe_dir.parent().unwrap_or(exe_dir);
    let mut dirs = vec![
        (prefix.join("lib"), "beside the executable".into()),
        (prefix.join("libtorch/lib"), "beside the executable".into()),
    ];
    let setup =
        std::env::var_os(SETUP_OVERRIDE).or(option_env!("NCSN_LIBTORCH_LIB").map(Into::into));
    if let Some(setup) = setup {
        dirs.push((setup.into(), "the setup's location, at build time".into()));
    }
    dirs
}

/// The directory's real path when it holds libtorch of the expected version; otherwise why
/// not. The real path, so that the wheel's `$ORIGIN/../../nvidia/...` RPATHs resolve.
fn check(dir: &Path) -> Result<PathBuf, String> {
    let real = dir
        .canonicalize()
        .map_err(|_| "no such directory".to_string())?;
    if let Some(missing) = LIBRARIES.iter().find(|l| !real.join(l).is_file()) {
        return Err(format!("no {missing}"));
    }
    match version(&real) {
        Some(v) if !v.starts_with(crate::cli::LIBTORCH_VERSION) => Err(format!("libtorch {v}")),
        _ => Ok(real),
    }
}

/// libtorch's version from the files beside `lib/`: `version.py` in a torch package,
/// `build-version` in a libtorch archive; `None` when neither says.
fn version(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        return text
            .lines()
            .find_map(|l| l.strip_prefix("__version__ = "))
            .map(|v| v.trim().trim_matches(['\'', '"']).to_string());
    }
    let text = std::fs::read_to_string(root.join("build-version")).ok()?;
    Some(text.trim().to_string()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_libtorch(root: &Path, version: &str) -> PathBuf {
        let lib = root.join("lib");
        std::fs::create_dir_all(&lib).unwrap();
        for l in LIBRARIES {
            std::fs::write(lib.join(l), b"").unwrap();
        }
        std::fs::write(
            root.join("version.py"),
            format!("__version__ = '{version}'\n"),
        )
        .unwrap();
        lib
    }

    #[test]
    fn a_directory_counts_only_with_every_library_in_the_right_version() {
        let tmp = tempfile::tempdir().unwrap();
        let good = fake_libtorch(&tmp.path().join("good"), "2.11.0+cu130");
        assert_eq!(check(&good).unwrap(), good.canonicalize().unwrap());
        let old = fake_libtorch(&tmp.path().join("old"), "2.5.1");
        assert_eq!(check(&old).unwrap_err(), "libtorch 2.5.1");
        std::fs::remove_file(good.join("libc10.so")).unwrap();
        assert_eq!(check(&good).unwrap_err(), "no libc10.so");
        assert_eq!(
            check(&tmp.path().join("none")).unwrap_err(),
            "no such directory"
        );
    }

    #[test]
    fn libtorch_set_is_the_only_place_looked() {
        let exe_dir = Path::new("/opt/ncsn/bin");
        let only = candidates(exe_dir, Some("/x/torch".into()));
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].0, Path::new("/x/torch/lib"));
        let all = candidates(exe_dir, None);
        assert_eq!(all[0].0, Path::new("/opt/ncsn/lib"));
        assert_eq!(all[1].0, Path::new("/opt/ncsn/libtorch/lib"));
    }
}
