#!/bin/bash
# Retrieval adaptation by distillation on Flickr30k (1k test images), the reference's
# tta_flickr_ret_kd.sh: as scripts/rlcf/tta_coco_ret_kd.sh (3 steps, lr 1e-6, the reward CLIP as teacher).
# Outputs: ${OUTPUT}/tta_clip_flickr30k_ret_kd_01/{text2image,image2text}/results.json.
# usage: [DATA=...] [NPROC=N] bash scripts/rlcf/tta_flickr_ret_kd.sh [tta_ret.py args ...]
set -e
DATASET=${DATASET:-flickr30k}
source "$(dirname "$0")/ret_common.sh"
ret_kd 16 8 "$@"
