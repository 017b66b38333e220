//! The workdir a run writes, claimed before any work: locked for this run alone
//! ([`DirLock`]: a second `ncsn train` on it is refused at once, naming the first), refused
//! when it holds a previous run's results unless `--resume` continues them or `--overwrite`
//! deletes them, and described by `run.json` ([`TrainRun`]): the data's identity and the
//! shuffle buffer, written when the run starts and checked by every `--resume`, since the
//! loader's batches depend on both.

use std::path::Path;

use schemas::checkpoint::{TrainRun, RUN_FILE};
use schemas::output::DirLock;
use schemas::{JsonDocument, SCHEMA_VERSION};
use shards::Dataset;

use super::error::io_err;
use super::{Result, TrainError, TrainOptions};
use crate::checkpoint::{self, CHECKPOINT_DIR};

/// The results a run writes into its workdir: a fresh run refuses a workdir holding any of
/// them, and `--overwrite` deletes them. (`config.yml` and `run.json` are rewritten by every
/// start.)
pub(super) const RESULTS: [&str; 7] = [
    CHECKPOINT_DIR,
    "samples",
    "metrics.jsonl",
    "loss.png",
    super::TENSORBOARD_DIR,
    // A sweep's scores of this run's checkpoints (`ncsn fid --ckpts`).
    crate::fid::sweep::FID_LOG,
    crate::fid::sweep::FID_PLOT,
];

/// The workdir of `opts`, claimed for a run on `ds`; the lock is held until the value drops.
pub(super) fn claim(opts: &TrainOptions, ds: &Dataset) -> Result<DirLock> {
    let work = &opts.workdir;
    let lock = DirLock::exclusive(work, "ncsn train")?;
    let found: Vec<&str> = RESULTS
        .into_iter()
        .filter(|name| holds(&work.join(name)))
        .collect();
    let run = TrainRun {
        schema_version: SCHEMA_VERSION,
        data: opts.data.display().to_string(),
        data_manifest_sha256: shards::sha256_file(&ds.manifest_path())?.0,
        shuffle_buffer: opts.shuffle_buffer,
    };
    let run_file = work.join(RUN_FILE);
    if opts.resume {
        if run_file.is_file() {
            check_same_inputs(&TrainRun::read(&run_file)?, &run, &run_file)?;
        } else if checkpoint::latest(&work.join(CHECKPOINT_DIR))?.is_some() {
            // A workdir from an ncsn without run.json: what it resumes on from now on.
            run.write_atomic(&run_file)?;
        }
        return Ok(lock);
    }
    if !found.is_empty() {
        if !opts.overwrite {
            return Err(TrainError::Config(format!(
                "{}: holds a previous run ({}): pass --resume to continue it, --overwrite to \
                 delete it and start over, or choose a new --workdir",
                work.display(),
                found.join(", ")
            )));
        }
        for name in found {
            let p = work.join(name);
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            removed.map_err(io_err(&p))?;
        }
    }
    run.write_atomic(&run_file)?;
    Ok(lock)
}

/// Whether `path` is a file, or a directory with something in it.
fn holds(path: &Path) -> bool {
    if path.is_dir() {
        std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some())
    } else {
        path.exists()
    }
}

/// A resumed run must read the same shards with the same shuffle buffer as its start did.
fn check_same_inputs(started: &TrainRun, now: &TrainRun, file: &Path) -> Result<()> {
    if started.data_manifest_sha256 != now.data_manifest_sha256 {
        return Err(TrainError::Config(format!(
            "{}: --resume with --data {} (manifest sha256 {}), but this run started on {} \
             (manifest sha256 {}); exact resume needs the same shards: pass that --data, or \
             start over in a new --workdir",
            file.display(),
            now.data,
            short(&now.data_manifest_sha256),
            started.data,
            short(&started.data_manifest_sha256)
        )));
    }
    if started.shuffle_buffer != now.shuffle_buffer {
        return Err(TrainError::Config(format!(
            "{}: --resume with --shuffle-buffer {}, but this run started with --shuffle-buffer \
             {}; exact resume needs the same value",
            file.display(),
            now.shuffle_buffer,
            started.shuffle_buffer
        )));
    }
    Ok(())
}

/// The first 12 hex digits of a sha256, enough to tell two manifests apart in a message.
fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &str, sha: &str, shuffle_buffer: usize) -> TrainRun {
        TrainRun {
            schema_version: SCHEMA_VERSION,
            data: data.into(),
            data_manifest_sha256: sha.into(),
            shuffle_buffer,
        }
    }

    #[test]
    fn other_data_or_shuffle_buffer_is_named_with_both_values() {
        let f = Path::new("w/run.json");
        let started = run("data/a", "aaaaaaaaaaaaaaaa", 100);
        check_same_inputs(&started, &run("copy/of/a", "aaaaaaaaaaaaaaaa", 100), f).unwrap();
        let err = check_same_inputs(&started, &run("data/b", "bbbbbbbbbbbbbbbb", 100), f)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--data data/b (manifest sha256 bbbbbbbbbbbb)")
                && err.contains("started on data/a (manifest sha256 aaaaaaaaaaaa)"),
            "{err}"
        );
        let err = check_same_inputs(&started, &run("data/a", "aaaaaaaaaaaaaaaa", 7), f)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--shuffle-buffer 7") && err.contains("--shuffle-buffer 100"),
            "{err}"
        );
    }
}
