#!/usr/bin/env bash
# Benchmark of evaluation (issue 13), CPU:
#
# 1. Inception feature throughput (img/s): ncsn's FeatureExtractor
#    (evaluate/examples/bench_features.rs) against pytorch-fid 0.3.0's InceptionV3, on the same
#    uint8 32×32 images, the same random weights (scripts/fid_random_weights.py; the real file
#    cannot be downloaded here, and the work per image does not depend on the values) and the
#    same thread count, alternating ROUNDS times in one run. Both include the uint8 → [0, 1]
#    conversion, the resize to 299² and the network; loading is not timed.
# 2. Wall time of one FID of SAMPLES (default 1 000) images: `ncsn fid --samples S.npz --stats`
#    against statistics made once by `ncsn fid-stats` (not part of a checkpoint's FID). With
#    DEMO_RUN=demo-out/run (a checkpoint of scripts/demo.sh) the samples are drawn from it by
#    `ncsn sample --raw` (timed separately); otherwise they are the test images of a synth set,
#    which cost the same to score.
#
#   scripts/bench_fid.sh                       # N=100, batch 50, all cores, 3 rounds
#   N=200 THREADS=2 ROUNDS=3 SAMPLES=1000 REF=1000 scripts/bench_fid.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
py=.venv/bin/python
N="${N:-100}"
BATCH="${BATCH:-50}"
THREADS="${THREADS:-$(nproc)}"
ROUNDS="${ROUNDS:-3}"
SAMPLES="${SAMPLES:-1000}"
REF="${REF:-1000}"
# The dev profile (dependencies at opt-level 2): the hot path is libtorch's either way.
profile="${PROFILE:-dev}"
cargo build --locked --profile "$profile" -p evaluate --example bench_features
cargo build --locked --profile "$profile" --bin ncsn --bin ncsn-torch
dir="$profile"; [ "$profile" = dev ] && dir=debug
target="${CARGO_TARGET_DIR:-target}/$dir"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== $(date -u +%FT%TZ) on $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" scripts/fid_random_weights.py --out "$work/w.pth"
"$py" -c "import numpy as np, sys; np.savez(sys.argv[1], np.random.default_rng(0).integers(0, 256, ($N, 32, 32, 3), dtype=np.uint8))" "$work/images.npz"

echo "== 1. Inception features, $N images 32×32 → 299², batch $BATCH, $THREADS threads"
for r in $(seq "$ROUNDS"); do
    "$py" scripts/bench/pytorch_fid_features.py "$work/w.pth" "$work/images.npz" "$BATCH" "$THREADS"
    "$target/examples/bench_features" "$work/w.pth" "$work/images.npz" "$BATCH" "$THREADS"
done

echo "== 2. one FID of $SAMPLES samples (reference: fid-stats of $REF images)"
ncsn="$target/ncsn"
common=(--weights "$work/w.pth" --device cpu --threads "$THREADS" --quiet)
"$ncsn" synth cifar10 --out "$work/synth" --n-train "$REF" --n-test "$SAMPLES" --quiet >/dev/null
"$ncsn" ingest cifar10 --input "$work/synth/cifar-10-batches-bin" --out "$work/data" --quiet >/dev/null
/usr/bin/time -f "fid-stats: %e s wall" "$ncsn" fid-stats --data "$work/data" "${common[@]}" 2>&1 \
    | grep -v '^warning'
if [ -n "${DEMO_RUN:-}" ]; then
    /usr/bin/time -f "sample: %e s wall" "$ncsn" sample --workdir "$DEMO_RUN" --out "$work/s.png" \
        --n "$SAMPLES" --raw "$work/samples.npz" --threads "$THREADS" --quiet
else
    # The synth test batch in CIFAR-10's record layout: a label byte, then 3×32×32 CHW.
    "$py" - "$work/synth/cifar-10-batches-bin/test_batch.bin" "$work/samples.npz" <<'PY'
import sys, numpy as np
rec = np.fromfile(sys.argv[1], np.uint8).reshape(-1, 3073)
np.savez(sys.argv[2], rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy())
PY
fi
/usr/bin/time -f "fid: %e s wall" "$ncsn" fid --samples "$work/samples.npz" \
    --stats "$work/data/_fid_stats_train.npz" "${common[@]}" 2>&1 | grep -v '^warning'
echo "== done $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
