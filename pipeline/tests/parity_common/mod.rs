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

def raw_png(a, bits, interlace):
    """PNG written by hand: what Pillow cannot save (16-bit RGB/RGBA, Adam7 interlacing)."""
    import struct, zlib
    h, w, c = a.shape
    px = a.astype(">u2") * 257 + np.arange(a.size, dtype=">u2").reshape(a.shape) % 251 if bits == 16 else a
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in (passes if interlace else [(0, 0, 1, 1)]):
        sub = px[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\0" + row.astype(">u2" if bits == 16 else "u1").tobytes() for row in sub)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, bits, {1: 0, 3: 2, 4: 6}[c], 0, 0, int(interlace))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")

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
    elif kind == "png_rgb16_adam7":
        return raw_png(a, 16, True)
    elif kind == "png_rgba16":
        return raw_png(np.dstack([a, a[..., 1:2]]), 16, False)
    elif kind == "png_rgb_adam7":
        return raw_png(a, 8, True)
    else:
        raise SystemExit("unknown kind " + kind)
    return b.getvalue()
"#;
