#!/bin/bash
# RLCF on the whole image encoder (the reference's rlcf-tune.sh, case 01): 3 steps, lr 1e-5,
# weight decay 5e-4, ViT-L/14 reward. MOMENTUM=1 turns the momentum buffer on (0.9998, every 64
# images, update_w 1.0) for the "-M" rows; the reference script keeps it off.
# usage: bash scripts/rlcf/rlcf_tune.sh [tta.py args ...]
set -e
source "$(dirname "$0")/common.sh"
MOMENTUM=${MOMENTUM:-0}

launch tta.py "${DATA}" \
    --method rlcf-tune \
    --test_sets A/V/R/I/K \
    -a "${ARCH}" \
    --batch_size ${batch_size} \
    --selection_p ${selection_p} \
    --tpt \
    --ctx_init ${ctx_init} \
    --tta_steps 3 \
    --lr 1e-5 \
    --weight_decay 5e-4 \
    --reward_arch "${REWARD_ARCH}" \
    --reward_amplify ${reward_amplify} \
    --reward_process ${reward_process} \
    --process_batch ${process_batch} \
    --momentum_update ${MOMENTUM} \
    --update_freq 64 \
    --tta_momentum 0.9998 \
    --update_w 1.0 \
    --sample_k ${sample_k} \
    --output "${OUTPUT}/finetune_cls_rl_01" \
    "$@"
