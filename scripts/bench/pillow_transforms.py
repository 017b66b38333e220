"""Pillow's side of the ingestion benchmark, one core: the reference pipeline
(`Image.open(f).convert('RGB')` then torchvision's Resize/CenterCrop semantics, then the raw
bytes a shard would store) on the files gen_inputs.py wrote, read into memory first so disk
speed does not count. Prints one JSON object per line: {"set", "stage", "img_per_s", "n"}.

usage: pillow_transforms.py IN_DIR [MIN_SECONDS]
"""
import io
import json
import os
import sys
import time

from PIL import Image


def resize(img, s, filt):
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    ns, nl = s, int(s * long / short)
    nw, nh = (ns, nl) if w <= h else (nl, ns)
    return img if (nw, nh) == (w, h) else img.resize((nw, nh), filt)


def center_crop(img, s):
    w, h = img.size
    top, left = int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
    return img.crop((left, top, left + s, top + s))


def decode(b):
    # torchvision's pil_loader, exactly.
    return Image.open(io.BytesIO(b)).convert("RGB")


RECIPES = {
    "celeba": lambda im: resize(center_crop(im, 140), 64, Image.BILINEAR),
    "lsun96": lambda im: center_crop(resize(im, 96, Image.BILINEAR), 96),
    "lsun128": lambda im: center_crop(resize(im, 128, Image.BILINEAR), 128),
    "ffhq": lambda im: center_crop(resize(im, 256, Image.LANCZOS), 256),
}
SETS = {"celeba": "celeba", "lsun96": "lsun", "lsun128": "lsun", "ffhq": "ffhq"}


def rate(files, fn, min_s):
    n, t0 = 0, time.perf_counter()
    while True:
        for b in files:
            fn(b)
        n += len(files)
        dt = time.perf_counter() - t0
        if dt >= min_s:
            return n / dt, n


def main():
    root, min_s = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    done = set()
    for name, sub in SETS.items():
        d = os.path.join(root, sub)
        files = [open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))]
        if not files:
            continue
        if sub not in done:
            r, n = rate(files, decode, min_s)
            print(json.dumps({"set": sub, "stage": "decode", "img_per_s": r, "n": n}), flush=True)
            done.add(sub)
        fn = RECIPES[name]
        r, n = rate(files, lambda b: fn(decode(b)).tobytes(), min_s)
        print(json.dumps({"set": name, "stage": "transform", "img_per_s": r, "n": n}), flush=True)


if __name__ == "__main__":
    main()
