#!/usr/bin/env bash
# End-to-end `ncsn ingest` throughput (read + decode + transform + Parquet write + journal) on
# generated CIFAR-10 binary batches and a CelebA layout of photo-like 178x218 JPEGs q95 (the
# same generator as scripts/bench_ingest.sh). Four configurations alternate for ROUNDS rounds:
# 1 worker, 2 workers, 2 workers with 2 shard writers, and 1 worker with the whole process
# pinned to one core (unpinned, the writer and reader threads run on the idle second core for
# free); each one's best time is reported, with the process's CPU time per image, and the
# shards must be byte-identical across all.
#
# usage: scripts/bench_ingest_e2e.sh [CIFAR_PER_BATCH N_CELEBA]   (default 10000 12000)
#   BENCH_DIR    where inputs are generated/reused (default ${TMPDIR:-/tmp}/ncsn-bench-ingest-e2e)
#   ROUNDS       rounds of the three configurations (default 3)
#   NCSN_PYTHON  Python with Pillow and numpy (default .venv/bin/python; scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${NCSN_PYTHON:-$PWD/.venv/bin/python}"
[ -x "$PY" ] || { echo "no Python with Pillow at $PY: run scripts/setup.sh" >&2; exit 1; }
PER_BATCH="${1:-10000}" N_CELEBA="${2:-12000}"
DIR="${BENCH_DIR:-${TMPDIR:-/tmp}/ncsn-bench-ingest-e2e}"
mkdir -p "$DIR"
cargo build --release --quiet -p pipeline --example bench_ingest_e2e
BIN="${CARGO_TARGET_DIR:-target}/release/examples/bench_ingest_e2e"

CELEBA="$DIR/celeba-photo-$N_CELEBA"
if [ ! -e "$CELEBA/list_eval_partition.txt" ]; then
  rm -rf "$CELEBA" && mkdir -p "$CELEBA"
  echo "generating $N_CELEBA CelebA-like JPEGs in $CELEBA ..."
  "$PY" scripts/bench/gen_inputs.py "$CELEBA" "$N_CELEBA" 0 0
  mv "$CELEBA/celeba" "$CELEBA/img_align_celeba" && rmdir "$CELEBA/lsun" "$CELEBA/ffhq"
  # CelebA's split proportions: about 81 % train, 10 % valid, 9 % test.
  ls "$CELEBA/img_align_celeba" | awk '{ print $0, (NR % 10 == 9 ? 1 : NR % 10 == 0 ? 2 : 0) }' \
    > "$CELEBA/list_eval_partition.txt.tmp"
  mv "$CELEBA/list_eval_partition.txt.tmp" "$CELEBA/list_eval_partition.txt"
fi
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" "$DIR" "$PER_BATCH" "$CELEBA" "${ROUNDS:-3}"
