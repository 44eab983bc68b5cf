#!/usr/bin/env bash
# Installs what this machine lacks to run the framework; with --dev, also what the tests need.
# usage: bash scripts/install.sh [--dev]        (PYTHON=... picks the interpreter; default python)
#
# torch: an installed torch is kept as it is. Without one: where an NVIDIA driver answers, PyPI's
# torch (its Linux build bundles CUDA); elsewhere the pinned CPU build (torch==2.13.0, a local
# wheel where pip is configured with one), else the CPU build from PyTorch's own index.
# An unpinned `pip install torch` on a CPU machine would pull several GB of CUDA libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
TORCH_CPU=torch==2.13.0
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

case "${1:-}" in
    "") REQUIREMENTS=requirements.txt ;;
    --dev) REQUIREMENTS=requirements-dev.txt ;;
    *) echo "usage: bash scripts/install.sh [--dev]" >&2; exit 2 ;;
esac

if ! "$PYTHON" -c "import sys; sys.exit(sys.version_info < (3, 10))"; then
    echo "install: Python 3.10 or newer is needed; '$PYTHON' is $("$PYTHON" --version 2>&1)" \
         "(set PYTHON=... to use another interpreter)" >&2
    exit 1
fi

if torch_version=$("$PYTHON" -c "import torch; print(torch.__version__)" 2>/dev/null); then
    # kept as it is: requirements.txt asks torch>=2.1, which pip would otherwise "upgrade"
    if ! "$PYTHON" -c "import sys, torch; v = tuple(int(p) for p in torch.__version__.split('+')[0].split('.')[:2]); sys.exit(v < (2, 1))"; then
        echo "install: torch $torch_version is installed; this framework needs torch>=2.1:" \
             "install the build for your machine (CPU or CUDA) yourself" >&2
        exit 1
    fi
    echo "install: keeping torch $torch_version"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    echo "install: no torch; an NVIDIA driver answers: installing PyPI's torch (CUDA)"
    "$PYTHON" -m pip install "torch>=2.1"
else
    echo "install: no torch and no CUDA: installing the CPU build"
    "$PYTHON" -m pip install "$TORCH_CPU" || "$PYTHON" -m pip install torch --index-url "$TORCH_CPU_INDEX"
fi

"$PYTHON" -m pip install --quiet -r "$REQUIREMENTS"
