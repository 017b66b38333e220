//! Benchmark driver for scripts/bench_calibrate.sh: the exact pairwise pass (int8 GEMMs where
//! exact, and with f32 chunks forced) against the bare f32 and int8 GEMMs of the same block
//! products, on random uint8 images, in one process with the same thread count.
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

    // The pass itself: as `ncsn calibrate` runs it (int8 GEMMs where exact), then with the
    // f32 chunks forced (the path before int8, and the one CUDA takes).
    let mut pass = 0.0;
    let mut pass_cpu = 0.0;
    for (label, allow_int8) in [("pairwise", true), ("pairwise_f32", false)] {
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
                allow_int8,
                progress: false,
            },
        )
        .unwrap();
        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
        println!("{label}_s {wall:.3}");
        println!("{label}_cpu_s {cpu:.3}");
        println!(
            "{label}_max_pair {} {} distance {:.6}",
            pw.max.first,
            pw.max.second,
            pw.max.distance()
        );
        if allow_int8 {
            (pass, pass_cpu) = (wall, cpu);
        }
    }
    let last = n - (n.div_ceil(block) - 1) * block;
    println!(
        "int8_gemm_exact {}",
        calibrate::pairwise::int8_gemm_available(Device::Cpu, block.min(n), last, d)
    );

    // Bare GEMMs on data already converted, only the GEMM calls timed: f32 (pixels in [0, 1])
    // and int8 (centred bytes, int32 sums), the same block products the pass computes (upper
    // triangle of blocks, full D).
    let to_f32 = |r0: usize, nr: usize| {
        Tensor::from_slice(&bytes[r0 * d..(r0 + nr) * d])
            .view([nr as i64, d as i64])
            .to_kind(Kind::Float)
            / 255.0
    };
    let to_i8 = |r0: usize, nr: usize| {
        Tensor::from_slice(&bytes[r0 * d..(r0 + nr) * d])
            .view([nr as i64, d as i64])
            .bitwise_xor(128)
            .view_dtype(Kind::Int8)
    };
    let blocks = n.div_ceil(block);
    for (label, int8) in [("bare_block_gemm", false), ("bare_block_int8_gemm", true)] {
        let (mut wall, mut cpu) = (0.0, 0.0);
        for bi in 0..blocks {
            let rows = |b: usize| (b * block, block.min(n - b * block));
            let (r0, nr) = rows(bi);
            let a = if int8 { to_i8(r0, nr) } else { to_f32(r0, nr) };
            for bj in bi..blocks {
                let (r0, nr) = rows(bj);
                let b = if int8 { to_i8(r0, nr) } else { to_f32(r0, nr) };
                let (t, c) = (Instant::now(), cpu_seconds());
                let g = if int8 {
                    a.internal_int_mm(&b.tr())
                } else {
                    a.matmul(&b.tr())
                };
                std::hint::black_box(g.double_value(&[0, 0]));
                wall += t.elapsed().as_secs_f64();
                cpu += cpu_seconds() - c;
            }
        }
        println!("{label}_s {wall:.3}");
        println!("{label}_cpu_s {cpu:.3}");
        println!("ratio_vs_{label} {:.3}", pass / wall);
        println!("cpu_ratio_vs_{label} {:.3}", pass_cpu / cpu);
    }
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
