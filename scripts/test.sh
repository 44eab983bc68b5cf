#!/usr/bin/env bash
# Installs what is missing, test tools included (scripts/install.sh --dev), then runs the tests.
# usage: bash scripts/test.sh [pytest arguments]      e.g. bash scripts/test.sh tests/test_tokenizer.py
# The tests run in one process per CPU (pytest-xdist, whole files per process: a file's shared
# runs are made once); TEST_WORKERS=N sets the number of processes, TEST_WORKERS=0 runs in this
# process only. The exit status is pytest's (5: no test was collected).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
WORKERS=(-n "${TEST_WORKERS:-auto}" --dist loadfile)
[ "${TEST_WORKERS:-auto}" = 0 ] && WORKERS=(-p no:xdist)
exec "${PYTHON:-python}" -m pytest "${WORKERS[@]}" "$@"
