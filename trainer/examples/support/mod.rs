//! What the single-process bench examples (count_forward, profile_step) share: the process
//! set-up `ncsn train` makes, the network of a config with its σs on the CPU, a random batch,
//! and the calling thread's CPU time. (Not an example itself: cargo builds only
//! `examples/*.rs` and `examples/*/main.rs` as examples.)

use schemas::config::Config;
use tch::{nn::VarStore, Device, Kind, Tensor};
use trainer::models::ScoreModel;

/// The two examples' command line, `CONFIG.yml BATCH <counts…> THREADS`: the config, the batch
/// and the counts (named in `counts`, in order), with the process set up [`like_ncsn_train`]
/// at THREADS. A wrong number of arguments prints the usage and exits with 2.
pub fn set_up(example: &str, counts: &[&str]) -> (Config, i64, Vec<usize>) {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != counts.len() + 4 {
        eprintln!(
            "usage: {example} CONFIG.yml BATCH {} THREADS",
            counts.join(" ")
        );
        std::process::exit(2);
    }
    let cfg = Config::read(std::path::Path::new(&a[1])).expect("CONFIG.yml");
    let batch = a[2].parse().expect("BATCH");
    let values = counts
        .iter()
        .zip(&a[3..])
        .map(|(name, v)| v.parse().unwrap_or_else(|_| panic!("{name}: {v:?}")))
        .collect();
    like_ncsn_train(a[a.len() - 1].parse().expect("THREADS"));
    (cfg, batch, values)
}

/// As `ncsn train` runs: denormals flushed (before libtorch's thread pool starts), freed
/// activations kept in the heap; then `threads` intra-op threads and seed 0.
pub fn like_ncsn_train(threads: i32) {
    torchrt::accel::set_flush_denormal(true);
    torchrt::accel::keep_freed_memory();
    tch::set_num_threads(threads);
    tch::manual_seed(0);
}

/// The config's network in a fresh store on the CPU, and its σs as the model's float32 buffer.
pub fn network(cfg: &Config) -> (VarStore, Box<dyn ScoreModel>, Tensor) {
    let vs = VarStore::new(Device::Cpu);
    let model = trainer::models::build(&vs.root(), cfg).expect("model");
    let sigmas = Tensor::from_slice(&cfg.sigmas()).to_kind(Kind::Float);
    (vs, model, sigmas)
}

/// A batch in [0, 1] at the config's resolution, σ indices and noise, as a step draws them.
pub fn batch(cfg: &Config, batch: i64) -> (Tensor, Tensor, Tensor) {
    let size = cfg.data.image_size as i64;
    let channels = cfg.data.channels as i64;
    let x = Tensor::rand([batch, channels, size, size], (Kind::Float, Device::Cpu));
    let (y, z) = noise(cfg, &x);
    (x, y, z)
}

/// σ indices and noise for the batch `x` (what the authors' loss draws inside itself).
pub fn noise(cfg: &Config, x: &Tensor) -> (Tensor, Tensor) {
    let y = Tensor::randint(
        cfg.model.num_classes as i64,
        [x.size()[0]],
        (Kind::Int64, Device::Cpu),
    );
    (y, x.randn_like())
}

/// CPU time of the calling thread in ms.
pub fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}
