#!/bin/bash
# Evaluate trained TaskRes models (seeds 1-3) on DATASET, e.g. ImageNet models on its variants.
# usage: bash scripts/taskres/eval.sh DATASET CFG OUTDIR MODELDIR [KEY VALUE ...]
#   loads MODELDIR/seedS/prompt_learner/model.pth.tar-LOADEP (LOADEP=200), writes OUTDIR/seedS.
set -e
source "$(dirname "$0")/common.sh"
usage_if_missing "DATASET CFG OUTDIR MODELDIR" "$@"
dataset=$1 cfg=$2 outdir=$3 modeldir=$4; shift 4
for seed in ${SEEDS:-1 2 3}; do
    if [ ! -d "${modeldir}/seed${seed}" ]; then
        echo "No trained model at ${modeldir}/seed${seed}: run scripts/taskres/main.sh first" >&2
        exit 1
    fi
    run_train TaskRes "$cfg" "$dataset" "$seed" "${outdir}/seed${seed}" \
        --model-dir "${modeldir}/seed${seed}" \
        --load-epoch "${LOADEP:-200}" \
        --eval-only \
        TRAINER.TaskRes.RESIDUAL_SCALE "${SCALE:-0.5}" \
        "$@"
done
