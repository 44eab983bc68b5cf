#!/bin/bash
# PromptKD base-to-novel: evaluate a trained student on the novel classes (model-best by default; LOADEP=N).
# usage: bash scripts/promptkd/base2new_test.sh DATASET SEED [KEY VALUE ...]
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
kd_base2new_test PromptKD "${CFG:-vit_b16_c2_ep20_batch8_4+4ctx}" "${SHOTS:-0}" "${LOADEP:-best}" "$@"
