#!/bin/bash
# RLCF retrieval on COCO (Karpathy test, 5k images / 25k captions), the reference's tta_coco_ret.sh:
# 8 steps, lr 1e-6, weight decay 5e-4; K 20 image->text, 12 text->image; variants
#   01 ViT-L/14 reward   02 three reward CLIPs (10:3:5)   03 as 02 + momentum buffer (0.9998, every 64)
# Outputs: ${OUTPUT}/tta_clip_coco_ret_NN/{text2image,image2text}/results.json.
# usage: [DATA=...] [VARIANTS="01 02 03"] [NPROC=N] bash scripts/rlcf/tta_coco_ret.sh [tta_ret.py args ...]
set -e
DATASET=${DATASET:-coco}
source "$(dirname "$0")/ret_common.sh"
for num in ${VARIANTS}; do
    ret_variant "${num}" 20 12 64 "$@"
done
