//! Shared by the parity tests: the reference Python interpreter and the photo-like image
//! generator (Python source, prepended to each test's script).

pub use testkit::python::py;

/// `photo(w, h, seed)`: smooth gradients, hard-edged shapes, one-pixel lines and noise, as a
/// uint8 HxWx3 array; `encode(a, kind, seed)`: bytes in one of the formats the datasets ship.
pub const PY_IMAGES: &str = r#"
import io
import numpy as np
from PIL import Image

def photo(w, h, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, p = rng.uniform(1, 9), rng.uniform(1, 9), rng.uniform(0, 6)
        a, b = rng.uniform(-60, 60, 2)
        img[..., c] = 128 + 70 * np.sin(x / w * fx + p) * np.cos(y / h * fy) + a * x / w + b * y / h
    for _ in range(8):  # hard-edged rectangles and discs
        cx, cy = rng.integers(0, w), rng.integers(0, h)
        r = rng.integers(2, max(3, min(w, h) // 4))
        col = rng.uniform(0, 255, 3)
        if rng.random() < 0.5:
            img[max(0, cy - r):cy + r, max(0, cx - r // 2):cx + r] = col
        else:
            img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = col
    img[:, rng.integers(0, w)] = 255  # one-pixel lines: worst case for ringing filters
    img[rng.integers(0, h), :] = 0
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8)

def encode(a, kind, seed):
    h, w = a.shape[:2]
    im = Image.fromarray(a, "RGB")
    b = io.BytesIO()
    if kind.startswith("jpeg"):
        opts = dict(quality=95, subsampling={"jpeg420": 2, "jpeg422": 1, "jpeg444": 0}.get(kind, 2))
        if kind == "jpeg_prog":
            opts["progressive"] = True
        if kind == "jpeg_gray":
            im = im.convert("L")
        if kind == "jpeg_cmyk":
            im = im.convert("CMYK")
            opts.pop("subsampling")
        im.save(b, "JPEG", **opts)
    elif kind == "webp_lossy":
        im.save(b, "WEBP", quality=90)
    elif kind == "webp_lossless":
        im.save(b, "WEBP", lossless=True)
    elif kind == "webp_alpha":
        im.putalpha(Image.fromarray(photo(w, h, seed + 1)[..., 0]))
        im.save(b, "WEBP", quality=90)
    elif kind == "png_rgb":
        im.save(b, "PNG")
    elif kind == "png_rgba":
        im.putalpha(Image.fromarray(a[..., 1]))
        im.save(b, "PNG")
    elif kind == "png_l":
        im.convert("L").save(b, "PNG")
    elif kind == "png_la":
        im.convert("LA").save(b, "PNG")
    elif kind == "png_p":
        im.quantize(colors=200).save(b, "PNG")
    elif kind == "png_i16":
        Image.fromarray((a[..., 0].astype(np.uint16) * 3).astype(np.uint16)).save(b, "PNG")
    else:
        raise SystemExit("unknown kind " + kind)
    return b.getvalue()
"#;
