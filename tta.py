"""Test-time adaptation of CLIP on classification: zero-shot, TPT and RLCF (prompt or image encoder).

    python tta.py --method rlcf-prompt --root DATA --test_sets A/V/R/K/I -a ViT-B/16 --reward_arch ViT-L/14 \
        --load COOP_CHECKPOINT --output output/rlcf_prompt

See docs/TTA.md.
"""
import sys

from engine.utils.faults import run_command
from tta.classification.runner import main

if __name__ == "__main__":
    # a user error: its message alone (TEXTREFINER_DEBUG=1 for the traceback); Ctrl-C: 130, the
    # finished sets are kept and the same command runs the others
    sys.exit(run_command(main))
