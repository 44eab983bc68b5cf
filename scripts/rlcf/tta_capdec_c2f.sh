#!/bin/bash
# RLCF on CapDec, COCO -> Flickr30k test (the reference's tta_capdec_c2f.sh, case 01): 4 steps, lr 5e-6,
# K = 6 beams, CLIP ViT-L/14 reward.
# usage: bash scripts/rlcf/tta_capdec_c2f.sh [caption.py tta args ...]
set -e
source "$(dirname "$0")/caption_common.sh"
adapt capdec_opt125m_transformer_coco_01 coco2flickr30k_tta_01 "${flickr_root}/annotations/flickr30k_test.json" "${flickr_root}" \
    --tta_steps 4 --tta_lr 5e-6 --tta_weight_decay 0.0 --sample_k 6 "$@"
