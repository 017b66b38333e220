//! The host's reads of the device (issue 16: no host sync per step). Reading a value computed
//! on a GPU makes the host wait for every kernel queued before it, so a step's loss, the σ
//! statistics of its metrics line and its per-sample losses stay on the device, and
//! [`Readout::read`] fetches the values of all unread steps in one copy every
//! `--sync-every` steps, before every checkpoint and at the end. The first step whose loss is
//! not finite is then named with its σ exactly as a per-step check would ([`non_finite`]):
//! the steps after it ran on diverged weights, but nothing of them is ever saved, because a
//! checkpoint is only written after a read. On the CPU the same code runs (reading every step
//! by default, where it costs nothing); the tests read every k steps to cover the deferral.

use std::path::Path;

use progress::ProgressBar;
use tch::{Device, Kind, Tensor};

use super::error::{io_err, non_finite};
use super::report::StepLine;
use super::Result;
use crate::loader::Shard;
use crate::metrics::{MetricsLog, Record};

/// One step run on the device, its values not read yet.
struct Unread {
    step: u64,
    /// The mean loss, 0-d float32.
    loss: Tensor,
    /// Per-sample losses and σ indices, to name the first bad sample if the loss is not finite.
    per_sample: Tensor,
    y: Tensor,
    /// The step's metrics line when it writes one: the host's fields, and the mean, min and
    /// max of the σs it used, on the device.
    record: Option<(Record, Tensor)>,
}

/// The unread steps, and what the host made of the read ones.
pub(super) struct Readout {
    unread: Vec<Unread>,
    /// (step, loss) of every step read, the loss as computed (float32).
    pub losses: Vec<(u64, f32)>,
    /// The plain progress line of a log, every `print_every` steps.
    lines: Option<StepLine>,
    print_every: u64,
    n_iters: u64,
    /// This process's rows of each batch (to name a bad sample by its place in the batch).
    shard: Shard,
}

impl Readout {
    pub fn new(lines: Option<StepLine>, print_every: u64, n_iters: u64, shard: Shard) -> Self {
        Self {
            unread: vec![],
            losses: vec![],
            lines,
            print_every,
            n_iters,
            shard,
        }
    }

    /// Keeps step `step`'s values on the device; `record` is its metrics line (host fields)
    /// and the σs its batch used, when it writes one.
    pub fn push(
        &mut self,
        step: u64,
        loss: &Tensor,
        per_sample: &Tensor,
        y: &Tensor,
        record: Option<(Record, Tensor)>,
    ) {
        let record = record.map(|(r, used)| {
            let stats = Tensor::stack(&[used.mean(Kind::Float), used.min(), used.max()], 0);
            (r, stats)
        });
        self.unread.push(Unread {
            step,
            loss: loss.detach(),
            per_sample: per_sample.detach(),
            y: y.shallow_clone(),
            record,
        });
    }

    /// Reads every unread step in one device→host copy, then writes their metrics lines,
    /// progress lines and the bar's loss. The first non-finite loss is an error naming its
    /// step and σ (`sigmas` as the config lists them). `log`: `None` on the ranks of a
    /// data-parallel run that do not write (all but rank 0).
    pub fn read(
        &mut self,
        sigmas: &[f64],
        mut log: Option<&mut MetricsLog>,
        metrics_path: &Path,
        bar: &ProgressBar,
    ) -> Result<()> {
        if self.unread.is_empty() {
            return Ok(());
        }
        let steps = std::mem::take(&mut self.unread);
        // Losses first, then three σ statistics per metrics line, as float64 (exact from
        // float32, the values `double_value` gives).
        let mut parts: Vec<Tensor> = steps.iter().map(|s| s.loss.reshape([1])).collect();
        parts.extend(
            steps
                .iter()
                .filter_map(|s| Some(s.record.as_ref()?.1.shallow_clone())),
        );
        let values = Tensor::cat(&parts, 0)
            .to_kind(Kind::Double)
            .to_device(Device::Cpu);
        let values = Vec::<f64>::try_from(&values).expect("float64 values to the host");
        let (losses, mut stats) = values.split_at(steps.len());
        if let Some(k) = losses.iter().position(|l| !l.is_finite()) {
            let bad = &steps[k];
            return Err(non_finite(
                bad.step,
                losses[k],
                &bad.per_sample,
                &bad.y,
                sigmas,
                self.shard,
            ));
        }
        for (s, &loss) in steps.into_iter().zip(losses) {
            self.losses.push((s.step, loss as f32));
            if let Some((mut r, _)) = s.record {
                r.loss = Some(loss);
                (r.sigma_mean, r.sigma_min, r.sigma_max) =
                    (Some(stats[0]), Some(stats[1]), Some(stats[2]));
                stats = &stats[3..];
                if let Some(log) = log.as_deref_mut() {
                    log.write(&r).map_err(io_err(metrics_path))?;
                }
            }
            bar.set_message(format!("loss {loss:.4}"));
            if let Some(l) = &mut self.lines {
                if s.step.is_multiple_of(self.print_every) || s.step == self.n_iters {
                    eprintln!("{}", l.line(s.step, loss));
                }
            }
        }
        Ok(())
    }
}
