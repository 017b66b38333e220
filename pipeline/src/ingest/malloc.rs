//! glibc allocator tuning for the ingest's threads.

/// Lets glibc's allocator keep freed buffers of up to 32 MiB for reuse (process-wide, once;
/// [`ingest`](super::ingest) calls it).
///
/// By default glibc maps every allocation over 128 KiB fresh from the kernel and unmaps it on
/// free, and threads other than the main one can never raise that limit themselves. The
/// writer allocates dozens of 1 MiB Parquet pages per row group and the workers a decode
/// buffer per LSUN or FFHQ image, so each was paid again in page faults and page clearing:
/// measured on the shard writer alone, 49 -> 26-29 us per 12 KiB row. Memory stays bounded:
/// what is kept is what a thread already had in use.
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes glibc's allocation thresholds; both values are in
            // the documented range (M_MMAP_THRESHOLD at most 32 MiB on 64-bit).
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
            }
        });
    }
}
