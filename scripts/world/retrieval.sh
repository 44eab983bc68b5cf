#!/bin/bash
# RLCF image-text retrieval in the generated world (docs/TTA_RETRIEVAL.md, "In the world"). Per seed:
# a world retrieval set (python -m tools.world.retrieval), zero-shot retrieval of the student CLIP,
# and RLCF in both directions with the reference's COCO recipe, variant 01 (scripts/rlcf/tta_coco_ret.sh:
# 8 steps, lr 1e-6, weight decay 5e-4, K 20 / 12, one reward CLIP); then the table over the seeds
# (python -m tools.world.retrieval --summarize). Nothing here is tuned to the world.
# Environment: OUT (default output/world_retrieval), SEEDS (default "0 1 2"), IMAGES (default 200,
# 5 captions each), STUDENT (default the shipped world CLIP), REWARD (default the large world CLIP,
# python -m tools.world.pretrain --large). One torch thread unless OMP_NUM_THREADS says otherwise.
# Extra arguments go to every tta_ret.py call.
# usage: [OUT=...] [SEEDS="0 1 2"] bash scripts/world/retrieval.sh [tta_ret.py args ...]
set -eo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
OUT=${OUT:-output/world_retrieval}
SEEDS=${SEEDS:-0 1 2}
IMAGES=${IMAGES:-200}
# the world CLIPs' files (expanded from the shipped files once; the last line printed is the path)
STUDENT=${STUDENT:-$(python -m tools.world.pretrain | tail -n 1)}
REWARD=${REWARD:-$(python -m tools.world.pretrain --large | tail -n 1)}
common=(--workers 0 --feature_cache "${OUT}/features")

for seed in ${SEEDS}; do
    data=${OUT}/seed${seed}/data
    if [ ! -f "${data}/world_retrieval/world_retrieval_test.json" ]; then
        python -m tools.world.retrieval --root "${data}" --images "${IMAGES}" --seed "${seed}"
    fi
    python tta_ret.py --method zeroshot --dataset world --root "${data}" -a "${STUDENT}" \
        --output "${OUT}/seed${seed}/zero_shot" "${common[@]}" "$@"
    DATA=${data} OUTPUT=${OUT}/seed${seed} ARCH=${STUDENT} REWARD_ARCH=${REWARD} DATASET=world VARIANTS=01 NPROC=1 \
        bash scripts/rlcf/tta_coco_ret.sh "${common[@]}" "$@"
done
# shellcheck disable=SC2086  # SEEDS is a list
python -m tools.world.retrieval --summarize "${OUT}" --seeds ${SEEDS}
