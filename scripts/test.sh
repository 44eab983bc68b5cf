#!/usr/bin/env bash
# Installs what is missing, test tools included (scripts/install.sh --dev), then runs the tests.
# usage: bash scripts/test.sh [pytest arguments]      e.g. bash scripts/test.sh tests/test_tokenizer.py
# The exit status is pytest's (5: no test was collected).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
exec "${PYTHON:-python}" -m pytest "$@"
