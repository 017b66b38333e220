//! Inception feature throughput of `evaluate::FeatureExtractor` on the CPU, for
//! scripts/bench_fid.sh, which runs pytorch-fid on the same images and threads in turn.
//!
//!   bench_features WEIGHTS IMAGES.npz BATCH THREADS
//!
//! Loads the weights (not timed), runs one warm-up batch, then extracts pool3 features and
//! logits of every image of IMAGES.npz (uint8 [N, H, W, 3], `arr_0`) in batches of BATCH and
//! prints `ncsn img/s <rate> cpu-ms/img <cost> (...)`: the rate in wall time, and the process's
//! CPU time (user + system, all threads) per image, which a loaded machine disturbs less.

use std::path::PathBuf;
use std::time::Instant;

use evaluate::score::Samples;
use evaluate::FeatureExtractor;
use tch::Device;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [weights, images, batch, threads] = args.as_slice() else {
        return Err("usage: bench_features WEIGHTS IMAGES.npz BATCH THREADS".into());
    };
    let batch: usize = batch.parse()?;
    let threads: i32 = threads.parse()?;
    tch::set_num_threads(threads);
    let samples = Samples::read_npz(&PathBuf::from(images))?;
    let ex = FeatureExtractor::load(&PathBuf::from(weights), Device::Cpu)?;
    ex.extract(&samples.batch(0, batch.min(samples.len())))?;
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let mut at = 0;
    let mut check = 0.0;
    while at < samples.len() {
        let len = batch.min(samples.len() - at);
        let f = ex.extract(&samples.batch(at, len))?;
        check += f.pool3.sum(tch::Kind::Double).double_value(&[]);
        at += len;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let n = samples.len() as f64;
    println!(
        "ncsn img/s {:.3} cpu-ms/img {:.1} ({n} images, {secs:.2} s, {threads} threads; \
         checksum {check:.6e})",
        n / secs,
        cpu * 1e3 / n,
    );
    Ok(())
}

/// User + system CPU time of this process, all threads.
fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}
