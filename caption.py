"""Image captioning with ClipCap / CapDec and RLCF test-time adaptation (see docs/TTA_CAPTIONING.md).

    python caption.py train --data FEATURES --cap_model CapDec --llm_config_dir facebook/opt-125m --out_dir OUT
    python caption.py tta --checkpoint OUT/ckpt-latest.safetensors --annotations flickr30k_test.json \
        --images_root FLICKR --tta_steps 4 --tta_lr 5e-6 --sample_k 6 --output OUT/c2f
"""
import sys

from engine.utils.faults import run_command
from tta.captioning.cli import main

if __name__ == "__main__":
    sys.exit(run_command(main))
