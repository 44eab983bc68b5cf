#!/bin/bash
# ClipCap / CapDec in the generated world, without and with RLCF test-time adaptation on a shifted
# style (see docs/TTA_CAPTIONING.md, "In the generated world"). Environment: OUT (default
# output/world_captioning), SEEDS (default "1 2 3"), STYLES (default "sketch"; also "cartoon", ...).
# Extra arguments go to python -m tools.world.captioning (e.g. --test-images 50).
set -e
cd "$(dirname "$0")/../.."
OUT=${OUT:-output/world_captioning}
SEEDS=${SEEDS:-1 2 3}
STYLES=${STYLES:-sketch}
# shellcheck disable=SC2086
python -m tools.world.captioning --out "${OUT}" --seeds ${SEEDS} --styles ${STYLES} "$@"
