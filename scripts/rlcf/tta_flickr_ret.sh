#!/bin/bash
# RLCF retrieval on Flickr30k (1k test images / 5k captions), the reference's tta_flickr_ret.sh:
# 8 steps, lr 1e-6, weight decay 5e-4; K 16 image->text, 12 text->image; variants as
# tta_coco_ret.sh, the momentum buffer every 32 queries.
# Outputs: ${OUTPUT}/tta_clip_flickr30k_ret_NN/{text2image,image2text}/results.json.
# usage: [DATA=...] [VARIANTS="01 02 03"] [NPROC=N] bash scripts/rlcf/tta_flickr_ret.sh [tta_ret.py args ...]
set -e
DATASET=${DATASET:-flickr30k}
source "$(dirname "$0")/ret_common.sh"
for num in ${VARIANTS}; do
    ret_variant "${num}" 16 12 32 "$@"
done
