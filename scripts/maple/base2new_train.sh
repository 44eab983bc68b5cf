#!/bin/bash
# MaPLe base-to-new, step 1: train on the base classes (16 shots).
# usage: bash scripts/maple/base2new_train.sh DATASET SEED [KEY VALUE ...]
# writes output/base2new/train_base/DATASET/shots_16/MaPLe/CFG/seedSEED (CFG=vit_b16_c2_ep5_batch4_2ctx by default)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
promptsrc_base2new_train MaPLe "${CFG:-vit_b16_c2_ep5_batch4_2ctx}" "$@"
