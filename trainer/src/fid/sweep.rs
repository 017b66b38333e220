//! FID over a run's checkpoints, like the authors' `main.py --fast_fid` (the curves of the
//! paper's Figs. 4–5, and how its Table 1 checkpoint was chosen): which checkpoints a
//! `--ckpts BEGIN:END:STEP` range names ([`Range`], [`plan`]), and `WORKDIR/fid.jsonl`, one JSON
//! line per scored checkpoint ([`FidLine`], [`FidLog`]), from which a rerun skips what it has
//! already scored with the same settings and the best checkpoint is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use schemas::config::FastFid;

use super::{io_err, FidError, Result};
use crate::checkpoint::CHECKPOINT_DIR;

/// The log of a workdir's sweeps.
pub const FID_LOG: &str = "fid.jsonl";
/// FID against the training step, drawn from the log.
pub const FID_PLOT: &str = "fid.png";

/// `--ckpts BEGIN:END[:STEP]`, each part optional (`:` alone is every default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    pub begin: Option<u64>,
    pub end: Option<u64>,
    pub step: Option<u64>,
}

impl FromStr for Range {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || {
            format!(
                "`{s}` is not BEGIN:END[:STEP] (training steps, each part optional, e.g. \
                 5000:300000:5000 or 5000:)"
            )
        };
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let num = |p: &str| -> std::result::Result<Option<u64>, String> {
            if p.trim().is_empty() {
                Ok(None)
            } else {
                p.trim().parse().map(Some).map_err(|_| bad())
            }
        };
        let r = Range {
            begin: num(parts[0])?,
            end: num(parts[1])?,
            step: match parts.get(2) {
                Some(p) => num(p)?,
                None => None,
            },
        };
        if r.step == Some(0) {
            return Err(format!("`{s}`: STEP must be at least 1"));
        }
        Ok(r)
    }
}

/// The checkpoints a sweep scores, and the steps of its range that have none.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub begin: u64,
    pub end: u64,
    pub step: u64,
    /// (training step, `.safetensors` file), by step.
    pub checkpoints: Vec<(u64, PathBuf)>,
    /// Steps of the range without a checkpoint (pruned by `--keep-checkpoints`, not reached
    /// yet, or off the run's snapshot grid).
    pub missing: Vec<u64>,
}

/// Every complete checkpoint of a workdir (tensors and metadata both present), by step.
pub fn checkpoints(workdir: &Path) -> Result<BTreeMap<u64, PathBuf>> {
    let dir = workdir.join(CHECKPOINT_DIR);
    let mut found = BTreeMap::new();
    let entries = std::fs::read_dir(&dir).map_err(io_err(&dir))?;
    for entry in entries {
        let path = entry.map_err(io_err(&dir))?.path();
        let Some(step) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("ckpt_")?.strip_suffix(".safetensors"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        if crate::checkpoint::meta_path(&path).is_file() {
            found.insert(step, path);
        }
    }
    Ok(found)
}

/// The steps BEGIN, BEGIN+STEP, … ≤ END of `range`, its parts defaulting to the config's
/// `fast_fid.begin_ckpt`/`end_ckpt` (else the first/last checkpoint present) and to
/// `snapshot_freq` (the run's checkpoint spacing; the authors' code steps by 5 000), matched
/// against `present`. An empty match is an error naming the range and what is there.
pub fn plan(
    range: &Range,
    fast_fid: Option<&FastFid>,
    snapshot_freq: u64,
    present: &BTreeMap<u64, PathBuf>,
    workdir: &Path,
) -> Result<Plan> {
    let (first, last) = match (present.keys().next(), present.keys().next_back()) {
        (Some(&a), Some(&b)) => (a, b),
        _ => {
            return Err(FidError::Invalid(format!(
                "{}: no checkpoints",
                workdir.join(CHECKPOINT_DIR).display()
            )))
        }
    };
    let from = |given: Option<u64>, key: &str, config: Option<u64>, found: u64| match given {
        Some(v) => (v, "--ckpts".to_string()),
        None => match config {
            Some(v) => (v, format!("fast_fid.{key} of the run's config")),
            None => (found, format!("the {key} present")),
        },
    };
    let (begin, begin_from) = from(
        range.begin,
        "begin_ckpt",
        fast_fid.map(|f| f.begin_ckpt),
        first,
    );
    let (end, end_from) = from(range.end, "end_ckpt", fast_fid.map(|f| f.end_ckpt), last);
    if begin > end {
        return Err(FidError::Invalid(format!(
            "the sweep's range starts at step {begin} ({begin_from}) after it ends at {end} \
             ({end_from}): give --ckpts BEGIN:END"
        )));
    }
    let step = range.step.unwrap_or(snapshot_freq).max(1);
    let (mut checkpoints, mut missing) = (vec![], vec![]);
    let mut s = begin;
    loop {
        match present.get(&s) {
            Some(p) => checkpoints.push((s, p.clone())),
            None => missing.push(s),
        }
        match s.checked_add(step) {
            Some(next) if next <= end => s = next,
            _ => break,
        }
    }
    if checkpoints.is_empty() {
        return Err(FidError::Invalid(format!(
            "{}: no checkpoint at steps {begin}:{end}:{step} (present: {})",
            workdir.join(CHECKPOINT_DIR).display(),
            list(present.keys().copied())
        )));
    }
    Ok(Plan {
        begin,
        end,
        step,
        checkpoints,
        missing,
    })
}

/// Up to eight steps, then how many more.
pub fn list(steps: impl IntoIterator<Item = u64>) -> String {
    let steps: Vec<u64> = steps.into_iter().collect();
    let mut s = steps
        .iter()
        .take(8)
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if steps.len() > 8 {
        s.push_str(&format!(" and {} more", steps.len() - 8));
    }
    s
}

/// What makes two FIDs of one checkpoint comparable: a rerun skips a step scored with equal
/// settings (and the same checkpoint bytes), and the plot and the best checkpoint are taken
/// over the lines of the current settings only.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FidSettings {
    /// Samples scored.
    pub n: usize,
    pub seed: u64,
    /// The EMA weights (Technique 5) rather than the raw ones.
    pub ema: bool,
    /// ε and T of Algorithm 1, and its final denoising step.
    pub step_lr: f64,
    pub n_steps_each: usize,
    pub denoise: bool,
    /// Inception Score splits.
    pub is_splits: usize,
    /// The reference: sha256 of the statistics file, or `<manifest sha256>/<split>` of a
    /// dataset whose statistics were computed.
    pub reference_id: String,
    /// sha256 of the Inception weights file.
    pub weights_sha256: String,
}

/// One line of `fid.jsonl`: a checkpoint's scores.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FidLine {
    /// The checkpoint's training step.
    pub step: u64,
    pub fid: f64,
    /// Inception Score: mean ± std over `is_splits`.
    pub is: f64,
    pub is_std: f64,
    /// Wall time of sampling and scoring this checkpoint.
    pub seconds: f64,
    /// The checkpoint file, and the sha256 its metadata records (a retrained step differs).
    pub checkpoint: String,
    #[serde(default)]
    pub checkpoint_sha256: Option<String>,
    /// The reference as given (a path; `settings.reference_id` identifies it).
    pub reference: String,
    #[serde(flatten)]
    pub settings: FidSettings,
}

/// `WORKDIR/fid.jsonl`: rewritten whole (temporary file and rename) for every line, so a sweep
/// killed at any point leaves the lines of the checkpoints it finished and never half a line.
pub struct FidLog {
    path: PathBuf,
    lines: Vec<FidLine>,
}

impl FidLog {
    /// Reads the log of `workdir` (empty when there is none). A line that does not parse is an
    /// error naming the file and line: the rewrite would drop it.
    pub fn open(workdir: &Path) -> Result<FidLog> {
        let path = workdir.join(FID_LOG);
        let mut lines = vec![];
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
            for (k, l) in text.lines().enumerate() {
                if l.trim().is_empty() {
                    continue;
                }
                let line = serde_json::from_str(l).map_err(|e| {
                    FidError::Invalid(format!(
                        "{}:{}: not a line of an ncsn FID sweep ({e}); move the file away to \
                         start a new log",
                        path.display(),
                        k + 1
                    ))
                })?;
                lines.push(line);
            }
        }
        Ok(FidLog { path, lines })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn lines(&self) -> &[FidLine] {
        &self.lines
    }

    /// The line of `step` with `settings` and the checkpoint bytes `sha256`, if scored.
    pub fn done(
        &self,
        step: u64,
        settings: &FidSettings,
        sha256: Option<&str>,
    ) -> Option<&FidLine> {
        self.lines.iter().rev().find(|l| {
            l.step == step && l.settings == *settings && l.checkpoint_sha256.as_deref() == sha256
        })
    }

    /// Adds `line`, replacing an older line of its step and settings (a checkpoint of a
    /// retrained run), and writes the log.
    pub fn record(&mut self, line: FidLine) -> Result<()> {
        if !(line.fid.is_finite() && line.is.is_finite() && line.is_std.is_finite()) {
            return Err(FidError::Invalid(format!(
                "step {}: FID {} / IS {} ± {} is not a finite number; not written to {}",
                line.step,
                line.fid,
                line.is,
                line.is_std,
                self.path.display()
            )));
        }
        self.lines
            .retain(|l| !(l.step == line.step && l.settings == line.settings));
        self.lines.push(line);
        let mut text = String::new();
        for l in &self.lines {
            text.push_str(&serde_json::to_string(l).expect("FID lines serialize"));
            text.push('\n');
        }
        Ok(schemas::write_atomic(&self.path, text.as_bytes())?)
    }

    /// The lines of `settings`, one per step (the newest), by step: the FID curve.
    pub fn curve(&self, settings: &FidSettings) -> Vec<&FidLine> {
        let mut by_step: BTreeMap<u64, &FidLine> = BTreeMap::new();
        for l in self.lines.iter().filter(|l| l.settings == *settings) {
            by_step.insert(l.step, l);
        }
        by_step.into_values().collect()
    }

    /// The line of `settings` with the smallest FID (the earliest step on a tie).
    pub fn best(&self, settings: &FidSettings) -> Option<&FidLine> {
        self.curve(settings)
            .into_iter()
            .min_by(|a, b| a.fid.total_cmp(&b.fid).then(a.step.cmp(&b.step)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_with_optional_parts() {
        let r: Range = "5000:300000:5000".parse().unwrap();
        assert_eq!(
            r,
            Range {
                begin: Some(5000),
                end: Some(300000),
                step: Some(5000)
            }
        );
        assert_eq!(
            "10:".parse::<Range>().unwrap(),
            Range {
                begin: Some(10),
                ..Range::default()
            }
        );
        assert_eq!(":".parse::<Range>().unwrap(), Range::default());
        for bad in ["5000", "a:b", "1:2:3:4", "1:2:0", "-1:5"] {
            assert!(bad.parse::<Range>().is_err(), "{bad}");
        }
    }

    fn present(steps: &[u64]) -> BTreeMap<u64, PathBuf> {
        steps
            .iter()
            .map(|&s| (s, PathBuf::from(format!("ckpt_{s:08}.safetensors"))))
            .collect()
    }

    fn fast_fid(begin: u64, end: u64) -> FastFid {
        FastFid {
            batch_size: 10,
            num_samples: 100,
            step_lr: 1e-5,
            n_steps_each: 2,
            begin_ckpt: begin,
            end_ckpt: end,
            verbose: false,
            ensemble: false,
        }
    }

    #[test]
    fn plans_take_the_grid_and_name_the_gaps() {
        let w = Path::new("w");
        let p = plan(&Range::default(), None, 5, &present(&[5, 10, 20, 23]), w).unwrap();
        assert_eq!((p.begin, p.end, p.step), (5, 23, 5));
        let steps: Vec<u64> = p.checkpoints.iter().map(|c| c.0).collect();
        assert_eq!(steps, [5, 10, 20]);
        assert_eq!(p.missing, [15]);
        // The config's fast_fid range, and --ckpts over it.
        let f = fast_fid(10, 20);
        let p = plan(&Range::default(), Some(&f), 5, &present(&[5, 10, 20]), w).unwrap();
        assert_eq!((p.begin, p.end, p.missing.clone()), (10, 20, vec![15]));
        let r: Range = "5::10".parse().unwrap();
        let p = plan(&r, Some(&f), 5, &present(&[5, 10, 15]), w).unwrap();
        assert_eq!(p.checkpoints.len(), 2);
        assert_eq!(p.missing, Vec::<u64>::new());
        // The authors' ffhq.yml has begin_ckpt > end_ckpt.
        let err = plan(
            &Range::default(),
            Some(&fast_fid(100, 80)),
            5,
            &present(&[5]),
            w,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("step 100 (fast_fid.begin_ckpt") && err.contains("--ckpts"),
            "{err}"
        );
        let err = plan(&"1:4:1".parse().unwrap(), None, 5, &present(&[5, 10]), w)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no checkpoint at steps 1:4:1 (present: 5, 10)"),
            "{err}"
        );
    }

    fn line(step: u64, fid: f64, seed: u64) -> FidLine {
        FidLine {
            step,
            fid,
            is: 1.5,
            is_std: 0.1,
            seconds: 1.0,
            checkpoint: format!("ckpt_{step:08}.safetensors"),
            checkpoint_sha256: Some(format!("sha{step}")),
            reference: "stats.npz".into(),
            settings: FidSettings {
                n: 10,
                seed,
                ema: true,
                step_lr: 1e-5,
                n_steps_each: 2,
                denoise: true,
                is_splits: 10,
                reference_id: "abc".into(),
                weights_sha256: "def".into(),
            },
        }
    }

    #[test]
    fn the_log_skips_replaces_and_finds_the_best() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FidLog::open(dir.path()).unwrap();
        log.record(line(5, 40.0, 0)).unwrap();
        log.record(line(10, 30.0, 0)).unwrap();
        log.record(line(10, 10.0, 1)).unwrap();
        let log = FidLog::open(dir.path()).unwrap();
        let s0 = line(0, 0.0, 0).settings;
        assert!(log.done(5, &s0, Some("sha5")).is_some());
        assert!(log.done(5, &s0, Some("other")).is_none(), "retrained");
        assert!(log.done(15, &s0, Some("sha15")).is_none());
        assert_eq!(log.best(&s0).unwrap().step, 10);
        assert_eq!(log.best(&s0).unwrap().fid, 30.0, "not the other seed's");
        let mut log = log;
        let mut again = line(10, 20.0, 0);
        again.checkpoint_sha256 = Some("retrained".into());
        log.record(again).unwrap();
        assert_eq!(log.lines().len(), 3, "step 10 of seed 0 replaced");
        assert_eq!(log.curve(&s0).len(), 2);
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert!(text
            .lines()
            .next()
            .unwrap()
            .starts_with(r#"{"step":5,"fid":40.0,"is":1.5"#));
        assert!(log.record(line(15, f64::NAN, 0)).is_err());
        std::fs::write(log.path(), "{}\n").unwrap();
        let err = FidLog::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("fid.jsonl:1: not a line"), "{err}");
    }
}
