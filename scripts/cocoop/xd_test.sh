#!/bin/bash
# CoCoOp cross-dataset, step 2: evaluate the ImageNet model on DATASET (full test split; also
# imagenetv2, imagenet_sketch, imagenet_a, imagenet_r for domain generalisation).
# usage: bash scripts/cocoop/xd_test.sh DATASET SEED [KEY VALUE ...]
# LOADEP=10 (default, as the reference), last, best, or an epoch number.
# writes output/evaluation/CoCoOp/CFG_16shots/DATASET/seedSEED (the reference's layout)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1}
SHOTS=${SHOTS:-16}
DATASET=$1 SEED=$2; shift 2
DIR=${OUTPUT}/evaluation/CoCoOp/${CFG}_${SHOTS}shots/${DATASET}/seed${SEED}
run_eval CoCoOp "$CFG" "$DATASET" "$SEED" "$DIR" "${OUTPUT}/imagenet/CoCoOp/${CFG}_${SHOTS}shots/seed${SEED}" \
    "${LOADEP:-10}" "xd_train.sh ${SEED}" "$@"
