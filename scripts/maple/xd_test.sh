#!/bin/bash
# MaPLe cross-dataset, step 2: evaluate the ImageNet model on DATASET (LOADEP=2 by default, as the reference).
# usage: bash scripts/maple/xd_test.sh DATASET SEED [KEY VALUE ...]
# writes output/evaluation/MaPLe/CFG_16shots/DATASET/seedSEED
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
src_xd_test MaPLe "${CFG:-vit_b16_c2_ep5_batch4_2ctx_cross_datasets}" "${LOADEP:-2}" "$@"
