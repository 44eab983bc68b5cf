#!/bin/bash
# PromptSRC base-to-new, step 2: evaluate the trained (GPA) model on the new classes.
# usage: bash scripts/promptsrc/base2new_test.sh DATASET SEED [KEY VALUE ...]   (LOADEP=20 by default)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
promptsrc_base2new_test PromptSRC "${CFG:-vit_b16_c2_ep20_batch4_4+4ctx}" "${LOADEP:-20}" "$@"
