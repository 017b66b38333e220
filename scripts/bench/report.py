"""Joins pillow_transforms.py and bench_transforms JSON lines into a Markdown table of img/s
per core and the ratio to Pillow. A measurement repeated over several rounds counts with its
best rate (the machine's noise only slows runs down). usage: report.py PILLOW.jsonl OURS.jsonl"""
import json
import sys


def load(path):
    best = {}
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            key = (r["set"], r["stage"])
            best[key] = max(best.get(key, 0.0), r["img_per_s"])
    return best


pil, ours = load(sys.argv[1]), load(sys.argv[2])
TARGET = {"celeba": 2.0, "lsun96": 1.5, "lsun128": 1.5, "ffhq": 2.0}
print("| input | stage | Pillow img/s | ours img/s | ours / Pillow | target |")
print("|---|---|---:|---:|---:|---:|")
for (s, stage), r in ours.items():
    p = pil.get((s, "transform" if stage.startswith("transform") else stage))
    label = {
        "decode": "decode only (full, to RGB)",
        "transform": "decode + transform (partial decode)",
        "transform_full_decode": "decode + transform (full decode)",
    }[stage]
    ratio = f"{r / p:.2f}x" if p else "-"
    tgt = f"{TARGET[s]:.1f}x" if stage == "transform" and s in TARGET else ""
    print(f"| {s} | {label} | {p:.0f} | {r:.0f} | {ratio} | {tgt} |" if p else f"| {s} | {label} | - | {r:.0f} | - | {tgt} |")
