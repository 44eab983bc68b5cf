#!/bin/bash
# CoCoOp cross-dataset, step 1: train on ImageNet (all classes, 16 shots).
# usage: bash scripts/cocoop/xd_train.sh SEED [KEY VALUE ...]   (CFG=vit_b16_c4_ep10_batch1_ctxv1 by default)
# writes output/imagenet/CoCoOp/CFG_16shots/seedSEED (the reference's layout)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "SEED" "$@"
CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1}
SHOTS=${SHOTS:-16}
SEED=$1; shift
DIR=${OUTPUT}/imagenet/CoCoOp/${CFG}_${SHOTS}shots/seed${SEED}
run_train CoCoOp "$CFG" imagenet "$SEED" "$DIR" DATASET.NUM_SHOTS "$SHOTS" "$@"
