"""Summarises the alternating CIFAR-10 rounds of scripts/bench_train.sh: for ncsn, the authors'
code with denormals flushed and the authors' code as users run it, the median and best seconds
per step over the rounds, and ncsn's ratio to each (their time / ours: above 1 is ncsn faster)
taken three ways: median against median, best against best (the machine's noise only slows a
run down), and the median of the per-round ratios (each round's runs are minutes apart).

usage: train_rounds.py ROUNDS.jsonl   (the JSON lines, with '# round N' lines between rounds)"""
import json
import statistics
import sys


def step_s(r):
    # The authors' script reports its median step; bench_train its mean over the timed window.
    return r["median_step_s"] if "median_step_s" in r else 1.0 / r["steps_per_s"]


def kind(r):
    if r["impl"] == "ncsn":
        return "ncsn"
    return "authors, denormals flushed" if r.get("flush_denormal") else "authors as users run it"


rounds = []
for line in open(sys.argv[1]):
    if line.startswith("# round"):
        rounds.append({})
    elif line.startswith("{") and rounds:
        r = json.loads(line)
        rounds[-1][kind(r)] = step_s(r)
times = {k: [r[k] for r in rounds if k in r] for k in
         ("ncsn", "authors, denormals flushed", "authors as users run it")}
print(f"| {len(rounds)} rounds, s/step | median | best | ncsn ratio, median | best | per-round median |")
print("|---|---:|---:|---:|---:|---:|")
for k, v in times.items():
    if not v:
        continue
    med, best = statistics.median(v), min(v)
    if k == "ncsn":
        print(f"| {k} | {med:.3f} | {best:.3f} | | | |")
        continue
    paired = [r[k] / r["ncsn"] for r in rounds if k in r and "ncsn" in r]
    print(f"| {k} | {med:.3f} | {best:.3f} | {med / statistics.median(times['ncsn']):.2f}x "
          f"| {best / min(times['ncsn']):.2f}x | {statistics.median(paired):.2f}x |")
