//! The largest single allocation a piece of code makes, for tests that bound what hostile
//! input may cost. A test binary opts in with
//! `#[global_allocator] static A: testkit::alloc::Largest = testkit::alloc::Largest;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, noting the largest single allocation each thread makes (tests run on
/// threads of their own, so one test's allocations never count against another's).
pub struct Largest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: allocations during thread teardown are not counted, never a panic.
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

// SAFETY: every call is forwarded to `System` unchanged; the thread-local is a plain `Cell`
// with a const initialiser, so touching it never allocates or registers a destructor.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

/// `f`'s result and the largest allocation it made on this thread, in bytes (Rust allocations
/// only: C libraries' own `malloc`s are not seen). Meaningful only in a binary whose global
/// allocator is [`Largest`].
pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|m| m.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}
