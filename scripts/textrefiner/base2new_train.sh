#!/bin/bash
# TextRefiner base-to-new, step 1: train on the base classes (16 shots).
# usage: bash scripts/textrefiner/base2new_train.sh DATASET SEED [KEY VALUE ...]
# writes output/base2new/train_base/DATASET/TextRefiner/vit_b16_ep10_ctxv1_16shots/nctx4_cscFalse_ctpend/seedSEED
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
base2new_train TextRefiner "${CFG:-vit_b16_ep10_ctxv1}" 4 "$@"
