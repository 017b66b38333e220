#!/usr/bin/env bash
# Benchmark of `ncsn calibrate`'s pairwise pass (Technique 1: exact maximum pairwise distance)
# against the bare f32 GEMMs it needs, measured in the same process with the same thread count
# (calibrate/examples/bench_pairwise.rs). Random uint8 images, CPU.
#
#   scripts/bench_calibrate.sh                 # CelebA 64² (10 000 × 12 288) and FFHQ 256²
#   scripts/bench_calibrate.sh N D [BLOCK]     # one custom size
#   FFHQ_N=10000 scripts/bench_calibrate.sh    # FFHQ at full size (2 GB of bytes; long)
#
# FFHQ 256² runs at FFHQ_N = 2000 by default (the pass and its GEMMs scale as N²), without
# the single-GEMM X·Xᵀ reference, whose f32 copy of X would need N·D·4 bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
# The dev profile (dependencies at opt-level 2) is what BENCHMARKS.md's numbers used: the hot
# path is libtorch's GEMMs either way. PROFILE=release for an optimised build of our code.
profile="${PROFILE:-dev}"
cargo build --locked --profile "$profile" -p calibrate --example bench_pairwise
dir="$profile"; [ "$profile" = dev ] && dir=debug
bin="${CARGO_TARGET_DIR:-target}/$dir/examples/bench_pairwise"

run() {
    echo "== N=$1 D=$2 block=${3:-1024} $(date -u +%FT%TZ) on $(nproc) CPU(s)"
    "$bin" "$@"
}

if [ $# -gt 0 ]; then
    run "$@"
else
    run 10000 12288                             # CelebA 64²
    run "${FFHQ_N:-2000}" 196608 1024 --no-full-gram  # FFHQ 256²
fi
