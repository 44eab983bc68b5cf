#!/bin/bash
# CoCoOp base-to-new, step 1: train on the base classes (16 shots).
# usage: bash scripts/cocoop/base2new_train.sh DATASET SEED [KEY VALUE ...]   (CFG=vit_b16_c4_ep10_batch1_ctxv1 by default)
# writes output/base2new/train_base/DATASET/shots_16/CoCoOp/CFG/seedSEED (the reference's layout)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
promptsrc_base2new_train CoCoOp "${CFG:-vit_b16_c4_ep10_batch1_ctxv1}" "$@"
