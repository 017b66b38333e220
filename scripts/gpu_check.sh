#!/usr/bin/env bash
# The whole one-GPU path of ncsn (issue 16, parts 1 and 3) on a single-GPU machine in under 10
# minutes of wall time, start-up included, written to ONE results file of JSON lines:
#
#   1. setup: scripts/setup.sh (reuses the machine's python3 torch 2.11, no download), or the
#      binaries carried in --bin-dir (ncsn, ncsn-torch, bench_train: built here with
#      `cargo build --release --bins && cargo build --release -p trainer --example bench_train`
#      and copied into one folder), else `cargo build --release` within its own time box;
#   2. `ncsn doctor --check` (CUDA visible, a matmul on the GPU, a one-rank NCCL all-reduce);
#   3. a few hundred CUDA training steps of the CIFAR-10 (b128, 32 px), CelebA (b128, 64 px),
#      LSUN church (b128, 96 px) and FFHQ (b32, 256 px) configs through the real loop
#      (trainer/examples/bench_train.rs: loader, pinned batches on
#      a side stream, DSM loss, Adam, EMA, host reads every --sync-every steps), fp32 (TF32 on,
#      the default) and bf16 + channels-last, with the data-wait share;
#   4. the same network in PyTorch on the same GPU (scripts/bench/train_reference.py, fp32 with
#      TF32 off and bf16 + channels-last) and, for CIFAR-10 and CelebA, the authors' own code
#      (scripts/bench/authors_train.py, fp32);
#   5. `ncsn train` end to end on a synthetic CIFAR-10 (ingested here), the same run launched
#      by torchrun with world size 1 over NCCL (the data-parallel path: the rendezvous store,
#      the process group, one all-reduce per step), then `ncsn sample` throughput fp32 and
#      bf16 + channels-last from its checkpoint;
#   6. GPU memory: the peak of nvidia-smi's memory.used during each stage (the CUDA context and
#      the caching allocator's reserve included), and PyTorch's max_memory_allocated for the
#      Python stages.
#
# Each stage runs under `timeout` and the whole script under a deadline (CHECK_BUDGET_S, 540 s
# by default): a stage that hangs or would start too late is recorded as such and the next one
# runs. Progress goes to stderr; every stage appends one line to the results file:
#   {"stage": ..., "status": "ok"|"failed"|"timeout"|"skipped", "wall_s": ..., "peak_gpu_mib":
#    ..., "result": <the stage's own JSON line or null>}
#
#   scripts/gpu_check.sh [--bin-dir DIR] [--cpu-dry-run] [RESULTS_FILE]
#
# RESULTS_FILE defaults to $OUT/gpu_check.jsonl (or ./gpu_check.jsonl without $OUT).
# To carry binaries built elsewhere (no cargo build on the GPU machine's clock):
#   mkdir -p target/gpu-bin && cp target/release/ncsn target/release/ncsn-torch \
#     target/release/examples/bench_train target/gpu-bin/ && strip target/gpu-bin/*
#   then on the GPU machine: scripts/gpu_check.sh --bin-dir target/gpu-bin "$OUT/gpu_check.jsonl"
# --cpu-dry-run runs every stage on the CPU with ngf 16 configs, batch 2 and a few steps, to test
# the plumbing on a machine without a GPU; its numbers mean nothing.
# The dry run launches two CPU ranks over Gloo where the GPU run launches one over NCCL.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DRY=0
BIN_DIR=""
RESULTS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-dry-run) DRY=1 ;;
    --bin-dir) BIN_DIR=$(cd "$2" && pwd); shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 0 ;;
    -*) echo "gpu_check: unknown flag $1" >&2; exit 2 ;;
    *) RESULTS=$1 ;;
  esac
  shift
done
RESULTS=${RESULTS:-${OUT:-.}/gpu_check.jsonl}
mkdir -p "$(dirname "$RESULTS")"
: > "$RESULTS"
RESULTS=$(cd "$(dirname "$RESULTS")" && pwd)/$(basename "$RESULTS")

BUDGET=${CHECK_BUDGET_S:-540}
START=$SECONDS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ncsn-gpu-check.XXXXXX")
trap 'kill "$SMI_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
SMI_PID=""

log() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - START))" "$*" >&2; }

if [ "$DRY" = 1 ]; then
  DEV=cpu; THREADS=2
  CIFAR_B=2; CELEBA_B=2; CHURCH_B=2; FFHQ_B=2; WARM=1; STEPS=2; CELEBA_STEPS=2; CHURCH_STEPS=2
  FFHQ_STEPS=1; TRAIN_ITERS=4; SAMPLE_N=4
else
  DEV=cuda; THREADS=16
  CIFAR_B=128; CELEBA_B=128; CHURCH_B=128; FFHQ_B=32; WARM=10; STEPS=150; CELEBA_STEPS=80
  CHURCH_STEPS=40; FFHQ_STEPS=30; TRAIN_ITERS=200; SAMPLE_N=128
fi

# The GPU memory in use, sampled every 200 ms in the background; each stage reports the peak of
# the samples taken while it ran.
SMI_LOG=$WORK/smi.log
: > "$SMI_LOG"
if [ "$DRY" = 0 ] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$SMI_LOG" 2>/dev/null &
  SMI_PID=$!
fi
peak_since() { # line count at the stage's start
  [ -s "$SMI_LOG" ] || { echo null; return; }
  tail -n +"$(($1 + 1))" "$SMI_LOG" | sort -n | tail -1 | grep -E '^[0-9]+$' || echo null
}

# stage NAME TIMEOUT_S CMD...: runs CMD under timeout (skipped if the deadline is too near),
# appends its result line; CMD's last stdout line that is a JSON object is its result.
stage() {
  local name=$1 limit=$2; shift 2
  local left=$((BUDGET - (SECONDS - START)))
  if [ "$left" -lt 15 ]; then
    log "$name: skipped (${left}s left of ${BUDGET}s)"
    printf '{"stage":"%s","status":"skipped","wall_s":0,"peak_gpu_mib":null,"result":null}\n' \
      "$name" >> "$RESULTS"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  log "$name: start (limit ${limit}s)"
  local smi0 t0=$SECONDS status rc
  smi0=$(wc -l < "$SMI_LOG")
  timeout --kill-after=10 "$limit" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err"
  rc=$?
  case $rc in
    0) status=ok ;;
    124|137) status=timeout ;;
    *) status=failed ;;
  esac
  local result
  result=$(grep -E '^\{.*\}$' "$WORK/$name.out" | tail -1)
  [ -n "$result" ] || result=null
  printf '{"stage":"%s","status":"%s","wall_s":%d,"peak_gpu_mib":%s,"result":%s}\n' \
    "$name" "$status" "$((SECONDS - t0))" "$(peak_since "$smi0")" "$result" >> "$RESULTS"
  log "$name: $status in $((SECONDS - t0))s $( [ "$result" != null ] && echo "$result" | cut -c1-160)"
  if [ "$status" != ok ]; then
    tail -5 "$WORK/$name.err" | sed "s/^/[gpu_check]   $name: /" >&2
  fi
  return 0
}

# --- 1. setup ---------------------------------------------------------------------------------
log "results: $RESULTS ($([ "$DRY" = 1 ] && echo 'CPU dry run' || echo "$DEV"))"
[ "$DRY" = 0 ] && command -v nvidia-smi >/dev/null && nvidia-smi -L >&2
stage setup 120 bash scripts/setup.sh
PY=$ROOT/.venv/bin/python
[ -x "$PY" ] || PY=$(command -v python3)
export NCSN_PYTHON=$PY OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
# Carried binaries were linked against this machine's libtorch path: point them at the one the
# setup found (LD_LIBRARY_PATH wins over their RUNPATH).
TORCH_LIB=$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)
[ -n "$TORCH_LIB" ] && export LD_LIBRARY_PATH=$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The front-end `ncsn` looks in $LIBTORCH/lib first (README, Install).
[ -d "$ROOT/.libtorch/libtorch/lib" ] && export LIBTORCH=$ROOT/.libtorch/libtorch

if [ -n "$BIN_DIR" ]; then
  NCSN=$BIN_DIR/ncsn; BENCH=$BIN_DIR/bench_train
  log "binaries from $BIN_DIR"
else
  stage build 300 bash -c 'cargo build --release --bins && cargo build --release -p trainer --example bench_train'
  T=${CARGO_TARGET_DIR:-$ROOT/target}/release
  NCSN=$T/ncsn; BENCH=$T/examples/bench_train
fi
for b in "$NCSN" "$BENCH"; do
  [ -x "$b" ] || { log "missing $b: nothing to check"; exit 1; }
done

# --- 2. doctor --------------------------------------------------------------------------------
stage doctor 60 bash -c '"$1" doctor --check && echo "{\"doctor\":\"ok\"}"' _ "$NCSN"

# --- 3.-4. training steps: ncsn, the PyTorch reference, the authors' code ----------------------
# config name, batch, size, L, sigma_1, steps (CIFAR-10 and CelebA as in configs/*.yml).
cfg_file() { # the config as used: ngf 16 in a dry run
  if [ "$DRY" = 1 ]; then
    sed 's/ngf: 128/ngf: 16/' "configs/$1.yml" > "$WORK/$1.yml"; echo "$WORK/$1.yml"
  else
    echo "configs/$1.yml"
  fi
}
NGF=$([ "$DRY" = 1 ] && echo 16 || echo 128)
train_stages() { # config batch size L sigma1 steps arch [authors]
  local cfg; cfg=$(cfg_file "$1")
  stage "ncsn_$1_fp32" 150 "$BENCH" "$cfg" "$2" "$6" "$WARM" "$THREADS" "$DEV"
  stage "ncsn_$1_bf16_cl" 150 "$BENCH" "$cfg" "$2" "$6" "$WARM" "$THREADS" "$DEV" \
    --precision bf16 --channels-last
  local ref=(scripts/bench/train_reference.py --device "$DEV" --arch "$7" --size "$3"
             --batch "$2" --ngf "$NGF" --num-classes "$4" --sigma-begin "$5" --steps "$6"
             --warmup "$WARM" --threads "$THREADS")
  stage "pytorch_$1_fp32" 150 "$PY" "${ref[@]}"
  stage "pytorch_$1_bf16_cl" 150 "$PY" "${ref[@]}" --tf32 --bf16 --channels-last
  [ "${8:-}" = authors ] || return 0
  stage "authors_$1_fp32" 150 "$PY" scripts/bench/authors_train.py --config "$cfg" \
    --batch "$2" --steps "$6" --warmup "$WARM" --device "$DEV" --threads "$THREADS"
}
# CIFAR-10 and CelebA, against the authors' code too; LSUN church and FFHQ come last (below).
train_stages cifar10 "$CIFAR_B" 32 232 50 "$STEPS" ncsnv2 authors
train_stages celeba "$CELEBA_B" 64 500 90 "$CELEBA_STEPS" ncsnv2 authors

# --- 5. ncsn train end to end, then sampling throughput ---------------------------------------
SYN=$WORK/synth; SHARDS=$WORK/shards; RUN=$WORK/run
stage ingest 60 bash -c '"$1" synth cifar10 --out "$2" --n-train 5000 --n-test 500 --quiet &&
  "$1" ingest cifar10 --input "$2/cifar-10-batches-bin" --out "$3" --quiet &&
  echo "{\"ingest\":\"ok\"}"' _ "$NCSN" "$SYN" "$SHARDS"
CIFAR_CFG=$(cfg_file cifar10)
# `ncsn train` through the CLI (loader, side-stream copies, deferred reads, a checkpoint at the
# end), bf16 + channels-last; prints {"steps", "wall_s", "summary": its last stdout line}.
cat > "$WORK/train_cli.sh" <<'SH'
set -euo pipefail
ncsn=$1 cfg=$2 data=$3 run=$4 dev=$5 iters=$6 batch=$7
s=$(date +%s.%N)
# $LAUNCH: a launcher to put in front (torchrun), split into words.
${LAUNCH:-} "$ncsn" train --config "$cfg" --data "$data" --workdir "$run" --device "$dev" --n-iters "$iters" \
  --batch-size "$batch" --snapshot-freq 100000 --snapshot-samples 0 --log-every 10 \
  --precision bf16 --channels-last --quiet > "$run.summary"
e=$(date +%s.%N)
python3 -c 'import json, sys; print(json.dumps({"steps": int(sys.argv[1]),
  "wall_s": float(sys.argv[3]) - float(sys.argv[2]), "summary": open(sys.argv[4]).read().strip()}))' \
  "$iters" "$s" "$e" "$run.summary"
SH
stage ncsn_train_cli 120 bash "$WORK/train_cli.sh" "$NCSN" "$CIFAR_CFG" "$SHARDS" "$RUN" "$DEV" \
  "$TRAIN_ITERS" "$CIFAR_B"
# The same run under torchrun (README, Training on GPUs): its steps/s against the stage above is
# the cost of the data-parallel machinery at world size 1.
NPROC=1; [ "$DRY" = 1 ] && NPROC=2
stage ncsn_torchrun 150 env LAUNCH="$PY -m torch.distributed.run --standalone \
  --nproc-per-node $NPROC --no-python" bash "$WORK/train_cli.sh" "$NCSN" "$CIFAR_CFG" "$SHARDS" \
  "$RUN.torchrun" "$DEV" "$TRAIN_ITERS" "$CIFAR_B"
# Algorithm 1 with T = 1 step per level (the config's 232 levels + the denoising step) for n
# chains in one batch: image-forwards per second, model loading included.
cat > "$WORK/sample.sh" <<'SH'
set -euo pipefail
ncsn=$1 run=$2 n=$3 dev=$4 png=$5; shift 5
s=$(date +%s.%N)
"$ncsn" sample --workdir "$run" --n "$n" --batch-size "$n" --steps-each 1 --device "$dev" \
  --out "$png" --quiet "$@" > /dev/null
e=$(date +%s.%N)
python3 -c 'import json, sys; n, t = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2])
print(json.dumps({"n": n, "forwards": 233, "wall_s": t, "image_forwards_per_s": n * 233 / t}))' \
  "$n" "$s" "$e"
SH
stage ncsn_sample_fp32 120 bash "$WORK/sample.sh" "$NCSN" "$RUN" "$SAMPLE_N" "$DEV" "$WORK/s32.png"
stage ncsn_sample_bf16_cl 120 bash "$WORK/sample.sh" "$NCSN" "$RUN" "$SAMPLE_N" "$DEV" \
  "$WORK/s16.png" --precision bf16 --channels-last

# --- 3. (continued) the larger images, last: a stage that would start past the deadline is
# skipped, and these matter least. LSUN church (96 px, NCSNv2Deeper) and FFHQ (256 px,
# NCSNv2Deepest, batch 32) against the PyTorch reference.
train_stages church_outdoor "$CHURCH_B" 96 788 140 "$CHURCH_STEPS" ncsnv2_deeper
train_stages ffhq "$FFHQ_B" 256 2311 348 "$FFHQ_STEPS" ncsnv2_deepest

log "done in $((SECONDS - START))s: $RESULTS"
cat "$RESULTS" >&2
