//! Technique 1's maximum pairwise distance against brute force in f64, on sets built to be
//! hard: near-duplicates of bright images (where ‖a‖² + ‖b‖² − 2a·b cancels catastrophically),
//! ties, N not a multiple of the block size and D not a multiple of the GEMM chunk.

use calibrate::pairwise::{
    pairwise, squared_distance_bytes, ByteRows, PairwiseOptions, CHUNK, INT8_CHUNK,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// All pairs in f64 with pixels in [0, 1]: (first, second, distance) of the maximum, the
/// first pair in (i, j) order on ties (exact ties compared on the integer sums).
fn brute_force_max(bytes: &[u8], dims: usize) -> (usize, usize, f64) {
    let n = bytes.len() / dims;
    let row = |i: usize| &bytes[i * dims..(i + 1) * dims];
    let mut best = (0, 1, 0u64);
    for i in 0..n {
        for j in i + 1..n {
            let d2 = squared_distance_bytes(row(i), row(j));
            if d2 > best.2 {
                best = (i, j, d2);
            }
        }
    }
    let (i, j, _) = best;
    let d = row(i)
        .iter()
        .zip(row(j))
        .map(|(&a, &b)| (f64::from(a) / 255.0 - f64::from(b) / 255.0).powi(2))
        .sum::<f64>()
        .sqrt();
    (i, j, d)
}

fn all_distances(bytes: &[u8], dims: usize) -> Vec<f64> {
    let n = bytes.len() / dims;
    let row = |i: usize| &bytes[i * dims..(i + 1) * dims];
    let mut v = vec![];
    for i in 0..n {
        for j in i + 1..n {
            v.push((squared_distance_bytes(row(i), row(j)) as f64).sqrt() / 255.0);
        }
    }
    v.sort_by(f64::total_cmp);
    v
}

fn random_images(n: usize, dims: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * dims).map(|_| rng.random::<u8>()).collect()
}

/// `n` copies of a bright image, each nudged by ±1..3 levels at a few pixels.
fn near_duplicates(n: usize, dims: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base: Vec<u8> = (0..dims).map(|_| rng.random_range(240..=252u8)).collect();
    let mut out = Vec::with_capacity(n * dims);
    for _ in 0..n {
        let mut img = base.clone();
        for _ in 0..rng.random_range(1..4usize) {
            let k = rng.random_range(0..dims);
            img[k] = img[k].wrapping_add(rng.random_range(1..=3u8));
        }
        out.extend(img);
    }
    out
}

fn opts(block_rows: usize) -> PairwiseOptions {
    PairwiseOptions {
        block_rows,
        ..PairwiseOptions::default()
    }
}

fn check(bytes: &[u8], dims: usize, block_rows: usize, what: &str) {
    let rows = ByteRows::new(bytes, dims).unwrap();
    let got = pairwise(rows, &opts(block_rows)).unwrap();
    // Converting block by block (large data) and all at once (small data) agree exactly.
    let per_block = PairwiseOptions {
        whole_f32_bytes: 0,
        ..opts(block_rows)
    };
    assert_eq!(pairwise(rows, &per_block).unwrap(), got, "{what}");
    // int8 GEMMs (where this CPU's are exact) and f32 chunks agree exactly.
    let f32_only = PairwiseOptions {
        allow_int8: false,
        ..opts(block_rows)
    };
    assert_eq!(
        pairwise(rows, &f32_only).unwrap(),
        got,
        "{what} (f32 chunks)"
    );
    let (i, j, d) = brute_force_max(bytes, dims);
    assert_eq!(
        (got.max.first, got.max.second),
        (i, j),
        "{what}: wrong pair (block {block_rows})"
    );
    let rel = (got.max.distance() - d).abs() / d;
    assert!(
        rel <= 1e-9,
        "{what}: {} vs brute force {d} (rel {rel:e})",
        got.max.distance()
    );
}

#[test]
fn random_sets_match_brute_force_for_any_block_size() {
    // N = 37 is a multiple of none of the block sizes but 1 and 37; D = 2·1024 + 5 makes the
    // last GEMM chunk a short one; D = 147 is a single short chunk.
    for (n, dims, seed) in [(37, 2 * CHUNK + 5, 1), (23, 147, 2), (2, 10, 3)] {
        let bytes = random_images(n, dims, seed);
        for block in [1, 4, 8, 16, 64] {
            check(&bytes, dims, block, &format!("random N={n} D={dims}"));
        }
    }
}

#[test]
fn saturated_images_over_several_int8_chunks_match_brute_force() {
    // Pixels of 0 and 255 only (centred ±128/127, the largest products) over D spanning two
    // int8 chunks and a short third: any int32 overflow or int16 saturation would show.
    let dims = 2 * INT8_CHUNK + 7;
    let n = 9;
    let mut bytes = vec![0u8; n * dims];
    for (i, img) in bytes.chunks_mut(dims).enumerate() {
        for (k, v) in img.iter_mut().enumerate() {
            *v = match i % 3 {
                0 => 0,
                1 => 255,
                _ if (k / (i + 1)) % 2 == 0 => 255,
                _ => 0,
            };
        }
    }
    for block in [2, 4, 9] {
        check(&bytes, dims, block, "saturated");
    }
}

#[test]
fn near_duplicates_of_bright_images_match_brute_force() {
    // ‖a‖² ≈ 3072·250² while ‖a − b‖² is a few levels²: a naive f32 Gram has no correct digit.
    let dims = 3072;
    let bytes = near_duplicates(29, dims, 7);
    for block in [5, 8, 29] {
        check(&bytes, dims, block, "near-duplicates");
    }
    // Show the set is hard: the textbook f32 formula on pixels in [0, 1] gets the max wrong.
    let row = |i: usize| &bytes[i * dims..(i + 1) * dims];
    let f = |v: &[u8]| {
        v.iter()
            .map(|&x| f32::from(x) / 255.0)
            .collect::<Vec<f32>>()
    };
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let (a, b) = (f(row(0)), f(row(1)));
    let naive = dot(&a, &a) + dot(&b, &b) - 2.0 * dot(&a, &b);
    let exact = squared_distance_bytes(row(0), row(1)) as f32 / (255.0 * 255.0);
    assert!(
        ((naive - exact) / exact).abs() > 1e-3,
        "naive {naive} exact {exact}"
    );
}

#[test]
fn a_far_pair_hidden_among_near_duplicates_is_found() {
    // One dark image among bright near-duplicates: the maximum involves it, in a later block.
    let dims = 1500;
    let mut bytes = near_duplicates(41, dims, 11);
    for v in &mut bytes[33 * dims..34 * dims] {
        *v = 3;
    }
    for block in [4, 7, 41] {
        check(&bytes, dims, block, "one dark image");
    }
}

#[test]
fn ties_resolve_to_the_first_pair() {
    // Images 2, 5 and 9 are black, 4 and 8 white: six pairs tie at the maximum √D; the first in
    // (i, j) order is (2, 4).
    let dims = 300;
    let mut bytes = random_images(12, dims, 5);
    for v in bytes.iter_mut() {
        *v = 64 + *v / 2; // keep the others strictly inside
    }
    for (i, value) in [(2, 0u8), (4, 255), (5, 0), (8, 255), (9, 0)] {
        bytes[i * dims..(i + 1) * dims].fill(value);
    }
    for block in [1, 3, 5, 12] {
        let got = pairwise(ByteRows::new(&bytes, dims).unwrap(), &opts(block)).unwrap();
        assert_eq!((got.max.first, got.max.second), (2, 4), "block {block}");
        assert_eq!(got.max.squared_bytes, 300 * 255 * 255);
        assert!((got.max.distance() - (dims as f64).sqrt()).abs() < 1e-12);
    }
}

#[test]
fn the_median_is_exact_over_all_pairs_or_a_seeded_sample() {
    let dims = 200;
    let bytes = random_images(40, dims, 9); // 780 pairs
    let rows = ByteRows::new(&bytes, dims).unwrap();
    let all = all_distances(&bytes, dims);
    let exact_median = (all[389] + all[390]) / 2.0;

    let got = pairwise(rows, &opts(7)).unwrap();
    assert_eq!(got.median, exact_median);
    assert_eq!(got.median_method, "exact over all 780 pairs");

    let sampled = |seed| {
        let o = PairwiseOptions {
            median_pairs: 301,
            seed,
            ..opts(7)
        };
        pairwise(rows, &o).unwrap()
    };
    let s = sampled(3);
    assert!(
        s.median_method.contains("301 distinct pairs"),
        "{}",
        s.median_method
    );
    assert!(s.median_method.contains("seed 3"), "{}", s.median_method);
    // Odd count: the sample's median is one of the true distances, near the true median.
    assert!(all.contains(&s.median));
    let rank = all.partition_point(|&d| d < s.median) as f64 / all.len() as f64;
    assert!((0.4..0.6).contains(&rank), "sample median at rank {rank}");
    assert_eq!(sampled(3).median, s.median, "same seed, same sample");
    // The sample does not change the maximum.
    assert_eq!(s.max, got.max);
}

#[test]
fn fewer_than_two_images_is_an_error() {
    let one = vec![7u8; 12];
    let err = pairwise(ByteRows::new(&one, 12).unwrap(), &opts(4)).unwrap_err();
    assert!(err.to_string().contains("at least 2 images"), "{err}");
    assert!(ByteRows::new(&one, 5).is_err());
}

#[test]
fn zero_median_pairs_is_an_error_not_a_panic() {
    let two = random_images(2, 12, 1);
    let o = PairwiseOptions {
        median_pairs: 0,
        ..opts(4)
    };
    let err = pairwise(ByteRows::new(&two, 12).unwrap(), &o).unwrap_err();
    assert!(err.to_string().contains("--median-pairs 0"), "{err}");
}
