#!/usr/bin/env bash
# Start-up cost of the `ncsn` binary: wall time and peak RSS of `ncsn --version` and
# `ncsn inspect DIR` (a tiny ingested dataset), the best of ROUNDS runs each (noise only ever
# slows a run down), and `ncsn doctor` for the cost of a subcommand that loads libtorch.
# Needs /usr/bin/time (Debian: time) for the RSS.
#
#   scripts/bench_startup.sh              # builds the release binaries, measures them
#   NCSN=/path/to/ncsn scripts/bench_startup.sh   # measures another build (e.g. an older one)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-10}"
if [ -z "${NCSN:-}" ]; then
  cargo build --release --locked --bin ncsn --bin ncsn-torch
  NCSN="${CARGO_TARGET_DIR:-target}/release/ncsn"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$NCSN" synth cifar10 --out "$work/raw" --n-train 16 --n-test 16 >/dev/null
"$NCSN" ingest cifar10 --input "$work/raw/cifar-10-batches-bin" --out "$work/tiny" >/dev/null

echo "== $(date -u +%FT%TZ) $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg); binary: $NCSN"
python3 - "$ROUNDS" "$NCSN" "$work/tiny" <<'PY'
import subprocess, sys, time
rounds, ncsn, tiny = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def wall(argv):
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0

def peak_rss_mib(argv):
    # Through /usr/bin/time, whose child starts small: a child forked from Python carries
    # Python's resident pages into its own peak (the kernel keeps the larger across exec).
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, check=True)
    return int(out.stderr.split()[-1]) / 1024

for name, argv in [("--version", [ncsn, "--version"]), ("inspect", [ncsn, "inspect", tiny]),
                   ("doctor", [ncsn, "doctor"])]:
    walls = sorted(wall(argv) for _ in range(rounds))
    rss = min(peak_rss_mib(argv) for _ in range(rounds))
    print(f"ncsn {name:<10} wall best {walls[0]*1e3:7.1f} ms, median {walls[len(walls)//2]*1e3:7.1f} ms;"
          f"  peak RSS {rss:6.1f} MiB  (best of {rounds})")
PY
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
