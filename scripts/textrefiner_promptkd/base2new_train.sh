#!/bin/bash
# TextRefiner on PromptKD, base-to-novel (the reference's setting: 16 shots of every class, no
# labels). Base accuracy = the best val (base test) result, novel = the final test in the same log.
# Teacher: TEACHER=<checkpoint file>, else teacher_model/<DATASET.NAME>/VLPromptLearner/model-best.pth.tar.
# KD weight: 200 for fgvc_aircraft, oxford_flowers, dtd, else 1000 (KD_WEIGHT overrides).
# usage: bash scripts/textrefiner_promptkd/base2new_train.sh DATASET SEED [KEY VALUE ...]
# writes output/base2new/train_base/DATASET/shots_16/TextRefiner/CFG/seed_SEED
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
kd_base2new_train TextRefiner "${CFG:-vit_b16_c2_ep20_batch8_4+4ctx}" "${SHOTS:-16}" "$@"
