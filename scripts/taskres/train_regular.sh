#!/bin/bash
# TaskRes with the regular base: 1/2/4/8/16 shots x 11 data sets x seeds 1-3, the reference's values.
# usage: bash scripts/taskres/train_regular.sh [KEY VALUE ...]
# DATASETS="dtd eurosat" / SHOTS_LIST="1 2" / SEEDS="1" restrict the sweep; then
#   python parse_test_res.py --fewshot output/FINAL/debug
set -e
source "$(dirname "$0")/common.sh"
taskres_sweep regular "$@"
