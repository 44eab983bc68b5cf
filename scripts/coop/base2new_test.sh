#!/bin/bash
# CoOp base-to-new, step 2: evaluate the base-trained model on the new classes.
# usage: bash scripts/coop/base2new_test.sh DATASET SEED [KEY VALUE ...]
# LOADEP=last (default: the last epoch CoOp trained), best, or an epoch number.
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
base2new_test CoOp "${CFG:-vit_b16_ctxv1}" 4 "${LOADEP:-last}" "$@"
