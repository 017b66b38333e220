//! Our side of the ingestion benchmark (scripts/bench_ingest.sh), one thread: decode-only
//! floor (full decode to RGB) and decode + transform with partial decoding on and off, on the
//! files scripts/bench/gen_inputs.py wrote, held in memory. Prints one JSON object per line,
//! like scripts/bench/pillow_transforms.py.
//!
//! usage: cargo run --release -p pipeline --example bench_transforms -- IN_DIR [MIN_SECONDS]

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use pipeline::{decode, process_encoded_with, Filter, Limits, Recipe};

fn rate(files: &[Vec<u8>], min_s: f64, mut f: impl FnMut(&[u8])) -> (f64, usize) {
    let t0 = Instant::now();
    let mut n = 0;
    loop {
        for b in files {
            f(b);
        }
        n += files.len();
        let dt = t0.elapsed().as_secs_f64();
        if dt >= min_s {
            return (n as f64 / dt, n);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = Path::new(
        args.get(1)
            .expect("usage: bench_transforms IN_DIR [MIN_SECONDS]"),
    );
    let min_s: f64 = args.get(2).map_or(3.0, |s| s.parse().expect("MIN_SECONDS"));
    let bilinear = |size| Recipe::ResizeCrop {
        size,
        filter: Filter::Bilinear,
    };
    let sets = [
        (
            "celeba",
            "celeba",
            Recipe::CropResize {
                crop: 140,
                size: 64,
                filter: Filter::Bilinear,
            },
        ),
        ("lsun96", "lsun", bilinear(96)),
        ("lsun128", "lsun", bilinear(128)),
        (
            "ffhq",
            "ffhq",
            Recipe::ResizeCrop {
                size: 256,
                filter: Filter::Lanczos,
            },
        ),
    ];
    let mut floor_done = Vec::new();
    for (name, sub, recipe) in sets {
        let dir = root.join(sub);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        let files: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
        if files.is_empty() {
            continue;
        }
        let emit = |set: &str, stage: &str, (r, n): (f64, usize)| {
            println!(r#"{{"set": "{set}", "stage": "{stage}", "img_per_s": {r:.1}, "n": {n}}}"#);
        };
        if !floor_done.contains(&sub) {
            emit(
                sub,
                "decode",
                rate(&files, min_s, |b| {
                    black_box(decode(b).unwrap());
                }),
            );
            floor_done.push(sub);
        }
        for (stage, partial) in [("transform", true), ("transform_full_decode", false)] {
            emit(
                name,
                stage,
                rate(&files, min_s, |b| {
                    black_box(
                        process_encoded_with(b, &recipe, partial, Limits::default()).unwrap(),
                    );
                }),
            );
        }
    }
}
