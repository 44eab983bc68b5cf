#!/bin/bash
# MaPLe base-to-new, step 2: evaluate the trained model on the new classes (LOADEP=5, the last epoch, as the reference).
# usage: bash scripts/maple/base2new_test.sh DATASET SEED [KEY VALUE ...]
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
promptsrc_base2new_test MaPLe "${CFG:-vit_b16_c2_ep5_batch4_2ctx}" "${LOADEP:-5}" "$@"
