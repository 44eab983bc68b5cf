#!/usr/bin/env bash
# Installs what is missing (scripts/install.sh), then runs the demo (scripts/textrefiner/demo.sh).
# usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/textrefiner/demo.sh "$@"
