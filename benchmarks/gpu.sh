#!/usr/bin/env bash
# The benchmark of `make bench` on an NVIDIA GPU (same script, same JSON layout).
#
#   benchmarks/gpu.sh [extra bench.py arguments]
#
# Environment: VENV (default .venv), PY (python used to create it, default python3),
# OUT (default results/bench_gpu.json; the plot goes beside it), LIMIT_S (default 470: the
# benchmark is stopped after that many seconds so the whole script stays under 8 minutes;
# the JSON written so far is kept, marked "partial").
# Installs the package and the CUDA 12 build of the installed jax version (`jax[cuda12]`,
# the `cuda` extra) when the venv lacks them; that step needs network access.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=${PY:-python3}
OUT=${OUT:-results/bench_gpu.json}
LIMIT_S=${LIMIT_S:-470}
BIN=$VENV/bin

if [ ! -x "$BIN/python" ]; then
    "$PY" -m venv "$VENV"
fi
if ! "$BIN/python" -c "import vmonf_jax" 2>/dev/null; then
    "$BIN/pip" install --quiet --upgrade pip
    "$BIN/pip" install --quiet -e .
fi

has_gpu() {
    JAX_PLATFORMS=cuda "$BIN/python" -c "import jax; assert jax.devices()[0].platform == 'gpu'" \
        >/dev/null 2>&1
}

if ! has_gpu; then
    JAX_VERSION=$("$BIN/python" -c "import jax; print(jax.__version__)")
    echo "installing jax[cuda12]==$JAX_VERSION into $VENV"
    "$BIN/pip" install --quiet "jax[cuda12]==$JAX_VERSION"
    if ! has_gpu; then
        echo "no CUDA GPU visible to jax (nvidia-smi below); nothing benchmarked" >&2
        nvidia-smi >&2 || true
        exit 1
    fi
fi

export JAX_PLATFORMS=cuda
# allocate on demand, so device memory stats show what the benchmark uses
export XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
"$BIN/python" benchmarks/bench.py --device-info
mkdir -p "$(dirname "$OUT")"
timeout --signal=INT --kill-after=20 "$LIMIT_S" \
    "$BIN/python" benchmarks/bench.py --out "$OUT" "$@"
