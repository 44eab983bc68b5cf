#!/bin/bash
# TextRefiner base-to-new, step 2: evaluate the model trained by base2new_train.sh on the new classes.
# usage: bash scripts/textrefiner/base2new_test.sh DATASET SEED [KEY VALUE ...]
# LOADEP=best (default: model-best.pth.tar, the model training deployed), last, or an epoch number.
# HOST=<prompt learner> (default CoOp; see tf_host in scripts/runs.sh) picks the host, its config and folders.
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
tf_run base2new_test "$@"
