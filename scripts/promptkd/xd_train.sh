#!/bin/bash
# PromptKD cross-dataset: distil on DATASET's unlabelled train images with the ImageNet teacher
# (TEACHER=<file>, else teacher_model/ImageNet-xd/VLPromptLearner_large/model.pth.tar-20).
# usage: bash scripts/promptkd/xd_train.sh DATASET SEED [KEY VALUE ...]
# writes output/DATASET/PromptKD/CFG_0shots/seedSEED
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
kd_xd_train PromptKD "${CFG:-vit_b16_c2_ep20_batch8_4+4ctx_cross_datasets}" "$@"
