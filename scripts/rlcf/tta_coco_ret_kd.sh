#!/bin/bash
# Retrieval adaptation by distillation on COCO (Karpathy test), the reference's tta_coco_ret_kd.sh:
# per query 3 steps (lr 1e-6, weight decay 5e-4) of cross-entropy between the policy's softmax over
# the whole gallery and the reward CLIP's (${REWARD_ARCH}, default ViT-L/14); both directions.
# Outputs: ${OUTPUT}/tta_clip_coco_ret_kd_01/{text2image,image2text}/results.json.
# usage: [DATA=...] [NPROC=N] bash scripts/rlcf/tta_coco_ret_kd.sh [tta_ret.py args ...]
set -e
DATASET=${DATASET:-coco}
source "$(dirname "$0")/ret_common.sh"
ret_kd 20 12 "$@"
