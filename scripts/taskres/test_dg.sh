#!/bin/bash
# Domain generalisation: the 16-shot ImageNet TaskRes models (seeds 1-3) on ImageNet-V2, -Sketch, -A, -R.
# usage: bash scripts/taskres/test_dg.sh [MODELDIR] [KEY VALUE ...]
#   MODELDIR: default output/FINAL/debug/imagenet/adam_lr2e-4_B256_ep200_16shots (what
#   train_regular.sh writes); CFG=generalization_rn50 (generalization_vit16, ... for other backbones).
# Output: output/evaluation/TaskRes/CFG/DATASET/seedS; then python parse_test_res.py --test-log <that>/DATASET
set -e
source "$(dirname "$0")/common.sh"
modeldir=${1:-${OUTPUT}/FINAL/debug/imagenet/adam_lr2e-4_B256_ep200_16shots}
[ "$#" -gt 0 ] && shift
cfg=${CFG:-generalization_rn50}
for dataset in ${DATASETS:-imagenetv2 imagenet_sketch imagenet_a imagenet_r}; do
    bash "$(dirname "$0")/eval.sh" "$dataset" "$cfg" "${OUTPUT}/evaluation/TaskRes/${cfg}/${dataset}" "$modeldir" "$@"
done
