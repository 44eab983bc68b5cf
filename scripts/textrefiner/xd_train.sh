#!/bin/bash
# TextRefiner cross-dataset, step 1: train on ImageNet (all classes, 16 shots).
# usage: bash scripts/textrefiner/xd_train.sh SEED [KEY VALUE ...]   (SOURCE=<dataset> to train elsewhere)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "SEED" "$@"
xd_train TextRefiner "${CFG:-vit_b16_ep10_ctxv1}" "$@"
