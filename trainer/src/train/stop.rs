//! Stopping a run cleanly: SIGINT (Ctrl-C) and SIGTERM (Slurm preemption, `timeout`, `docker
//! stop`, torchrun) set a flag the loop checks between steps, and record which signal came so
//! the binary can exit with the conventional status (128 + the signal's number).

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering};
use std::sync::Arc;

/// The signal that asked the run to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT: Ctrl-C in a terminal.
    Interrupt,
    /// SIGTERM: a scheduler's or supervisor's request to stop.
    Terminate,
}

impl StopSignal {
    fn from_number(sig: libc::c_int) -> Option<Self> {
        match sig {
            libc::SIGINT => Some(Self::Interrupt),
            libc::SIGTERM => Some(Self::Terminate),
            _ => None,
        }
    }

    /// `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }

    /// The shell's convention for a process ended by this signal: 128 + its number (130, 143).
    pub fn exit_code(self) -> i32 {
        128 + match self {
            Self::Interrupt => libc::SIGINT,
            Self::Terminate => libc::SIGTERM,
        }
    }
}

/// The flag the handler sets (leaked from an `Arc`: the handler may run at any time after it
/// is installed, so the flag must outlive every run).
static STOP: AtomicPtr<AtomicBool> = AtomicPtr::new(ptr::null_mut());
/// The number of the first signal received (0: none yet).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// SIGINT or SIGTERM sets `stop`: the loop finishes its step, writes a checkpoint and returns
/// with `interrupted`; [`stop_signal`] then says which signal it was. A second signal of either
/// kind exits at once with 128 + its number (130 for a second Ctrl-C).
pub fn stop_on_signals(stop: Arc<AtomicBool>) -> std::io::Result<()> {
    // A previous flag is leaked rather than freed: the handler may be reading it right now.
    STOP.store(Arc::into_raw(stop).cast_mut(), Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid value to fill in; `on_signal` only touches
        // atomics and calls async-signal-safe functions (write, _exit).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            // SA_RESTART: a read or write that the signal lands in (the loader's, a
            // checkpoint's) carries on instead of failing with EINTR.
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The signal that set the stop flag, if one did.
pub fn stop_signal() -> Option<StopSignal> {
    StopSignal::from_number(RECEIVED.load(Ordering::SeqCst))
}

extern "C" fn on_signal(sig: libc::c_int) {
    if RECEIVED
        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        // `_exit`, not `process::exit`: the main thread may be inside libtorch (a step, or a
        // checkpoint being copied and written), and `exit` would run libtorch's static
        // destructors under it, a segfault about half the time. Nothing needs flushing: every
        // file is written to a temporary name and renamed when complete, so the previous
        // checkpoint stays the latest.
        // SAFETY: ends the process; async-signal-safe.
        unsafe { libc::_exit(128 + sig) };
    }
    let stop = STOP.load(Ordering::SeqCst);
    if !stop.is_null() {
        // SAFETY: points to the leaked flag of `stop_on_signals`, never freed.
        unsafe { (*stop).store(true, Ordering::SeqCst) };
    }
    let msg: &[u8] = if sig == libc::SIGTERM {
        b"\nSIGTERM: finishing this step and writing a checkpoint (a second signal aborts)\n"
    } else {
        b"\ninterrupted: finishing this step and writing a checkpoint (Ctrl-C again to abort)\n"
    };
    // `write(2)`, not `eprintln!`: only async-signal-safe calls belong in a handler (stderr's
    // lock may be held by the very thread this signal interrupted).
    // SAFETY: a valid buffer of `msg.len()` bytes; the result is deliberately ignored.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(StopSignal::Interrupt.exit_code(), 130);
        assert_eq!(StopSignal::Terminate.exit_code(), 143);
        assert_eq!(
            StopSignal::from_number(libc::SIGTERM),
            Some(StopSignal::Terminate)
        );
        assert_eq!(StopSignal::from_number(0), None);
    }
}
