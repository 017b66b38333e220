#!/usr/bin/env bash
# Training throughput: ncsn's training loop (trainer/examples/bench_train.rs: loader, DSM loss,
# Adam, EMA) against, in the same run on the same machine,
#   1. the authors' own code (scripts/bench/authors_train.py: ermongroup/ncsnv2's models/,
#      losses/ and EMAHelper as they are, vendored in scripts/bench/third_party/ncsnv2), the
#      ratio users care about, and
#   2. our PyTorch re-implementation (scripts/bench/train_reference.py), which also has the GPU
#      settings (TF32, bf16, channels-last) the authors' code lacks.
# Each line is one JSON object; results go to BENCHMARKS.md "## Training" by hand.
#
# The comparison with the authors' code runs ROUNDS times (default 5), alternating ncsn, the
# authors' code with denormals flushed (`torch.set_flush_denormal(True)`, as ncsn train runs:
# like for like) and, for CIFAR-10, as users run it, so that the VM's drift falls on all;
# scripts/bench/train_rounds.py then prints the medians, best-of-N and per-round ratios. Last,
# torchrt's CRP max-pool kernel against libtorch's (torchrt/examples/bench_pool.rs).
#
#   scripts/bench_train.sh            CPU: CIFAR-10 config at batch 8, CelebA 64 at batch 4, 2 threads
#   scripts/bench_train.sh --gpu      also the H100 settings (batch 128/128/32, fp32, TF32, bf16,
#                                     channels-last) for the PyTorch reference and ncsn fp32
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${NCSN_PYTHON:-.venv/bin/python}
[ -x "$PY" ] || { echo "no Python at $PY: run scripts/setup.sh" >&2; exit 1; }
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-2}
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2

cargo build --release -p trainer --example bench_train
BIN=${CARGO_TARGET_DIR:-target}/release/examples/bench_train

ROUNDS=${ROUNDS:-5}
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
authors() { # config batch [--flush-denormal]
  "$PY" scripts/bench/authors_train.py --config "configs/$1.yml" --batch "$2" --steps "$STEPS" \
      --warmup "$WARMUP" --threads 2 "${@:3}"
}
reference() { # config batch size L sigma1 adam_eps
  "$PY" scripts/bench/train_reference.py --size "$3" --batch "$2" --ngf 128 --num-classes "$4" \
      --sigma-begin "$5" --adam-eps "$6" --steps "$STEPS" --warmup "$WARMUP" --threads 2
}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for round in $(seq 1 "$ROUNDS"); do
  echo "# round $round, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  "$BIN" configs/cifar10.yml 8 "$STEPS" "$WARMUP" 2 cpu --sync-every 1
  authors cifar10 8 --flush-denormal
  authors cifar10 8
  "$BIN" configs/celeba.yml 4 "$STEPS" "$WARMUP" 2 cpu --sync-every 1
  authors celeba 4 --flush-denormal
done | tee "$OUT"
"$PY" scripts/bench/train_rounds.py "$OUT"
reference cifar10 8 32 232 50 1e-8
reference celeba 4 64 500 90 1e-8
cargo build --release -p torchrt --example bench_pool
"${CARGO_TARGET_DIR:-target}"/release/examples/bench_pool 1 9
"${CARGO_TARGET_DIR:-target}"/release/examples/bench_pool 2 9

if [ "${1:-}" = "--gpu" ]; then
  gpu() { # config batch size arch L sigma1 adam_eps
    "$BIN" "configs/$1.yml" "$2" "$STEPS" "$WARMUP" 16 cuda
    "$PY" scripts/bench/authors_train.py --config "configs/$1.yml" --batch "$2" --steps "$STEPS" \
        --warmup "$WARMUP" --device cuda
    for flags in "" "--tf32" "--bf16" "--tf32 --channels-last" "--bf16 --channels-last"; do
      # shellcheck disable=SC2086
      "$PY" scripts/bench/train_reference.py --device cuda --arch "$4" --size "$3" --batch "$2" \
          --ngf 128 --num-classes "$5" --sigma-begin "$6" --adam-eps "$7" --steps "$STEPS" \
          --warmup "$WARMUP" $flags
    done
  }
  gpu cifar10 128 32 ncsnv2 232 50 1e-8
  gpu celeba 128 64 ncsnv2 500 90 1e-8
  gpu church_outdoor 32 96 ncsnv2_deeper 788 140 1e-8
  gpu ffhq 32 256 ncsnv2_deepest 2311 348 1e-3
fi
