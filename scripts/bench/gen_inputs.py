"""Writes the ingestion benchmark's inputs: CelebA-like JPEGs (178x218, q95, 4:2:0),
LSUN-like WebPs (shorter side 256-400, aspect 1.0-1.6, Pillow's default quality 80) and
FFHQ-like PNGs (1024x1024). Photo-like content: smooth gradients, hard-edged shapes, noise.

usage: gen_inputs.py OUT_DIR N_CELEBA N_LSUN N_FFHQ
"""
import io
import os
import sys

import numpy as np
from PIL import Image


def photo(w, h, rng):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, p = rng.uniform(1, 9), rng.uniform(1, 9), rng.uniform(0, 6)
        a, b = rng.uniform(-60, 60, 2)
        img[..., c] = 128 + 70 * np.sin(x / w * fx + p) * np.cos(y / h * fy) + a * x / w + b * y / h
    for _ in range(12):
        cx, cy = rng.integers(0, w), rng.integers(0, h)
        r = rng.integers(2, max(3, min(w, h) // 5))
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 4, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8))


def main():
    out, n_celeba, n_lsun, n_ffhq = sys.argv[1], *map(int, sys.argv[2:5])
    rng = np.random.default_rng(0)
    for sub, n in [("celeba", n_celeba), ("lsun", n_lsun), ("ffhq", n_ffhq)]:
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for i in range(n_celeba):
        photo(178, 218, rng).save(f"{out}/celeba/{i:06}.jpg", quality=95, subsampling=2)
    for i in range(n_lsun):
        short = int(rng.integers(256, 401))
        long = int(short * rng.uniform(1.0, 1.6))
        w, h = (long, short) if rng.random() < 0.7 else (short, long)
        photo(w, h, rng).save(f"{out}/lsun/{i:06}.webp", quality=80)
    for i in range(n_ffhq):
        photo(1024, 1024, rng).save(f"{out}/ffhq/{i:05}.png")


if __name__ == "__main__":
    main()
