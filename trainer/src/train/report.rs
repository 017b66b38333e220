//! The plain progress line of a run whose stderr is a log rather than a terminal (a batch job):
//! `step 1200/300000  loss 0.0123  2.1 steps/s  eta 1d 3h`, every `print_every` steps.

use std::time::Instant;

/// Steps per second over the steps since the previous line, and the ETA at that rate.
pub(super) struct StepLine {
    n_iters: u64,
    since: Instant,
    since_step: u64,
}

impl StepLine {
    /// Starting at `step` (not 0 after a resume).
    pub(super) fn new(step: u64, n_iters: u64) -> Self {
        Self {
            n_iters,
            since: Instant::now(),
            since_step: step,
        }
    }

    /// The line for `step` (loss of that step); the next line's rate counts from here.
    pub(super) fn line(&mut self, step: u64, loss: f64) -> String {
        let secs = self.since.elapsed().as_secs_f64();
        let rate = (step - self.since_step) as f64 / secs.max(1e-9);
        (self.since, self.since_step) = (Instant::now(), step);
        format_line(step, self.n_iters, loss, rate)
    }
}

fn format_line(step: u64, n_iters: u64, loss: f64, rate: f64) -> String {
    let eta = if rate > 0.0 {
        progress::duration(n_iters.saturating_sub(step) as f64 / rate)
    } else {
        "-".into()
    };
    format!("step {step}/{n_iters}  loss {loss:.4}  {rate:.2} steps/s  eta {eta}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_a_log_line() {
        assert_eq!(
            format_line(1200, 300_000, 0.012_34, 2.1),
            "step 1200/300000  loss 0.0123  2.10 steps/s  eta 1d 15h"
        );
        assert_eq!(
            format_line(10, 10, 1.0, 0.0),
            "step 10/10  loss 1.0000  0.00 steps/s  eta -"
        );
    }
}
