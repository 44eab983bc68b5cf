#!/bin/bash
# CoOp base-to-new, step 1: train on the base classes (16 shots), same layout as TextRefiner's.
# usage: bash scripts/coop/base2new_train.sh DATASET SEED [KEY VALUE ...]   (CFG=vit_b16_ctxv1 by default)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
base2new_train CoOp "${CFG:-vit_b16_ctxv1}" 4 "$@"
