#!/bin/bash
# Zero-shot retrieval both ways on Flickr30k and COCO (the reference's zero_shot.sh): the mean of the
# cosine similarities of ${ARCH} and ${REWARD_ARCH} (its ViT-B/16 + ViT-L/14 ensemble); ZS_ARCHS
# (a list) replaces the pair. DATASETS sets the sets (default "flickr30k coco").
# Outputs: ${OUTPUT}/zeroshot_clip_<set>_ret_01/results.json.
# usage: [DATA=...] bash scripts/rlcf/zero_shot_ret.sh [tta_ret.py args ...]
set -e
source "$(dirname "$0")/common.sh"
ZS_ARCHS=${ZS_ARCHS:-"${ARCH} ${REWARD_ARCH}"}
for dataset in ${DATASETS:-flickr30k coco}; do
    # shellcheck disable=SC2086  # ZS_ARCHS is a list
    python tta_ret.py --method zeroshot --dataset "${dataset}" --root "${DATA}" -a ${ZS_ARCHS} \
        --output "${OUTPUT}/zeroshot_clip_${dataset}_ret_01" "$@"
done
