#!/bin/bash
# CoCoOp base-to-new, step 2: evaluate the base-trained model on the new classes.
# usage: bash scripts/cocoop/base2new_test.sh DATASET SEED [KEY VALUE ...]
# LOADEP=10 (default, as the reference: the last epoch), last, best, or an epoch number.
# writes output/base2new/test_new/DATASET/shots_16/CoCoOp/CFG/seedSEED
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
promptsrc_base2new_test CoCoOp "${CFG:-vit_b16_c4_ep10_batch1_ctxv1}" "${LOADEP:-10}" "$@"
