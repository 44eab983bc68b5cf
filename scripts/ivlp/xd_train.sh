#!/bin/bash
# IVLP cross-dataset, step 1: train on ImageNet (16 shots, all classes; SOURCE=<dataset> to train elsewhere).
# usage: bash scripts/ivlp/xd_train.sh SEED [KEY VALUE ...]
# writes output/imagenet/IVLP/CFG_16shots/seedSEED (CFG=vit_b16_c2_ep5_batch4_2+2ctx by default)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "SEED" "$@"
src_xd_train IVLP "${CFG:-vit_b16_c2_ep5_batch4_2+2ctx}" "${SOURCE:-imagenet}" "$@"
