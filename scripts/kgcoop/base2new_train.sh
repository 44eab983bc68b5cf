#!/bin/bash
# KgCoOp base-to-new, step 1: train on the base classes (16 shots) with the knowledge-guided loss.
# usage: bash scripts/kgcoop/base2new_train.sh DATASET SEED [KEY VALUE ...]
# W=8.0 (default: the weight the reference runs with) sets TRAINER.COOP.W; CFG=vit_b16_ep100_ctxv1.
# writes output/base2new/train_base/DATASET/shots_16_W/KgCoOp/CFG/seedSEED (the reference's layout)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
CFG=${CFG:-vit_b16_ep100_ctxv1}
SHOTS=${SHOTS:-16}
W=${W:-8.0}
DATASET=$1 SEED=$2; shift 2
DIR=${OUTPUT}/base2new/train_base/${DATASET}/shots_${SHOTS}_${W}/KgCoOp/${CFG}/seed${SEED}
run_train KgCoOp "$CFG" "$DATASET" "$SEED" "$DIR" \
    TRAINER.COOP.N_CTX 4 \
    TRAINER.COOP.CSC False \
    TRAINER.COOP.W "$W" \
    TRAINER.COOP.CLASS_TOKEN_POSITION end \
    DATASET.NUM_SHOTS "$SHOTS" \
    DATASET.SUBSAMPLE_CLASSES base \
    "$@"
