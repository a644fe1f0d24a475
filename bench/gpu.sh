#!/usr/bin/env bash
# One GPU check for issue #7, under 8 minutes on one H100-class GPU: ms per iteration, FLOP rate and peak
# memory at 256² and 512² with AMP (bf16) on/off and torch.compile on/off, and the batched multi-image fit
# at N = 1, 8, 32 (per-image time), printed as one table per call (bench/speed.py). With no CUDA device it
# runs the same code at tiny sizes on the CPU, so the script itself is checked on any machine.
#
#   bash bench/gpu.sh                 # results also in $OUT (or bench/results/gpu) as JSON
#
# Needs: python3 with torch (the GPU image has it). deepprior itself runs from src/ (no install); its
# other imports (numpy, scipy, scikit-image, matplotlib, pywavelets, click, rich) are installed from
# wheels in $WHEELS (default .whl/) when missing, since the GPU machine cannot reach PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
RES=${OUT:-bench/results/gpu}
mkdir -p "$RES"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import deepprior.tasks" 2>/dev/null; then
  echo "installing deepprior's dependencies from ${WHEELS:-.whl}/"
  "$PY" -m pip install -q --no-index --find-links "${WHEELS:-.whl}" -e . || {
    echo "error: deepprior's dependencies are missing and no wheels were found in ${WHEELS:-.whl}/"; exit 2; }
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.cuda.is_available())"
if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  # The reference recipe's network: every lever, 256² and 512².
  "$PY" bench/speed.py --device cuda --presets denoise --sizes 256 512 \
      --variants eager reference channels_last bf16 compile compile+bf16 --batch 8 32 --batch-sizes 256 \
      --steps 20 --warmup 5 --json "$RES/speed_denoise.json"
  # The light presets: eager and bf16, and how many images fill the GPU.
  "$PY" bench/speed.py --device cuda --presets fast denoise-fast --sizes 256 512 \
      --variants eager bf16 --batch 8 32 --batch-sizes 256 --steps 20 --warmup 5 --json "$RES/speed_fast.json"
else
  echo "no CUDA device: CPU fallback at tiny sizes (checks the script, not the GPU)"
  "$PY" bench/speed.py --device cpu --presets fast --sizes 32 --variants eager reference channels_last \
      --batch 2 --steps 2 --warmup 1 --json "$RES/speed_cpu_fallback.json"
fi
