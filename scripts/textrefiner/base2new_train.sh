#!/bin/bash
# TextRefiner base-to-new, step 1: train on the base classes (16 shots).
# usage: bash scripts/textrefiner/base2new_train.sh DATASET SEED [KEY VALUE ...]
# writes output/base2new/train_base/DATASET/TextRefiner/vit_b16_ep10_ctxv1_16shots/nctx4_cscFalse_ctpend/seedSEED
# HOST=<prompt learner> (default CoOp; see tf_host in scripts/runs.sh) picks the host, its config and folders.
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
tf_run base2new_train "$@"
