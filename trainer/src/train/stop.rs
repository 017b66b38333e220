//! Stopping a run cleanly: Ctrl-C sets a flag the loop checks between steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Ctrl-C sets `stop`: the loop finishes its step, writes a checkpoint and returns with
/// `interrupted`. A second Ctrl-C exits at once (status 130).
pub fn stop_on_ctrl_c(stop: Arc<AtomicBool>) -> Result<(), ctrlc::Error> {
    ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::Relaxed) {
            // `_exit`, not `process::exit`: this handler runs on its own thread while the main
            // thread is inside libtorch (a step, or a checkpoint being copied and written), and
            // `exit` would run libtorch's static destructors under it, a segfault about half
            // the time. Nothing needs flushing: every file is written to a temporary name and
            // renamed when complete, so the previous checkpoint stays the latest.
            // SAFETY: ends the process; no Rust state is used afterwards.
            unsafe { libc::_exit(130) };
        }
        eprintln!(
            "\ninterrupted: finishing this step and writing a checkpoint (Ctrl-C again to abort)"
        );
    })
}
