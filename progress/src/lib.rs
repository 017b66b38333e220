//! The progress bars of every ncsn command (ingest, synth, inspect, calibrate, train, sample):
//! one look, and one rule for when they are drawn.
//!
//! Libraries take a `visible: bool` (their options' `progress`) and build their bar here; the
//! binary decides it once with [`visible`]. A hidden bar still counts, so callers and tests
//! never branch on whether it is shown.

use std::borrow::Cow;
use std::io::IsTerminal;

pub use indicatif::ProgressBar;
use indicatif::{ProgressDrawTarget, ProgressStyle};

/// Whether to draw progress (SPEC: off with `--quiet` or when stdout is not a terminal): only
/// for a person watching, never into a pipe, a log file or a test's captured output.
pub fn visible(quiet: bool) -> bool {
    !quiet && std::io::stdout().is_terminal()
}

/// A bar counting to `total` `unit`s (plain words: "images", "Langevin steps"), drawn on stderr
/// when `visible`. Its message, set by the caller, says what is being done:
/// `ingest cifar10 [=====>    ] 12,288/60,000 images (4,096.0000/s, ETA 12s, 3s)`.
pub fn bar(total: u64, visible: bool, unit: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), target(visible));
    bar.set_style(bar_style(unit));
    bar
}

/// A spinner showing `msg` (updated by the caller as work of unknown length goes on).
pub fn spinner(msg: impl Into<Cow<'static, str>>, visible: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target(visible));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
    );
    bar.set_message(msg);
    bar
}

fn target(visible: bool) -> ProgressDrawTarget {
    if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

fn bar_style(unit: &str) -> ProgressStyle {
    assert!(
        !unit.contains(['{', '}']),
        "a progress unit is plain words, not a template: {unit:?}"
    );
    let sep = if unit.is_empty() { "" } else { " " };
    ProgressStyle::with_template(&format!(
        "{{msg}} [{{bar:40}}] {{human_pos}}/{{human_len}}{sep}{unit} \
         ({{per_sec}}, ETA {{eta}}, {{elapsed}})"
    ))
    .expect("valid template")
    .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_bar_still_counts() {
        let b = bar(6, false, "Langevin steps");
        assert!(b.is_hidden());
        b.inc(2);
        b.set_message("sampling");
        assert_eq!((b.position(), b.length()), (2, Some(6)));
        b.finish_and_clear();
        let s = spinner("verifying", false);
        assert!(s.is_hidden());
        assert_eq!(s.message(), "verifying");
    }

    #[test]
    fn quiet_always_hides() {
        assert!(!visible(true));
    }

    #[test]
    fn any_plain_unit_makes_a_valid_style() {
        for unit in ["", "images", "Langevin steps", "blocks"] {
            bar(10, false, unit);
        }
    }
}
