//! Partial decoding is exact: for many rectangles of many JPEG and WebP files, the pixels that
//! `decode_region` returns inside the requested rectangle equal those of a full decode (which
//! `pillow_parity.rs` proves equal to Pillow's). This is what lets the recipes decode only the
//! pixels the crop and the resampling filter read.

mod parity_common;

use parity_common::{py, PY_IMAGES};
use pipeline::{decode, decode_region, Limits, Rect, View};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PY: &str = r#"
import sys
out = sys.argv[1]
kinds = ["jpeg420", "jpeg422", "jpeg444", "jpeg_gray", "jpeg_prog", "jpeg_cmyk",
         "webp_lossy", "webp_lossless", "webp_alpha"]
sizes = [(178, 218), (97, 61), (333, 250), (17, 300), (256, 341)]
n = 0
for i, kind in enumerate(kinds):
    for j, (w, h) in enumerate(sizes):
        if (i + j) % 2:
            continue
        seed = 100 * i + j
        with open(f"{out}/{n:03}_{kind}.img", "wb") as f:
            f.write(encode(photo(w, h, seed), kind, seed))
        n += 1
"#;

fn random_rect(rng: &mut ChaCha8Rng, w: u32, h: u32) -> Rect {
    let x0 = rng.random_range(0..w);
    let y0 = rng.random_range(0..h);
    let x1 = rng.random_range(x0 + 1..=w);
    let y1 = rng.random_range(y0 + 1..=h);
    Rect { x0, y0, x1, y1 }
}

#[test]
fn partial_decode_equals_full_decode_inside_the_request() {
    let dir = tempfile::tempdir().unwrap();
    py(&format!("{PY_IMAGES}\n{PY}"), &[dir.path()]);
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "generator wrote {} files", files.len());
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut checked = 0;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let full = decode(&bytes).unwrap();
        let (w, h) = (full.width, full.height);
        // Rectangles at every edge and corner, single pixels, and random ones.
        let mut rects = vec![
            Rect::new(0, 0, 1, 1),
            Rect::new(w - 1, h - 1, 1, 1),
            Rect::new(0, 0, w, 1),
            Rect::new(0, h - 1, w, 1),
            Rect::new(w / 2, 0, 1, h),
            Rect::new(w.saturating_sub(3), h / 3, w.min(3), h / 3 + 1),
        ];
        // Every start column near the chroma/MCU grid, with the CelebA crop's shape.
        for x0 in 0..w.min(40) {
            rects.push(Rect::new(
                x0,
                x0 % h,
                (w - x0).min(23),
                (h - x0 % h).min(29),
            ));
        }
        rects.extend((0..60).map(|_| random_rect(&mut rng, w, h)));
        for r in rects {
            let got = decode_region(&bytes, |_, _| Ok(r), true, Limits::default()).unwrap();
            assert!(
                got.area.contains(&r),
                "{}: {r:?} not covered",
                path.display()
            );
            let want = View::of(&full).copy_rect(r);
            let have = got.view().copy_rect(r);
            assert!(
                have == want,
                "{}: partial decode of {r:?} (decoded {:?}) differs from the full decode",
                path.display(),
                got.area
            );
            checked += 1;
        }
    }
    assert!(checked > 1500);
}
