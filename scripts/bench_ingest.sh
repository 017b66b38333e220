#!/usr/bin/env bash
# Ingestion benchmark, one core each: our decoders + Pillow-exact transforms (Rust, release)
# against the Pillow reference pipeline on the same generated inputs (CelebA-like 178x218 JPEG
# q95, LSUN-like WebP with shorter side 256-400, FFHQ-like 1024^2 PNG).
#
# usage: scripts/bench_ingest.sh [N_CELEBA N_LSUN N_FFHQ]   (default 400 150 8)
#   BENCH_DIR    where inputs are generated/reused (default ${TMPDIR:-/tmp}/ncsn-bench-ingest)
#   MIN_SECONDS  minimum timing per measurement (default 3)
#   ROUNDS       Pillow and ours run alternately this many times; each rate reported is the
#                best of its rounds (default 3: the VM's speed drifts by tens of percent
#                between minutes, and noise only ever slows a run down)
#   NCSN_PYTHON  Python with Pillow (default .venv/bin/python; run scripts/setup.sh first)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${NCSN_PYTHON:-$PWD/.venv/bin/python}"
[ -x "$PY" ] || { echo "no Python with Pillow at $PY: run scripts/setup.sh" >&2; exit 1; }
N_CELEBA="${1:-400}" N_LSUN="${2:-150}" N_FFHQ="${3:-8}"
DIR="${BENCH_DIR:-${TMPDIR:-/tmp}/ncsn-bench-ingest}"
MIN_S="${MIN_SECONDS:-3}"
ROUNDS="${ROUNDS:-3}"

cargo build --release --quiet -p pipeline --example bench_transforms
BIN="${CARGO_TARGET_DIR:-target}/release/examples/bench_transforms"

stamp="$DIR/.inputs-$N_CELEBA-$N_LSUN-$N_FFHQ"
if [ ! -e "$stamp" ]; then
  rm -rf "$DIR" && mkdir -p "$DIR"
  "$PY" scripts/bench/gen_inputs.py "$DIR" "$N_CELEBA" "$N_LSUN" "$N_FFHQ"
  touch "$stamp"
fi

# One core for both sides; Pillow and libjpeg-turbo/libwebp are single-threaded here anyway.
PIN=()
command -v taskset >/dev/null && PIN=(taskset -c 0)
out="$(mktemp -d)"
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS"
  "${PIN[@]}" "$PY" scripts/bench/pillow_transforms.py "$DIR" "$MIN_S" | tee -a "$out/pillow.jsonl"
  "${PIN[@]}" "$BIN" "$DIR" "$MIN_S" | tee -a "$out/ours.jsonl"
done
echo
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" scripts/bench/report.py "$out/pillow.jsonl" "$out/ours.jsonl"
rm -rf "$out"
