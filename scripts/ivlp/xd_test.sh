#!/bin/bash
# IVLP cross-dataset, step 2: evaluate the ImageNet model on DATASET (LOADEP=2 by default, as the reference).
# usage: bash scripts/ivlp/xd_test.sh DATASET SEED [KEY VALUE ...]
# writes output/evaluation/IVLP/CFG_16shots/DATASET/seedSEED
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET SEED" "$@"
src_xd_test IVLP "${CFG:-vit_b16_c2_ep5_batch4_2+2ctx}" "${LOADEP:-2}" "$@"
