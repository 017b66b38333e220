#!/usr/bin/env bash
# Idempotent project setup on a fresh machine: libtorch for tch (from PyPI's torch 2.11.0 wheel,
# or an already-importable torch 2.11 as on the lent GPU machines), the Python reference tools the
# tests compare against (Pillow, numpy, pyarrow, scipy; pytorch-fid with the torchvision of torch
# 2.11; pandas, polars, DuckDB, HF datasets and webdataset, which read the shards and exports), and
# the Debian build tools some crates need (cmake + nasm for turbojpeg's libjpeg-turbo).
#
# Result: .venv/ (git-ignored) and .libtorch/libtorch/{include,lib,build-version}, which
# .cargo/config.toml points LIBTORCH at. Afterwards plain `cargo build` / `cargo test` work.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

TORCH_VERSION=2.11.0
PY_REFS=(numpy pillow==11.3.0 pyarrow scipy safetensors)
# FID parity tests and scripts/bench_fid.sh: pytorch-fid and the torchvision release built for
# torch 2.11, both without dependencies so that pip never replaces the torch above.
FID_REFS=(torchvision==0.26.0 pytorch-fid==0.3.0)
# tests/python_ecosystem.rs and tests/export.rs: the tools the README says read the shards and the
# WebDataset export. Installed with their dependencies, under a constraint that keeps torch.
ECOSYSTEM_REFS=(pandas==3.1.1 polars==2.1.0 duckdb==2.0.1 datasets==5.2.0 webdataset==1.0.2)
# tests/tensorboard.rs: reads ncsn train's event files back as TensorBoard would (adds absl-py,
# grpcio, Markdown, protobuf, tensorboard-data-server, Werkzeug; torch stays, same constraint).
ECOSYSTEM_REFS+=(tensorboard==2.21.0)

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian build tools -------------------------------------------------------------------
need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v nasm >/dev/null 2>&1 || need_apt+=(nasm)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${need_apt[*]} from Debian"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    log "missing ${need_apt[*]}: install them with your package manager (needed to build libjpeg-turbo)"
    exit 1
  fi
fi

# --- Python environment with torch ---------------------------------------------------------
torch_ok() { "$1" -c "import torch,sys; sys.exit(0 if torch.__version__.split('+')[0]=='$TORCH_VERSION' else 1)" 2>/dev/null; }

py=""
if [ -x .venv/bin/python ] && torch_ok .venv/bin/python; then
  py=.venv/bin/python
else
  # Reuse a system torch 2.11 (the GPU machines ship 2.11.0+cu130): no 2.7 GB download.
  for cand in python3 python; do
    if command -v "$cand" >/dev/null 2>&1 && torch_ok "$cand"; then
      log "reusing the importable torch $TORCH_VERSION of $(command -v "$cand")"
      [ -x .venv/bin/python ] || "$cand" -m venv --system-site-packages .venv
      py=.venv/bin/python
      break
    fi
  done
fi
if [ -z "$py" ]; then
  # The wheels are 2.7 GB and unpack to 4.6 GB; a debug build of the workspace adds ~6 GB. Say so
  # up front instead of dying inside pip with ENOSPC. No pip cache: it would be a third copy.
  need_gb=8
  free_gb=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
  if [ "${free_gb:-0}" -lt "$need_gb" ]; then
    log "only ${free_gb} GB free on $(df -P . | awk 'NR==2 {print $6}'): torch + the build need ~${need_gb} GB"
    exit 1
  fi
  log "installing torch==$TORCH_VERSION into .venv (CUDA wheels are needed even on CPU; ~2.7 GB)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --no-cache-dir --disable-pip-version-check "torch==$TORCH_VERSION"
  py=.venv/bin/python
fi
missing=$("$py" - <<'PY'
import importlib.util
mods = {"numpy": "numpy", "PIL": "pillow==11.3.0", "pyarrow": "pyarrow", "scipy": "scipy", "safetensors": "safetensors", "yaml": "pyyaml"}
print(" ".join(v for k, v in mods.items() if importlib.util.find_spec(k) is None))
PY
)
if [ -n "$missing" ]; then
  log "installing reference tools: $missing"
  "$py" -m pip install -q --no-cache-dir --disable-pip-version-check $missing
fi

# The specs (name==version) of "$@" that are not installed at that version.
not_installed() {
  "$py" - "$@" <<'PY'
import sys
from importlib import metadata
need = []
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        have = metadata.version(name).split("+")[0]
    except metadata.PackageNotFoundError:
        have = None
    if have != want:
        need.append(spec)
print(" ".join(need))
PY
}
fid_missing=$(not_installed "${FID_REFS[@]}")
if [ -n "$fid_missing" ]; then
  log "installing FID reference tools (no dependencies): $fid_missing"
  "$py" -m pip install -q --no-cache-dir --disable-pip-version-check --no-deps $fid_missing
fi
eco_missing=$(not_installed "${ECOSYSTEM_REFS[@]}")
if [ -n "$eco_missing" ]; then
  log "installing the Parquet and WebDataset readers and TensorBoard: $eco_missing"
  constraints=$(mktemp)
  echo "torch==$TORCH_VERSION" > "$constraints"
  "$py" -m pip install -q --no-cache-dir --disable-pip-version-check -c "$constraints" $eco_missing
  rm -f "$constraints"
fi

# --- libtorch layout for torch-sys ---------------------------------------------------------
torch_dir=$("$py" -c "import torch,os; print(os.path.dirname(torch.__file__))")
mkdir -p .libtorch/libtorch
for d in include lib share; do
  [ -e "$torch_dir/$d" ] || continue
  ln -sfn "$torch_dir/$d" ".libtorch/libtorch/$d"
done
# torch-sys checks this file against the version it was written for; the pip layout lacks it.
echo "$TORCH_VERSION" > .libtorch/libtorch/build-version
if [ -f .libtorch/last-torch-dir ] && [ "$(cat .libtorch/last-torch-dir)" != "$torch_dir" ] && [ -d target ]; then
  log "libtorch moved: cleaning torch-sys so it relinks"
  cargo clean -p torch-sys >/dev/null 2>&1 || true
fi
echo "$torch_dir" > .libtorch/last-torch-dir
log "libtorch: $torch_dir (torch $("$py" -c 'import torch; print(torch.__version__)'))"
