#!/bin/bash
# The embedded demo: base-to-new in the generated world (tools/world), no downloads, CPU.
# Writes the world's data sets when missing and expands the world CLIP shipped with the project
# (tools/world/world_clip.safetensors; the first run only, a few seconds), then runs ZeroshotCLIP,
# CoOp and TextRefiner base-to-new (train on the base classes, test on the new ones) on WorldColors
# (blurry photos) and WorldShapes (sketches) over 3 seeds, prints the base / new / harmonic-mean
# table (mean ± std over seeds) and draws it into DEMO_DIR/base2new.png.
#
# usage: bash scripts/textrefiner/demo.sh [KEY VALUE ...]     (extra train.py config opts)
# env:   DEMO_DIR (output/demo), DATASETS ("world_colors world_shapes"), SEEDS ("1 2 3"),
#        SHOTS (16), WORLD_STEPS (pretraining steps: a world CLIP pretrained here instead of the shipped one),
#        TEXTREFINER_WORLD_CACHE (where the world CLIP is cached, ~/.cache/textrefiner/world),
#        WORLD_CLIP (a world CLIP file to use instead: no pretraining)
set -e -o pipefail
cd "$(dirname "$0")/../.."
DEMO_DIR=${DEMO_DIR:-output/demo}
DATASETS=${DATASETS:-"world_colors world_shapes"}
SEEDS=${SEEDS:-"1 2 3"}
export DATA="${DEMO_DIR}/data" OUTPUT="${DEMO_DIR}/output" SHOTS=${SHOTS:-16}
CFG=world_ctxv1
START=$(date +%s)

step() { echo; echo "=== [$(( $(date +%s) - START ))s] $*"; }
show() { grep -E "$1" || true; }  # progress lines only; a failing run still stops the demo (pipefail)

step "World data sets (python -m tools.world.data)"
# shellcheck disable=SC2086
python -m tools.world.data --root "${DATA}" --names ${DATASETS}

step "World CLIP (python -m tools.world.pretrain: the shipped one; cached after the first run)"
if [ -n "${WORLD_CLIP:-}" ]; then
    CLIP_PATH=${WORLD_CLIP}
    echo "Using WORLD_CLIP=${CLIP_PATH}"
else
    PRETRAIN_ARGS=()
    [ -n "${WORLD_STEPS:-}" ] && PRETRAIN_ARGS=(--steps "${WORLD_STEPS}")
    python -m tools.world.pretrain "${PRETRAIN_ARGS[@]}"
    CLIP_PATH=$(python -m tools.world.pretrain "${PRETRAIN_ARGS[@]}" --print-path)
fi

rm -rf "${OUTPUT}"
OPTS=(MODEL.BACKBONE.PATH "${CLIP_PATH}" "$@")
for DATASET in $DATASETS; do
    step "${DATASET}: ZeroshotCLIP on the base and new classes"
    bash scripts/textrefiner/zeroshot_base2new.sh "${DATASET}" "${CFG}" 1 "${OPTS[@]}" | show "^\* accuracy"
    for SEED in $SEEDS; do
        step "${DATASET} seed ${SEED}: CoOp (train on base, test on new)"
        CFG=$CFG bash scripts/coop/base2new_train.sh "${DATASET}" "${SEED}" "${OPTS[@]}" | show "^epoch|^\* accuracy"
        CFG=$CFG LOADEP=last bash scripts/coop/base2new_test.sh "${DATASET}" "${SEED}" "${OPTS[@]}" | show "^\* accuracy"
        step "${DATASET} seed ${SEED}: TextRefiner (train on base, test on new)"
        CFG=$CFG bash scripts/textrefiner/base2new_train.sh "${DATASET}" "${SEED}" "${OPTS[@]}" | show "^epoch|^\* accuracy"
        CFG=$CFG bash scripts/textrefiner/base2new_test.sh "${DATASET}" "${SEED}" "${OPTS[@]}" | show "^\* accuracy"
    done
done

step "Results"
python parse_test_res.py --base2new "${OUTPUT}/base2new" --std --plot "${DEMO_DIR}/base2new.png"
echo "Demo finished in $(( $(date +%s) - START ))s"
