#!/bin/bash
# KgCoOp base-to-new, step 2: evaluate the base-trained model on the new classes.
# usage: bash scripts/kgcoop/base2new_test.sh DATASET SEED [KEY VALUE ...]
# W=8.0 (the folder of the training run), LOADEP=100 (default, as the reference), last, best or a number.
# writes output/base2new/test_new/DATASET/shots_16_W/KgCoOp/CFG/seedSEED
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
CFG=${CFG:-vit_b16_ep100_ctxv1}
SHOTS=${SHOTS:-16}
W=${W:-8.0}
DATASET=$1 SEED=$2; shift 2
COMMON=${DATASET}/shots_${SHOTS}_${W}/KgCoOp/${CFG}/seed${SEED}
DIR=${OUTPUT}/base2new/test_new/${COMMON}
run_eval KgCoOp "$CFG" "$DATASET" "$SEED" "$DIR" "${OUTPUT}/base2new/train_base/${COMMON}" "${LOADEP:-100}" \
    "base2new_train.sh ${DATASET} ${SEED}" \
    TRAINER.COOP.N_CTX 4 \
    TRAINER.COOP.CSC False \
    TRAINER.COOP.CLASS_TOKEN_POSITION end \
    DATASET.NUM_SHOTS "$SHOTS" \
    DATASET.SUBSAMPLE_CLASSES new \
    "$@"
