#!/bin/bash
# RLCF prompt tuning on the ImageNet sets (the reference's rlcf-prompt.sh, case 01): 3 steps,
# lr 7e-3, weight decay 5e-4, top-3 candidates per view, ViT-L/14 reward.
# usage: bash scripts/rlcf/rlcf_prompt.sh [tta.py args ...]
set -e
source "$(dirname "$0")/common.sh"

launch tta.py "${DATA}" \
    --method rlcf-prompt \
    --test_sets A/V/R/I/K \
    -a "${ARCH}" \
    --batch_size ${batch_size} \
    --selection_p ${selection_p} \
    --tpt \
    --ctx_init ${ctx_init} \
    --tta_steps 3 \
    --lr 7e-3 \
    --weight_decay 5e-4 \
    --load "${COOP_WEIGHT}" \
    --reward_amplify ${reward_amplify} \
    --reward_process ${reward_process} \
    --process_batch ${process_batch} \
    --reward_arch "${REWARD_ARCH}" \
    --sample_k ${sample_k} \
    --output "${OUTPUT}/rlcf_prompt_01" \
    "$@"
