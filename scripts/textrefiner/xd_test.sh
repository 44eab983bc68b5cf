#!/bin/bash
# TextRefiner cross-dataset, step 2: evaluate the ImageNet model on DATASET (full test split).
# usage: bash scripts/textrefiner/xd_test.sh DATASET SEED [KEY VALUE ...]
# LOADEP=10 (default, as the reference: the last epoch), best, last, or an epoch number.
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
xd_test TextRefiner "${CFG:-vit_b16_ep10_ctxv1}" "${LOADEP:-10}" "$@"
