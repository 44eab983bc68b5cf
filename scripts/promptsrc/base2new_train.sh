#!/bin/bash
# PromptSRC base-to-new, step 1: train on the base classes (16 shots). The last checkpoint
# (VLPromptLearner/model.pth.tar-20) holds the GPA prompts.
# PromptKD's teacher: CFG=vit_l14_c2_ep20_batch8_4+4ctx bash scripts/promptsrc/base2new_train.sh DATASET 1
# usage: bash scripts/promptsrc/base2new_train.sh DATASET SEED [KEY VALUE ...]
# writes output/base2new/train_base/DATASET/shots_16/PromptSRC/CFG/seedSEED
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
promptsrc_base2new_train PromptSRC "${CFG:-vit_b16_c2_ep20_batch4_4+4ctx}" "$@"
