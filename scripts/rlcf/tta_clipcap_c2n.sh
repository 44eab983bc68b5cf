#!/bin/bash
# RLCF on ClipCap, COCO -> NoCaps val, each domain (the reference's tta_clipcap_c2n.sh, cases 01-0/1/2): 4 steps,
# lr 2e-6, K = 10 beams, CLIP ViT-L/14 reward.
# usage: bash scripts/rlcf/tta_clipcap_c2n.sh [caption.py tta args ...]
set -e
source "$(dirname "$0")/caption_common.sh"
for annotations in $(nocaps_files); do
    split=$(basename "${annotations}" .json)
    adapt clipcap_opt125m_transformer_coco_01 "c2n_${split#nocaps_}_tta_01" "${annotations}" "${nocaps_root}/val" \
        --tta_steps 4 --tta_lr 2e-6 --tta_weight_decay 0.0 --sample_k 10 "$@"
done
