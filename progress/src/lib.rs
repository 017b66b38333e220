//! The progress reports of every ncsn command (ingest, synth, inspect, calibrate, train,
//! sample): one look, and one rule for when and how they are shown.
//!
//! Libraries take a `visible: bool` (their options' `progress`) and build their bar here; the
//! binary decides it once with [`visible`]. Where the report goes is decided here, from stderr:
//! on a terminal, bars redrawn in place; anywhere else (a batch job's log file, a pipe) a plain
//! line every [`LINE_INTERVAL`], which a log keeps readable. A hidden bar still counts, so
//! callers and tests never branch on whether it is shown.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use indicatif::ProgressBar;
use indicatif::{ProgressDrawTarget, ProgressStyle, TermLike};

/// How often a bar reports as a plain line when stderr is not a terminal.
pub const LINE_INTERVAL: Duration = Duration::from_secs(10);

/// Whether to report progress (SPEC: off with `--quiet`). Bars or plain lines, on stderr: see
/// [`on_terminal`].
pub fn visible(quiet: bool) -> bool {
    !quiet
}

/// Whether stderr, where progress goes, is a terminal: bars there, plain lines otherwise. (Not
/// stdout: `ncsn train > summary.txt` in a terminal still wants its bar.)
pub fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar counting to `total` `unit`s (plain words: "images", "Langevin steps"), drawn on stderr
/// when `visible`. Its message, set by the caller, says what is being done:
/// `ingest cifar10 [=====>    ] 12,288/60,000 images (4,096.0000/s, ETA 12s, 3s)`.
pub fn bar(total: u64, visible: bool, unit: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), target(visible));
    bar.set_style(bar_style(unit, visible && !on_terminal()));
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
    if !visible {
        ProgressDrawTarget::hidden()
    } else if on_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        // Rendered at most once a second; `Lines` keeps one render per LINE_INTERVAL.
        let lines = Lines::new(Box::new(std::io::stderr()), LINE_INTERVAL);
        ProgressDrawTarget::term_like_with_hz(Box::new(lines), 1)
    }
}

/// A draw target for logs: of indicatif's redraws it writes the rendered line as a line of its
/// own, at most once per `every` (the first after `every` has passed), and ignores the cursor
/// moves and clearing that animate a terminal.
#[derive(Debug)]
struct Lines {
    every: Duration,
    state: Mutex<LinesState>,
}

struct LinesState {
    out: Box<dyn Write + Send>,
    pending: String,
    last: Instant,
}

impl std::fmt::Debug for LinesState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinesState")
            .field("last", &self.last)
            .finish()
    }
}

impl Lines {
    fn new(out: Box<dyn Write + Send>, every: Duration) -> Self {
        let state = LinesState {
            out,
            pending: String::new(),
            last: Instant::now(),
        };
        Self {
            every,
            state: Mutex::new(state),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LinesState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TermLike for Lines {
    fn width(&self) -> u16 {
        // Wide enough that indicatif never truncates the line a log keeps.
        400
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.state().pending.push_str(s.trim_matches('\r'));
        Ok(())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        let mut st = self.state();
        let line = std::mem::take(&mut st.pending);
        let line = line.trim();
        if line.is_empty() || st.last.elapsed() < self.every {
            return Ok(());
        }
        st.last = Instant::now();
        writeln!(st.out, "{line}")?;
        st.out.flush()
    }
}

/// A duration for people: `42s`, `3m 10s`, `2h 5m`, `1d 3h` (the two largest units).
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (d, h, m) = (s / 86_400, s / 3_600 % 24, s / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {}s", s % 60),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// The bar's template; `plain` (a log line) leaves out the bar itself.
fn bar_style(unit: &str, plain: bool) -> ProgressStyle {
    assert!(
        !unit.contains(['{', '}']),
        "a progress unit is plain words, not a template: {unit:?}"
    );
    let sep = if unit.is_empty() { "" } else { " " };
    let bar = if plain { "" } else { "[{bar:40}] " };
    ProgressStyle::with_template(&format!(
        "{{msg}} {bar}{{human_pos}}/{{human_len}}{sep}{unit} \
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
            bar_style(unit, true);
        }
    }

    /// A `Write` whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Sink(std::sync::Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_gets_a_plain_line_per_interval_without_terminal_codes() {
        let sink = Sink::default();
        let every = Duration::from_millis(200);
        let target =
            ProgressDrawTarget::term_like(Box::new(Lines::new(Box::new(sink.clone()), every)));
        let b = ProgressBar::with_draw_target(Some(100), target);
        b.set_style(bar_style("images", true));
        b.set_message("ingest cifar10");
        b.inc(1); // before the first interval: nothing
        std::thread::sleep(every);
        b.inc(1); // one line
        b.inc(1); // within the interval again: nothing
        b.finish_and_clear();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(
            text.starts_with("ingest cifar10 2/100 images ("),
            "{text:?}"
        );
        assert!(!text.contains(['\r', '\x1b', '[']), "{text:?}");
    }

    #[test]
    fn durations_read_as_the_two_largest_units() {
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(190.0), "3m 10s");
        assert_eq!(duration(7_500.0), "2h 5m");
        assert_eq!(duration(97_200.0 + 59.0), "1d 3h");
    }
}
