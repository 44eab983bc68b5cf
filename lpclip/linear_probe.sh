#!/bin/bash
# Linear-probe CLIP over data sets x shots (seeds 1 2 3), CoOp's sweep; run from the repository root.
# usage: bash lpclip/linear_probe.sh [KEY VALUE ...]
# DATA (default ./data), OUTPUT (default output), CFG (configs/trainers/CoOp/CFG.yaml, default rn50_val),
# DATASETS and SHOTS_LIST restrict the sweep. Writes OUTPUT/lpclip/<dataset>/<backbone>_<K>shots/.
set -e
DATA=${DATA:-./data}
OUTPUT=${OUTPUT:-output}
CFG=${CFG:-rn50_val}
for dataset in ${DATASETS:-oxford_pets oxford_flowers fgvc_aircraft dtd eurosat stanford_cars food101 sun397 caltech101 ucf101 imagenet}; do
    for shots in ${SHOTS_LIST:-1 2 4 8 16}; do
        # shellcheck disable=SC2086
        python -m lpclip.linear_probe \
            --root "${DATA}" \
            --dataset-config-file "configs/datasets/${dataset}.yaml" \
            --config-file "configs/trainers/CoOp/${CFG}.yaml" \
            --num-shots "${shots}" \
            --seeds ${SEEDS:-1 2 3} \
            --output-dir "${OUTPUT}/lpclip/${dataset}" \
            "$@"
    done
done
