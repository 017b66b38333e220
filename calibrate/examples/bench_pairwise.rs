//! Benchmark driver for scripts/bench_calibrate.sh: the exact pairwise pass against the bare
//! f32 GEMMs it needs, on random uint8 images, in one process with the same thread count.
//!
//! usage: bench_pairwise N D [BLOCK_ROWS] [--no-full-gram]
//!
//! Prints one `key value` line per measurement: wall seconds (`_s`) and this process's CPU
//! seconds (`_cpu_s`, user + system from /proc/self/stat), the fairer figure on a machine
//! shared with other work.

use std::time::Instant;

use calibrate::pairwise::{pairwise, ByteRows, PairwiseOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: Option<usize>| {
        args.get(i)
            .filter(|a| !a.starts_with("--"))
            .map(|a| a.parse::<usize>().expect("a number"))
            .or(default)
            .expect("usage: bench_pairwise N D [BLOCK_ROWS] [--no-full-gram]")
    };
    let (n, d, block) = (num(0, None), num(1, None), num(2, Some(1024)));
    let full_gram = !args.iter().any(|a| a == "--no-full-gram");
    tch::set_num_threads(tch::get_num_threads());
    println!("threads {}", tch::get_num_threads());
    println!("n {n}\ndims {d}\nblock_rows {block}");

    let mut bytes = vec![0u8; n * d];
    ChaCha8Rng::seed_from_u64(0).fill_bytes(&mut bytes);

    // The pass itself.
    let t = Instant::now();
    let c = cpu_seconds();
    let pw = pairwise(
        ByteRows::new(&bytes, d).unwrap(),
        &PairwiseOptions {
            block_rows: block,
            device: Device::Cpu,
            median_pairs: 1_000_000,
            seed: 0,
            whole_f32_bytes: 1 << 30,
            progress: false,
        },
    )
    .unwrap();
    let pass = t.elapsed().as_secs_f64();
    let pass_cpu = cpu_seconds() - c;
    println!("pairwise_s {pass:.3}");
    println!("pairwise_cpu_s {pass_cpu:.3}");
    println!(
        "max_pair {} {} distance {:.6}",
        pw.max.first,
        pw.max.second,
        pw.max.distance()
    );

    // Bare GEMMs on data already in f32, pixels in [0, 1]; only the GEMM calls are timed.
    let to_f32 = |r0: usize, nr: usize| {
        Tensor::from_slice(&bytes[r0 * d..(r0 + nr) * d])
            .view([nr as i64, d as i64])
            .to_kind(Kind::Float)
            / 255.0
    };
    // (a) The same block products the pass computes (upper triangle of blocks, full D).
    let blocks = n.div_ceil(block);
    let (mut blocked, mut blocked_cpu) = (0.0, 0.0);
    for bi in 0..blocks {
        let a = to_f32(bi * block, block.min(n - bi * block));
        for bj in bi..blocks {
            let b = to_f32(bj * block, block.min(n - bj * block));
            let (t, c) = (Instant::now(), cpu_seconds());
            let g = a.matmul(&b.tr());
            std::hint::black_box(g.double_value(&[0, 0]));
            blocked += t.elapsed().as_secs_f64();
            blocked_cpu += cpu_seconds() - c;
        }
    }
    println!("bare_block_gemm_s {blocked:.3}");
    println!("bare_block_gemm_cpu_s {blocked_cpu:.3}");
    println!("ratio_vs_block_gemm {:.3}", pass / blocked);
    println!("cpu_ratio_vs_block_gemm {:.3}", pass_cpu / blocked_cpu);
    // (b) The whole N×N Gram in one GEMM: what a direct X·Xᵀ implementation needs
    // (N·D·4 bytes of f32).
    if full_gram {
        let x = to_f32(0, n);
        drop(bytes);
        let (t, c) = (Instant::now(), cpu_seconds());
        let g = x.matmul(&x.tr());
        std::hint::black_box(g.double_value(&[0, 0]));
        let full = t.elapsed().as_secs_f64();
        let full_cpu = cpu_seconds() - c;
        println!("bare_full_gram_s {full:.3}");
        println!("bare_full_gram_cpu_s {full_cpu:.3}");
        println!("ratio_vs_full_gram {:.3}", pass / full);
        println!("cpu_ratio_vs_full_gram {:.3}", pass_cpu / full_cpu);
    }
}

/// User + system CPU seconds of this process so far (Linux; clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
