//! Stopping a run cleanly: Ctrl-C sets a flag the loop checks between steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Ctrl-C sets `stop`: the loop finishes its step, writes a checkpoint and returns with
/// `interrupted`. A second Ctrl-C exits at once (status 130).
pub fn stop_on_ctrl_c(stop: Arc<AtomicBool>) -> Result<(), ctrlc::Error> {
    ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!(
            "\ninterrupted: finishing this step and writing a checkpoint (Ctrl-C again to abort)"
        );
    })
}
