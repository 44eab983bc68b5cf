#!/bin/bash
# TaskRes few-shot training on one data set, seeds 1 2 3 (SEEDS="..." to change).
# usage: bash scripts/taskres/main.sh DATASET CFG ENHANCE SHOTS SCALE [KEY VALUE ...]
#   ENHANCE: none (regular base) or an enhanced-base file; SCALE: the residual scale alpha.
# Output: output/FINAL/debug/DATASET/CFG_SHOTSshots/seedS (enhanced: output/FINAL/enhanced/...).
set -e
source "$(dirname "$0")/common.sh"
usage_if_missing "DATASET CFG ENHANCE SHOTS SCALE" "$@"
taskres_main "$@"
