#!/bin/bash
# PromptKD base-to-novel: distil the ViT-B/16 student from the PromptSRC teacher on the train
# images of all classes (no labels, SHOTS=0). Base accuracy = the best val (base test) result,
# novel accuracy = the final test in the same log.
# Teacher: TEACHER=<checkpoint file>, else teacher_model/<DATASET.NAME>/VLPromptLearner/model-best.pth.tar.
# KD weight: 200 for fgvc_aircraft, oxford_flowers, dtd, else 1000 (KD_WEIGHT overrides).
# usage: bash scripts/promptkd/base2new_train.sh DATASET SEED [KEY VALUE ...]
# writes output/base2new/train_base/DATASET/shots_0/PromptKD/CFG/seed_SEED
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
kd_base2new_train PromptKD "${CFG:-vit_b16_c2_ep20_batch8_4+4ctx}" "${SHOTS:-0}" "$@"
