#!/bin/bash
# TextRefiner cross-dataset, step 2: evaluate the ImageNet model on DATASET (full test split).
# usage: bash scripts/textrefiner/xd_test.sh DATASET SEED [KEY VALUE ...]
# LOADEP=10 (default, as the reference: the last epoch), best, last, or an epoch number.
# HOST=<prompt learner> (default CoOp; see tf_host in scripts/runs.sh) picks the host, its config and folders.
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
tf_run xd_test "$@"
