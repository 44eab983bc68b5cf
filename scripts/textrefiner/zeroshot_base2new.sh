#!/bin/bash
# Zero-shot CLIP on the base and on the new classes, written into the base2new trees
# (train_base/ and test_new/) so that parse_test_res.py --base2new lists it with the trained methods.
# usage: bash scripts/textrefiner/zeroshot_base2new.sh DATASET CFG SEED [KEY VALUE ...]
# (CFG names configs/trainers/CoOp/CFG.yaml, as for zeroshot.sh)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET CFG SEED" "$@"
zeroshot_base2new "$@"
