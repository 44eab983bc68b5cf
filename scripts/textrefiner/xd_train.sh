#!/bin/bash
# TextRefiner cross-dataset, step 1: train on ImageNet (all classes, 16 shots).
# usage: bash scripts/textrefiner/xd_train.sh SEED [KEY VALUE ...]   (SOURCE=<dataset> to train elsewhere)
# HOST=<prompt learner> (default CoOp; see tf_host in scripts/runs.sh) picks the host, its config and folders.
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "SEED" "$@"
tf_run xd_train "$@"
