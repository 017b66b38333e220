//! Seeded mutation fuzzing of everything that parses bytes from a dataset: the JPEG, PNG and
//! WebP decoders (with the recipes on top), CIFAR-10's binary batches, its pickles and its
//! .tar.gz, and LSUN's and FFHQ's LMDBs. Valid inputs from the testkit fixtures are mutated
//! (bit flips, truncations, insertions, deletions, copies, header fields such as PNG's IHDR or
//! JPEG's SOF size overwritten with huge values, PNG CRCs recomputed so the change gets past
//! them), and every mutant must be refused with an error or accepted within the pixel budget:
//! no panic, no abort, and peak memory bounded. Decoded mutants must also give the same
//! pixels with partial decoding on and off, and a valid image decoded after each mutant must
//! give its usual pixels (decoders keep state per thread: one image must not cost the next).
//! Each seed itself must be accepted, so no target fuzzes a reader that refuses everything.
//!
//! `NCSN_FUZZ_SECONDS` (default 2) is the time per target, `NCSN_FUZZ_SEED` the seed;
//! `NCSN_FUZZ_LOG=1` prints each input's number before it runs, to find one that aborts. A
//! panicking input is saved under `target/fuzz-failures/`. A mutant is a pure function of
//! (seed, target, number), so any failure replays.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use image::ImageFormat;
use pipeline::sources::{cifar10, ffhq, lsun, Source};
use pipeline::{decode, decode_region, process_encoded_with, Filter, Limits, Recipe, Rect};
use schemas::rng::{mix64, SplitMix64};
use testkit::fixtures::{encode, write_cifar, write_lmdb, write_tar_gz, CifarVersion};

/// Small on purpose: a mutant claiming more pixels is refused from its header, and one under
/// it decodes in milliseconds.
const FUZZ_LIMITS: Limits = Limits {
    max_pixels: 1 << 18,
};

fn seconds() -> f64 {
    std::env::var("NCSN_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0)
}

/// Random edits of a seed input.
struct Mutator {
    rng: SplitMix64,
    /// Only edits that keep every byte where it was (no insertion, deletion or truncation):
    /// paged formats such as LMDB refuse nearly every shifted file at its first page.
    in_place: bool,
}

impl Mutator {
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.rng.next_u64() % n as u64) as usize
        }
    }

    /// A value that parsers get wrong: 0, 1, all ones, sign bits, just over a power of two.
    fn interesting(&mut self, width: usize, big_endian: bool) -> Vec<u8> {
        let v: u64 = match self.below(8) {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => 1 << (8 * width - 1),
            4 => (1 << (8 * width - 1)) - 1,
            5 => 65_000,
            6 => 0x10001,
            _ => self.rng.next_u64(),
        };
        let b = v.to_le_bytes()[..width].to_vec();
        if big_endian {
            b.into_iter().rev().collect()
        } else {
            b
        }
    }

    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        let mut b = seed.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(b.len());
            let op = if self.in_place {
                [0, 1, 2, 7][self.below(4)]
            } else {
                self.below(9)
            };
            match op {
                0 if !b.is_empty() => b[at] ^= 1 << self.below(8),
                1 if !b.is_empty() => b[at] = self.rng.next_u64() as u8,
                2 => {
                    let width = [1, 2, 4, 8][self.below(4)];
                    let big_endian = self.below(2) == 0;
                    let v = self.interesting(width, big_endian);
                    for (i, x) in v.into_iter().enumerate() {
                        if let Some(slot) = b.get_mut(at + i) {
                            *slot = x;
                        }
                    }
                }
                3 => b.truncate(at),
                4 => {
                    let n = 1 + self.below(16);
                    let ins: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
                    b.splice(at..at, ins);
                }
                5 => {
                    let end = (at + 1 + self.below(64)).min(b.len());
                    b.drain(at..end);
                }
                6 if !b.is_empty() => {
                    // Copy a run of the input elsewhere (repeats markers, chunks, opcodes).
                    let from = self.below(b.len());
                    let n = (1 + self.below(64)).min(b.len() - from);
                    let run = b[from..from + n].to_vec();
                    b.splice(at..at, run);
                }
                7 => self.header_sizes(&mut b),
                _ => {}
            }
        }
        if b.starts_with(b"\x89PNG") && self.below(2) == 0 {
            fix_png_crcs(&mut b);
        }
        b
    }

    /// The image's width and height fields, where the format keeps them, set to huge or odd
    /// values: the decompression bombs.
    fn header_sizes(&mut self, b: &mut [u8]) {
        let at = if b.starts_with(b"\x89PNG") {
            Some(16 + 4 * self.below(2)) // IHDR width or height, u32 BE
        } else if b.starts_with(&[0xFF, 0xD8]) {
            // SOFn: FF Cx, length, precision, height u16 BE, width u16 BE
            b.windows(2)
                .position(|w| w[0] == 0xFF && matches!(w[1], 0xC0..=0xC3))
                .map(|p| p + 5 + 2 * self.below(2))
        } else if b.starts_with(b"RIFF") {
            Some(24 + 2 * self.below(3)) // VP8X canvas or VP8/VP8L frame header
        } else {
            None
        };
        if let Some(at) = at {
            let width = 2 + 2 * self.below(2);
            let v = self.interesting(width, true);
            for (i, x) in v.into_iter().enumerate() {
                if let Some(slot) = b.get_mut(at + i) {
                    *slot = x;
                }
            }
        }
    }
}

/// Recomputes every PNG chunk's CRC, so a mutation inside a chunk reaches the parser.
fn fix_png_crcs(b: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= b.len() {
        let len = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|&e| e + 4 <= b.len()) else {
            return;
        };
        let mut crc = flate2::Crc::new();
        crc.update(&b[at + 4..end]);
        b[end..end + 4].copy_from_slice(&crc.sum().to_be_bytes());
        at = end + 4;
    }
}

/// Peak resident memory of this process (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Runs `check` on mutants of `seeds` for the time budget (`check` says whether the mutant
/// was accepted, at least in part); returns how many ran. With `paged`, every other mutant
/// keeps its bytes in place.
fn fuzz(target: &str, seeds: &[Vec<u8>], paged: bool, mut check: impl FnMut(&[u8]) -> bool) -> u64 {
    let seed: u64 = std::env::var("NCSN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_240_612);
    let log = std::env::var_os("NCSN_FUZZ_LOG").is_some();
    let name_hash = target.bytes().fold(0u64, |h, c| mix64(h ^ c as u64));
    for (i, seed) in seeds.iter().enumerate() {
        assert!(check(seed), "fuzz {target}: seed {i} itself is refused");
    }
    let deadline = Instant::now() + Duration::from_secs_f64(seconds());
    let (mut n, mut accepted) = (0u64, 0u64);
    while n == 0 || Instant::now() < deadline {
        let mut m = Mutator {
            rng: SplitMix64::new(mix64(seed ^ name_hash) ^ n),
            in_place: paged && n % 2 == 1,
        };
        let input = m.mutate(&seeds[n as usize % seeds.len()]);
        if log {
            eprintln!("fuzz {target} #{n}: {} bytes", input.len());
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
        if outcome.is_err() {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../fuzz-failures");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("{target}-{seed}-{n}.bin"));
            std::fs::write(&file, &input).unwrap();
            panic!(
                "fuzz {target}: input #{n} panicked (saved to {})",
                file.display()
            );
        }
        accepted += u64::from(outcome.unwrap_or(false));
        n += 1;
    }
    eprintln!(
        "fuzz {target}: {n} inputs ({accepted} accepted) in {:.0} s, peak RSS {} MiB",
        seconds(),
        peak_rss() >> 20
    );
    n
}

/// Every item of every split of `source`, prepared as the workers would; whether any image
/// came out.
fn drain(source: &Source) -> bool {
    let mut any = false;
    for split in &source.splits {
        let Ok(items) = (split.open)(0) else { continue };
        for item in items {
            let Ok(item) = item else { break };
            any |= source.prepare(item.payload).is_ok();
        }
    }
    any
}

fn image_seeds() -> Vec<Vec<u8>> {
    let mut gray16 = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut gray16, 19, 13);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Sixteen);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&(0..19 * 13 * 2).map(|i| i as u8).collect::<Vec<_>>())
            .unwrap();
    }
    vec![
        encode(37, 29, 1, ImageFormat::Jpeg),
        encode(37, 29, 2, ImageFormat::Png),
        encode(37, 29, 3, ImageFormat::WebP),
        encode(8, 8, 4, ImageFormat::Jpeg),
        gray16,
    ]
}

#[test]
fn decoders_refuse_or_decode_within_the_budget() {
    let recipes = [
        Recipe::Identity,
        Recipe::CropResize {
            crop: 16,
            size: 8,
            filter: Filter::Bilinear,
        },
        Recipe::ResizeCrop {
            size: 9,
            filter: Filter::Lanczos,
        },
    ];
    let seeds = image_seeds();
    let reference: Vec<_> = seeds.iter().map(|s| decode(s).unwrap()).collect();
    let n = fuzz("decoders", &seeds, false, |b| {
        let decoded = decode_region(b, |w, h| Ok(Rect::new(0, 0, w, h)), false, FUZZ_LIMITS);
        if let Ok(d) = &decoded {
            let (w, h) = d.full;
            assert!(w as u64 * h as u64 <= FUZZ_LIMITS.max_pixels, "{w}x{h}");
            assert_eq!(d.pixels.data.len(), w as usize * h as usize * 3);
        }
        for r in &recipes {
            let full = process_encoded_with(b, r, false, FUZZ_LIMITS);
            let part = process_encoded_with(b, r, true, FUZZ_LIMITS);
            if let (Ok(full), Ok(part)) = (&full, &part) {
                assert!(full.data == part.data, "partial decode differs under {r:?}");
            }
        }
        // A refused image never costs the next one (decoders keep per-thread state).
        for (s, want) in seeds.iter().zip(&reference) {
            assert!(
                decode(s).as_ref() == Ok(want),
                "a valid seed fails after this input"
            );
        }
        decoded.is_ok()
    });
    assert!(n > 0);
    // Every accepted mutant is at most 2^18 pixels, a few MB in any format.
    assert!(peak_rss() < 1 << 30, "peak RSS {} MiB", peak_rss() >> 20);
}

/// A CIFAR-10 directory whose `data_batch_1` is each mutant (the other batches stay valid).
fn cifar_target(target: &str, version: CifarVersion) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_cifar(tmp.path(), version, 2).unwrap();
    let file = dir.join(match version {
        CifarVersion::Binary => "data_batch_1.bin",
        CifarVersion::Python => "data_batch_1",
    });
    let seed = std::fs::read(&file).unwrap();
    fuzz(target, &[seed], false, |b| {
        std::fs::write(&file, b).unwrap();
        cifar10::open(&dir).is_ok_and(|source| drain(&source))
    });
}

#[test]
fn cifar10_binary_batches() {
    cifar_target("cifar_bin", CifarVersion::Binary);
}

#[test]
fn cifar10_pickles() {
    cifar_target("cifar_pickle", CifarVersion::Python);
}

#[test]
fn cifar10_tar_gz() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_cifar(tmp.path(), CifarVersion::Python, 2).unwrap();
    let tgz = tmp.path().join("cifar-10-python.tar.gz");
    write_tar_gz(&dir, &tgz).unwrap();
    // The .tar inside too: mutating gzip's compressed bytes mostly tests its CRC, so half the
    // mutants are of the uncompressed tar, gzipped again.
    let mut tar = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&tgz).unwrap()),
        &mut tar,
    )
    .unwrap();
    let seeds = [std::fs::read(&tgz).unwrap(), tar];
    let fuzzed = tmp.path().join("fuzzed.tar.gz");
    fuzz("cifar_tgz", &seeds, false, |b| {
        let bytes = if b.starts_with(&[0x1f, 0x8b]) {
            b.to_vec()
        } else {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, b).unwrap();
            gz.finish().unwrap()
        };
        std::fs::write(&fuzzed, bytes).unwrap();
        cifar10::open(&fuzzed).is_ok_and(|source| drain(&source))
    });
}

/// An LMDB of `entries` whose `data.mdb` is each mutant, opened by `open`.
fn lmdb_target(
    target: &str,
    dir_name: &str,
    entries: &[(Vec<u8>, Vec<u8>)],
    open: fn(&Path) -> bool,
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(dir_name);
    write_lmdb(&dir, entries).unwrap();
    let data = dir.join("data.mdb");
    let seed = std::fs::read(&data).unwrap();
    fuzz(target, &[seed], true, |b| {
        std::fs::write(&data, b).unwrap();
        open(&dir)
    });
}

#[test]
fn lsun_lmdb() {
    let entries: Vec<_> = (0..6u64)
        .map(|i| {
            let fmt = [ImageFormat::WebP, ImageFormat::Jpeg, ImageFormat::Png][i as usize % 3];
            (
                format!("{i:040x}").into_bytes(),
                encode(20 + i as u32, 17, i, fmt),
            )
        })
        .collect();
    lmdb_target("lsun_lmdb", "bedroom_train_lmdb", &entries, |dir| {
        lsun::open(dir, Some(8)).is_ok_and(|mut source| {
            source.limits = FUZZ_LIMITS;
            drain(&source)
        })
    });
}

#[test]
fn ffhq_lmdb() {
    let mut entries: Vec<_> = (0..5u64)
        .map(|i| {
            (
                format!("16-{i:05}").into_bytes(),
                encode(16, 16, i, ImageFormat::Jpeg),
            )
        })
        .collect();
    entries.push((b"length".to_vec(), b"5".to_vec()));
    lmdb_target("ffhq_lmdb", "ffhq_lmdb", &entries, |dir| {
        ffhq::open(dir, Some(16), None).is_ok_and(|mut source| {
            source.limits = FUZZ_LIMITS;
            drain(&source)
        })
    });
}
