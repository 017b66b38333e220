//! Parity with the reference pipeline, `T(PIL.Image.open(f).convert('RGB'))` where `T` is
//! torchvision's Resize/CenterCrop semantics written out with Pillow (SPEC §3), on photo-like
//! images generated here (smooth gradients, noise, hard edges) in every format the datasets
//! ship: JPEG (4:2:0, 4:2:2, 4:4:4, progressive, grayscale, CMYK), WebP (lossy, lossless,
//! alpha), PNG (RGB, RGBA, L, LA, palette, 16-bit gray, 16-bit RGB and RGBA, Adam7 interlaced).
//!
//! One Python process per test writes the encoded files and Pillow's outputs to a temp dir;
//! the Rust side runs `process_encoded` with partial decoding on and off and requires the same
//! bytes as Pillow (the acceptance bound is max |Δ| ≤ 1, mean < 0.1; we are bit-exact).

mod parity_common;

use parity_common::{py, PY_IMAGES};

use pipeline::{process_encoded_with, Filter, Limits, Recipe};

/// Generates images, encodes them and computes Pillow's reference outputs. Reads a JSON list
/// of cases on argv[2], writes `<name>.<ext>` and `<name>.ref` (raw RGB) into argv[1].
const PY: &str = r#"
import json, sys

out, cases = sys.argv[1], json.loads(sys.argv[2])

def resize(img, s, filt):
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    ns, nl = s, int(s * long / short)
    nw, nh = (ns, nl) if w <= h else (nl, ns)
    if (nw, nh) == (w, h):
        return img
    return img.resize((nw, nh), filt)

def center_crop(img, s):
    w, h = img.size
    top, left = int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
    return img.crop((left, top, left + s, top + s))

FILTERS = {"bilinear": Image.BILINEAR, "lanczos": Image.LANCZOS}
for c in cases:
    data = encode(photo(c["w"], c["h"], c["seed"]), c["kind"], c["seed"])
    with open(f"{out}/{c['name']}.img", "wb") as f:
        f.write(data)
    img = Image.open(io.BytesIO(data)).convert("RGB")
    r = c["recipe"]
    if r[0] == "crop_resize":
        img = resize(center_crop(img, r[1]), r[2], FILTERS[r[3]])
    elif r[0] == "resize_crop":
        img = center_crop(resize(img, r[1], FILTERS[r[2]]), r[1])
    with open(f"{out}/{c['name']}.ref", "wb") as f:
        f.write(np.asarray(img).tobytes())
"#;

struct Case {
    name: String,
    w: u32,
    h: u32,
    kind: &'static str,
    recipe: Recipe,
}

fn recipe_json(r: &Recipe) -> String {
    let f = |f: &Filter| match f {
        Filter::Bilinear => "bilinear",
        Filter::Lanczos => "lanczos",
    };
    match r {
        Recipe::Identity => r#"["identity"]"#.to_string(),
        Recipe::CropResize { crop, size, filter } => {
            format!(r#"["crop_resize", {crop}, {size}, "{}"]"#, f(filter))
        }
        Recipe::ResizeCrop { size, filter } => {
            format!(r#"["resize_crop", {size}, "{}"]"#, f(filter))
        }
    }
}

/// Runs Pillow on all cases, then checks our output (partial and full decode) against it.
fn check(cases: &[Case]) {
    let dir = tempfile::tempdir().unwrap();
    let spec: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                r#"{{"name": "{}", "w": {}, "h": {}, "seed": {}, "kind": "{}", "recipe": {}}}"#,
                c.name,
                c.w,
                c.h,
                1000 + i,
                c.kind,
                recipe_json(&c.recipe)
            )
        })
        .collect();
    let spec = format!("[{}]", spec.join(", "));
    let dir_arg = dir.path().as_os_str();
    py(&format!("{PY_IMAGES}\n{PY}"), &[dir_arg, spec.as_ref()]);
    let mut failures = Vec::new();
    for c in cases {
        let bytes = std::fs::read(dir.path().join(format!("{}.img", c.name))).unwrap();
        let want = std::fs::read(dir.path().join(format!("{}.ref", c.name))).unwrap();
        for partial in [true, false] {
            let got = process_encoded_with(&bytes, &c.recipe, partial, Limits::default())
                .unwrap_or_else(|e| panic!("{}: {e}", c.name));
            let (ow, oh) = match c.recipe {
                Recipe::Identity => (c.w, c.h),
                r => r.output_size(),
            };
            assert_eq!((got.width, got.height), (ow, oh), "{}: output size", c.name);
            assert_eq!(got.data.len(), want.len(), "{}: output length", c.name);
            let diffs: Vec<u32> = got
                .data
                .iter()
                .zip(&want)
                .map(|(&a, &b)| (a as i32 - b as i32).unsigned_abs())
                .collect();
            let max = diffs.iter().copied().max().unwrap_or(0);
            let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
            if max > 0 {
                failures.push(format!(
                    "{} ({}, {}x{}, {}, partial={partial}): max |Δ| {max}, mean {mean:.4}",
                    c.name,
                    c.kind,
                    c.w,
                    c.h,
                    c.recipe.describe()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "differs from Pillow:\n{}",
        failures.join("\n")
    );
}

fn case(name: &str, w: u32, h: u32, kind: &'static str, recipe: Recipe) -> Case {
    Case {
        name: name.to_string(),
        w,
        h,
        kind,
        recipe,
    }
}

const CELEBA: Recipe = Recipe::CropResize {
    crop: 140,
    size: 64,
    filter: Filter::Bilinear,
};

#[test]
fn celeba_crop_then_resize() {
    let mut cases = Vec::new();
    for (i, kind) in [
        "jpeg420",
        "jpeg444",
        "jpeg420",
        "jpeg422",
        "jpeg_prog",
        "jpeg_gray",
    ]
    .into_iter()
    .enumerate()
    {
        cases.push(case(&format!("celeba{i}"), 178, 218, kind, CELEBA));
    }
    // Odd sizes move the crop off the chroma grid and to the image edge.
    for (i, (w, h)) in [(141, 140), (181, 223), (179, 219), (200, 150)]
        .into_iter()
        .enumerate()
    {
        cases.push(case(&format!("celeba_odd{i}"), w, h, "jpeg420", CELEBA));
    }
    cases.push(case("celeba_png", 178, 218, "png_rgb", CELEBA));
    check(&cases);
}

#[test]
fn lsun_resize_then_crop() {
    let sizes = [
        (256, 341),
        (400, 256),
        (300, 300),
        (383, 257),
        (257, 399),
        (512, 384),
    ];
    let kinds = ["webp_lossy", "webp_lossless", "jpeg420", "webp_alpha"];
    let mut cases = Vec::new();
    for (i, &(w, h)) in sizes.iter().enumerate() {
        for (j, r) in [96, 128].into_iter().enumerate() {
            let kind = kinds[(i + j) % kinds.len()];
            let recipe = Recipe::ResizeCrop {
                size: r,
                filter: Filter::Bilinear,
            };
            cases.push(case(&format!("lsun{i}_{r}"), w, h, kind, recipe));
        }
    }
    check(&cases);
}

#[test]
fn folder_odd_sizes_and_every_color_mode() {
    let kinds = [
        "png_rgb",
        "png_rgba",
        "png_l",
        "png_la",
        "png_p",
        "png_i16",
        "png_rgb16_adam7",
        "png_rgba16",
        "png_rgb_adam7",
        "jpeg422",
        "jpeg_gray",
        "jpeg_cmyk",
        "jpeg_prog",
        "webp_alpha",
        "webp_lossless",
    ];
    let sizes = [
        (97, 61),
        (45, 77),
        (123, 123),
        (31, 50),
        (255, 129),
        (64, 201),
    ];
    let mut cases = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let (w, h) = sizes[i % sizes.len()];
        // 33 and 97 are odd; 64 on a 31-wide image upsamples.
        let size = [33, 64, 97, 48][i % 4];
        let recipe = Recipe::ResizeCrop {
            size,
            filter: Filter::Bilinear,
        };
        cases.push(case(&format!("folder{i}"), w, h, kind, recipe));
    }
    cases.push(case("cifar", 32, 32, "png_rgb", Recipe::Identity));
    check(&cases);
}

#[test]
fn ffhq_lanczos() {
    let ffhq = Recipe::ResizeCrop {
        size: 256,
        filter: Filter::Lanczos,
    };
    let mut cases = vec![case("ffhq0", 1024, 1024, "png_rgb", ffhq)];
    // Lanczos at other ratios and odd sizes, and on the authors' JPEG layout.
    for (i, (w, h, size)) in [
        (333, 250, 64),
        (129, 200, 97),
        (64, 64, 96),
        (517, 517, 128),
    ]
    .into_iter()
    .enumerate()
    {
        let kind = ["png_rgb", "jpeg420", "webp_lossy", "jpeg444"][i];
        let recipe = Recipe::ResizeCrop {
            size,
            filter: Filter::Lanczos,
        };
        cases.push(case(&format!("lanczos{i}"), w, h, kind, recipe));
    }
    check(&cases);
}
