#!/bin/bash
# Zero-shot CLIP with the data set's hand-written template.
# usage: bash scripts/coop/zeroshot.sh DATASET CFG [KEY VALUE ...]   (CFG: rn50, rn101, vit_b32 or vit_b16)
set -e
source "$(dirname "$0")/../runs.sh"
usage_if_missing "DATASET CFG" "$@"
zeroshot "$@"
