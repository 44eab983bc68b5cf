#!/bin/bash
# TaskRes* (enhanced base): as train_regular.sh, with the base read from
# STRONG_BASE/<DatasetName>/<BASE_TAG>_<K>shots/model.pth.tar (default ./strong_base/.../rn50_Kshots/),
# the layout of the released bases and of what scripts/taskres/enhanced_base.sh writes.
# usage: bash scripts/taskres/train_enhance.sh [KEY VALUE ...]; then
#   python parse_test_res.py --fewshot output/FINAL/enhanced
set -e
source "$(dirname "$0")/common.sh"
taskres_sweep enhanced "$@"
