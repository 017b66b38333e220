#!/usr/bin/env bash
# The README's test command: set up (idempotent), then every test of the workspace, the
# end-to-end tests of the `ncsn` binary included. Works on a fresh clone, no GPU needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Reference tools (Pillow, pyarrow, numpy) that the parity tests call live in the project venv.
export NCSN_PYTHON="${NCSN_PYTHON:-$PWD/.venv/bin/python}"
cargo test --workspace --locked "$@"
