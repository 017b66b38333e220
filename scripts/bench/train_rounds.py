"""Summarises the alternating rounds of scripts/bench_train.sh, per config: for ncsn, the
authors' code with denormals flushed and the authors' code as users run it, the median and best seconds
per step over the rounds, and ncsn's ratio to each (their time / ours: above 1 is ncsn faster)
taken three ways: median against median, best against best (the machine's noise only slows a
run down), and the median of the per-round ratios (each round's runs are minutes apart).

usage: train_rounds.py ROUNDS.jsonl   (the JSON lines, with '# round N' lines between rounds)"""
import json
import statistics
import sys


def step_s(r):
    # Both report their median step (bench_train over its sync intervals: every step at
    # --sync-every 1, which bench_train.sh passes on the CPU); a bench_train line from before it
    # did has only the mean.
    return r.get("median_step_s", 1.0 / r["steps_per_s"])


def kind(r):
    if r["impl"] == "ncsn":
        return "ncsn"
    return "authors, denormals flushed" if r.get("flush_denormal") else "authors as users run it"


rounds, batch = [], {}
for line in open(sys.argv[1]):
    if line.startswith("# round"):
        rounds.append({})
    elif line.startswith("{") and rounds:
        r = json.loads(line)
        if "config" not in r:  # not a training line (the reference's, bench_pool's)
            continue
        rounds[-1][(r["config"], kind(r))] = step_s(r)
        batch[r["config"]] = r["batch"]
KINDS = ("ncsn", "authors, denormals flushed", "authors as users run it")
for config in dict.fromkeys(c for r in rounds for c, _ in r):
    times = {k: [r[(config, k)] for r in rounds if (config, k) in r] for k in KINDS}
    ours = times["ncsn"]
    print(f"\n{config}, batch {batch[config]}, {len(ours)} rounds, seconds per step "
          "(median step of a run):\n")
    print("| implementation | median | best | ncsn ratio: medians | bests | per-round median |")
    print("|---|---:|---:|---:|---:|---:|")
    for k, v in times.items():
        if not v:
            continue
        med, best = statistics.median(v), min(v)
        if k == "ncsn":
            print(f"| {k} | {med:.3f} | {best:.3f} | | | |")
            continue
        paired = [r[(config, k)] / r[(config, "ncsn")] for r in rounds
                  if (config, k) in r and (config, "ncsn") in r]
        print(f"| {k} | {med:.3f} | {best:.3f} | {med / statistics.median(ours):.2f}x "
              f"| {best / min(ours):.2f}x | {statistics.median(paired):.2f}x |")
