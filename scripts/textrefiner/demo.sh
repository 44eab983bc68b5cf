#!/bin/bash
# The embedded default run: no downloads, a few minutes on a 2-core CPU.
# Generates a small OxfordPets-layout data set and a small random CLIP, runs base-to-new
# (train on base classes, test on new classes) for CoOp and TextRefiner over two seeds,
# and prints the base / new / harmonic-mean table.
# usage: bash scripts/textrefiner/demo.sh        (DEMO_DIR=output/demo by default)
set -e
cd "$(dirname "$0")/../.."
DEMO_DIR=${DEMO_DIR:-output/demo}
rm -rf "${DEMO_DIR}/output"
mkdir -p "${DEMO_DIR}"

python -m tools.synthetic_data oxford_pets --root "${DEMO_DIR}/data" --num-classes 10 --images-per-class 24
python -m tools.tiny_clip --out "${DEMO_DIR}/tiny_clip.pt" --kind vit --image-size 32

export DATA="${DEMO_DIR}/data" OUTPUT="${DEMO_DIR}/output" SHOTS=8
OPTS=(MODEL.BACKBONE.PATH "${DEMO_DIR}/tiny_clip.pt" INPUT.SIZE "(32, 32)"
      OPTIM.MAX_EPOCH 4 DATALOADER.NUM_WORKERS 0 DATALOADER.TRAIN_X.BATCH_SIZE 8 TRAIN.PRINT_FREQ 10)

for SEED in 1 2; do
    CFG=vit_b16_ctxv1 bash scripts/coop/base2new_train.sh oxford_pets "$SEED" "${OPTS[@]}"
    CFG=vit_b16_ctxv1 LOADEP=last bash scripts/coop/base2new_test.sh oxford_pets "$SEED" "${OPTS[@]}"
    bash scripts/textrefiner/base2new_train.sh oxford_pets "$SEED" "${OPTS[@]}"
    bash scripts/textrefiner/base2new_test.sh oxford_pets "$SEED" "${OPTS[@]}"
done

python parse_test_res.py --base2new "${OUTPUT}/base2new"
