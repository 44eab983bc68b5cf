#!/usr/bin/env bash
# One-shot GPU check (see bench/gpu_check.py): every trainer in fp16 / amp / fp32, CUDA vs CPU,
# DDP with 2 GPUs, throughput, transforms vs torchvision. Exit status: 0 pass, 1 a check failed,
# 2 no CUDA. Extra arguments go to the Python module (e.g. --keep DIR, --trainers CoOp MaPLe).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m bench.gpu_check "$@"
