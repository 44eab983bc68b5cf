#!/bin/bash
# Train an enhanced base for TaskRes*: fine-tune only CLIP's text projection on the few-shot data
# of DATASET (seed SEED, default 1), then copy it to STRONG_BASE/<DatasetName>/<BASE_TAG>_<SHOTS>shots/model.pth.tar
# ({"state_dict": {"weight": [D, width]}}, the released bases' format), where train_enhance.sh reads it.
# usage: bash scripts/taskres/enhanced_base.sh DATASET SHOTS [KEY VALUE ...]
#   CFG (default adam_lr1e-4_B256_ep100, ep200 from 8 shots) is a configs/trainers/TaskResEnhancedBase file;
#   for another backbone pass MODEL.BACKBONE.NAME and set BASE_TAG (e.g. vit_b16).
set -e
source "$(dirname "$0")/common.sh"
usage_if_missing "DATASET SHOTS" "$@"
dataset=$1 shots=$2; shift 2
seed=${SEED:-1}
ep=100
[ "$shots" -ge 8 ] && ep=200
cfg=${CFG:-adam_lr1e-4_B256_ep${ep}}
dir=${OUTPUT}/strong_base/${dataset}/${cfg}_${shots}shots/seed${seed}
target=$(strong_base_file "$dataset" "$shots")
run_train TaskResEnhancedBase "$cfg" "$dataset" "$seed" "$dir" DATASET.NUM_SHOTS "${shots}" "$@"
last=$(sed -n 1p "${dir}/text_projection/checkpoint")
mkdir -p "$(dirname "$target")"
cp "${dir}/text_projection/${last}" "$target"
echo "Enhanced base written to ${target}"
