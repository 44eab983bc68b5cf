#!/bin/bash
# TPT (azshue/TPT test_tpt.sh / test_tpt_coop.sh): 64 views, the 10% most confident, one step of
# marginal entropy on the 4-token prompt (AdamW lr 5e-3). COOP_WEIGHT set: "TPT + CoOp".
# usage: bash scripts/rlcf/tpt.sh [TESTSETS] [tta.py args ...]   (TESTSETS default A/R/V/K/I)
set -e
source "$(dirname "$0")/common.sh"
testsets=${1:-A/R/V/K/I}
shift || true

launch tta.py "${DATA}" \
    --method tpt \
    --test_sets "${testsets}" \
    -a "${ARCH}" \
    --batch_size ${batch_size} \
    --selection_p ${selection_p} \
    --tpt \
    --ctx_init ${ctx_init} \
    --tta_steps 1 \
    --lr 5e-3 \
    --load "${COOP_WEIGHT}" \
    --output "${OUTPUT}/tpt_prompt" \
    "$@"
