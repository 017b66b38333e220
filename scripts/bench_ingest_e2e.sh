#!/usr/bin/env bash
# End-to-end `ncsn ingest` throughput (read + decode + transform + Parquet write + journal), 1 vs
# 2 workers, on generated CIFAR-10 binary batches and CelebA-like 178x218 JPEGs (q95). Also
# checks the shards are byte-identical across worker counts.
#
# usage: scripts/bench_ingest_e2e.sh [CIFAR_PER_BATCH N_CELEBA]   (default 10000 3000)
#   BENCH_DIR  where inputs are generated/reused (default ${TMPDIR:-/tmp}/ncsn-bench-ingest-e2e)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${BENCH_DIR:-${TMPDIR:-/tmp}/ncsn-bench-ingest-e2e}"
mkdir -p "$DIR"
cargo build --release --quiet -p pipeline --example bench_ingest_e2e
BIN="${CARGO_TARGET_DIR:-target}/release/examples/bench_ingest_e2e"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" "$DIR" "${1:-10000}" "${2:-3000}"
