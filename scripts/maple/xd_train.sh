#!/bin/bash
# MaPLe cross-dataset, step 1: train on ImageNet (16 shots, all classes; SOURCE=<dataset> to train elsewhere).
# usage: bash scripts/maple/xd_train.sh SEED [KEY VALUE ...]
# writes output/imagenet/MaPLe/CFG_16shots/seedSEED (CFG=vit_b16_c2_ep5_batch4_2ctx_cross_datasets by default)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "SEED" "$@"
src_xd_train MaPLe "${CFG:-vit_b16_c2_ep5_batch4_2ctx_cross_datasets}" "${SOURCE:-imagenet}" "$@"
