#!/bin/bash
# Captions without test-time adaptation (the reference's eval_coco.sh / eval_coco2flickr.sh /
# eval_coco2nocaps.sh: beam search 5) and the metrics.
# usage: bash scripts/rlcf/eval_caption.sh capdec|clipcap coco|flickr|nocaps [caption.py tta args ...]
set -e
source "$(dirname "$0")/caption_common.sh"
model=$1 target=$2
shift 2 || { echo "usage: $0 capdec|clipcap coco|flickr|nocaps [caption.py tta args ...]" >&2; exit 2; }
name=${model}_opt125m_transformer_coco_01
case "${target}" in
    coco) adapt "${name}" coco_test_01 "${coco_root}/coco_karpathy_test.json" "${coco_root}" --tta_steps 0 "$@" ;;
    flickr) adapt "${name}" coco2flickr_test_01 "${flickr_root}/annotations/flickr30k_test.json" "${flickr_root}" --tta_steps 0 "$@" ;;
    nocaps)
        for annotations in $(nocaps_files); do
            split=$(basename "${annotations}" .json)
            adapt "${name}" "c2n_${split#nocaps_}_01" "${annotations}" "${nocaps_root}/val" --tta_steps 0 "$@"
        done ;;
    *) echo "unknown target \"${target}\": coco, flickr or nocaps" >&2; exit 2 ;;
esac
