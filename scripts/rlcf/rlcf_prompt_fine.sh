#!/bin/bash
# RLCF prompt tuning on the ten fine-grained sets (the reference's rlcf-prompt-fine.sh, case 01):
# 5 steps, lr 7e-3, AugMix views. The reference passes "--augmix ${augmix}" with augmix never set;
# here it is set to 1 (its params.py default), so the command line is well formed. The reference
# starts one process per set; here one run covers them all, so one results table has every set.
# usage: bash scripts/rlcf/rlcf_prompt_fine.sh [tta.py args ...]   (TESTSETS env: the set ids)
set -e
source "$(dirname "$0")/common.sh"
augmix=1
TESTSETS=${TESTSETS:-Caltech101/Cars/Pets/Flower102/Aircraft/Food101/SUN397/DTD/eurosat/UCF101}

launch tta.py "${DATA}" \
    --method rlcf-prompt \
    --test_sets "${TESTSETS}" \
    -a "${ARCH}" \
    --batch_size ${batch_size} \
    --selection_p ${selection_p} \
    --tpt \
    --ctx_init ${ctx_init} \
    --tta_steps 5 \
    --lr 7e-3 \
    --weight_decay 5e-4 \
    --load "${COOP_WEIGHT}" \
    --reward_amplify ${reward_amplify} \
    --reward_process ${reward_process} \
    --process_batch ${process_batch} \
    --reward_arch "${REWARD_ARCH}" \
    --sample_k ${sample_k} \
    --augmix ${augmix} \
    --output "${OUTPUT}/rlcf_prompt_fine_01" \
    "$@"
