//! Training metrics: `WORKDIR/metrics.jsonl`, one JSON object per logged step (drawn as a loss
//! curve by [`crate::plot`]), and the same values as TensorBoard scalars in `WORKDIR/tb/`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::tensorboard::EventWriter;

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub step: u64,
    /// Mean DSM loss of the batch (Eq. 2); absent on test-only lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Test loss of the EMA model on a fixed held-out batch (App. C.5.1), at snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Share of the wall time since the previous line spent waiting for the loader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_wait: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// FID of the EMA model's samples against the data's statistics, at snapshots with
    /// `--fid-samples` (the paper's curves, §4 Figs. 4–5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<f64>,
    /// Inception Score (mean ± std over 10 splits) of the same samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inception_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inception_score_std: Option<f64>,
    /// Seconds since this run (or resumed run) started.
    pub time: f64,
}

/// Appends records to `metrics.jsonl`.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
    tensorboard: Option<Scalars>,
}

/// The TensorBoard side of the log: its event file, and the (step, time) of the previous
/// training line, for `train/steps_per_sec`.
struct Scalars {
    events: EventWriter,
    previous: Option<(u64, f64)>,
}

impl MetricsLog {
    /// Opens the log. `keep_until = Some(step)` (a resumed run) first drops the lines after
    /// `step`, written by the interrupted run past its last checkpoint, so the log and the
    /// checkpoint tell the same story; `None` starts an empty log.
    pub fn open(path: &Path, keep_until: Option<u64>) -> std::io::Result<Self> {
        let kept: Vec<String> = match keep_until {
            Some(step) if path.exists() => std::io::BufReader::new(std::fs::File::open(path)?)
                .lines()
                .collect::<std::io::Result<Vec<_>>>()?
                .into_iter()
                .filter(|l| serde_json::from_str::<Record>(l).is_ok_and(|r| r.step <= step))
                .collect(),
            _ => vec![],
        };
        let mut text = kept.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        schemas::write_atomic(path, text.as_bytes()).map_err(std::io::Error::other)?;
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            tensorboard: None,
        })
    }

    /// Also writes every record as TensorBoard scalars, to a new event file in `dir`;
    /// `resumed_at` as for [`EventWriter::create`].
    pub fn with_tensorboard(
        mut self,
        dir: &Path,
        resumed_at: Option<u64>,
    ) -> std::io::Result<Self> {
        self.tensorboard = Some(Scalars {
            events: EventWriter::create(dir, resumed_at)?,
            previous: None,
        });
        Ok(self)
    }

    /// The TensorBoard event file this log also writes, if any.
    pub fn tensorboard_path(&self) -> Option<&Path> {
        self.tensorboard.as_ref().map(|t| t.events.path())
    }

    pub fn write(&mut self, r: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_string(r).expect("records serialize");
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        let Some(tb) = &mut self.tensorboard else {
            return Ok(());
        };
        let mut values = vec![];
        let fields = [
            ("train/loss", r.loss),
            ("test/loss", r.test_loss),
            ("train/sigma_mean", r.sigma_mean),
            ("train/sigma_min", r.sigma_min),
            ("train/sigma_max", r.sigma_max),
            ("train/lr", r.lr),
            ("train/data_wait", r.data_wait),
            ("train/epoch", r.epoch.map(|e| e as f64)),
            ("eval/fid", r.fid),
            ("eval/inception_score", r.inception_score),
        ];
        values.extend(fields.into_iter().filter_map(|(tag, v)| Some((tag, v?))));
        if r.loss.is_some() {
            if let Some((step, time)) = tb.previous {
                if r.step > step && r.time > time {
                    values.push((
                        "train/steps_per_sec",
                        (r.step - step) as f64 / (r.time - time),
                    ));
                }
            }
            tb.previous = Some((r.step, r.time));
        }
        tb.events.scalars(r.step, &values)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Every record of a `metrics.jsonl` (lines that do not parse are skipped).
pub fn read(path: &Path) -> std::io::Result<Vec<Record>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: u64) -> Record {
        Record {
            step,
            loss: Some(10.0 / step as f64),
            ..Default::default()
        }
    }

    #[test]
    fn resumed_log_drops_lines_past_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.jsonl");
        let mut log = MetricsLog::open(&p, None).unwrap();
        for step in 1..=5 {
            log.write(&record(step)).unwrap();
        }
        drop(log);
        let _log = MetricsLog::open(&p, Some(3)).unwrap();
        let steps: Vec<u64> = read(&p).unwrap().iter().map(|r| r.step).collect();
        assert_eq!(steps, [1, 2, 3]);
    }
}
