#!/bin/bash
# IVLP base-to-new, step 1: train on the base classes (16 shots).
# usage: bash scripts/ivlp/base2new_train.sh DATASET SEED [KEY VALUE ...]
# writes output/base2new/train_base/DATASET/shots_16/IVLP/CFG/seedSEED (CFG=vit_b16_c2_ep5_batch4_2+2ctx by default)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
promptsrc_base2new_train IVLP "${CFG:-vit_b16_c2_ep5_batch4_2+2ctx}" "$@"
