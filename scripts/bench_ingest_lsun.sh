#!/usr/bin/env bash
# LSUN end to end on one core: `ncsn ingest lsun` against the authors' way (torchvision's
# LSUNClass + Resize(r) + CenterCrop(r), written with pyarrow: scripts/bench/
# authors_lsun_ingest.py), both on the same LMDB of LSUN-like WebPs (scripts/bench/
# gen_inputs.py: real-photo-like content, shorter side 256-400, Pillow quality 80), both whole
# processes (start-up, LMDB read, decode, resize, crop, Parquet write), both pinned to one
# core with taskset. Rounds alternate; the best wall time of each is kept.
#
# usage: scripts/bench_ingest_lsun.sh [N] [RESOLUTION]   (default 3000 96)
#   BENCH_DIR   where inputs are generated/reused (default ${TMPDIR:-/tmp}/ncsn-bench-lsun)
#   ROUNDS      (default 3)
#   NCSN        the ncsn binary (default: target/release/ncsn, built here)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${NCSN_PYTHON:-$PWD/.venv/bin/python}"
[ -x "$PY" ] || { echo "no Python at $PY: run scripts/setup.sh" >&2; exit 1; }
# The reference reads the LMDB with the `lmdb` package, as torchvision does; only this bench
# needs it.
"$PY" -c "import lmdb" 2>/dev/null ||
  "$PY" -m pip install -q --no-cache-dir --disable-pip-version-check "lmdb==1.7.5"
N="${1:-3000}" R="${2:-96}" ROUNDS="${ROUNDS:-3}"
DIR="${BENCH_DIR:-${TMPDIR:-/tmp}/ncsn-bench-lsun}"
if [ -z "${NCSN:-}" ]; then
  cargo build --release --quiet --bin ncsn
  NCSN="${CARGO_TARGET_DIR:-target}/release/ncsn"
fi
LMDB="$DIR/church_outdoor_train_lmdb-$N"
if [ ! -e "$LMDB/data.mdb" ]; then
  echo "generating $N LSUN-like WebPs and their LMDB in $DIR ..." >&2
  rm -rf "$DIR/src-$N" "$LMDB" && mkdir -p "$DIR/src-$N"
  "$PY" scripts/bench/gen_inputs.py "$DIR/src-$N" 0 "$N" 0
  "$PY" scripts/bench/make_lsun_lmdb.py "$DIR/src-$N/lsun" "$LMDB"
  rm -rf "$DIR/src-$N"
fi
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); N=$N r=$R; one core (taskset -c 0)"
now() { date +%s.%N; }
best_ncsn=999999 best_ref=999999
for round in $(seq "$ROUNDS"); do
  rm -rf "$DIR/out-ncsn" "$DIR/out-ref"
  t0=$(now)
  taskset -c 0 "$NCSN" ingest lsun --input "$LMDB" --out "$DIR/out-ncsn" --resolution "$R" \
    --workers 1 -q >/dev/null
  t1=$(now)
  taskset -c 0 "$PY" scripts/bench/authors_lsun_ingest.py "$LMDB" "$DIR/out-ref" "$R" >/dev/null
  t2=$(now)
  read -r a b < <(echo "$t0 $t1 $t2" | awk '{ printf "%.3f %.3f\n", $2 - $1, $3 - $2 }')
  echo "round $round: ncsn $a s ($(awk -v n="$N" -v t="$a" 'BEGIN { printf "%.0f", n / t }') img/s)," \
    "authors' way $b s ($(awk -v n="$N" -v t="$b" 'BEGIN { printf "%.0f", n / t }') img/s)"
  best_ncsn=$(awk -v x="$a" -v y="$best_ncsn" 'BEGIN { print (x < y) ? x : y }')
  best_ref=$(awk -v x="$b" -v y="$best_ref" 'BEGIN { print (x < y) ? x : y }')
done
awk -v a="$best_ncsn" -v b="$best_ref" -v n="$N" 'BEGIN {
  printf "best: ncsn %.3f s (%.0f img/s), authors %.3f s (%.0f img/s): %.2fx per core\n",
         a, n / a, b, n / b, b / a }'
