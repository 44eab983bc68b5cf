"""RLCF image-text retrieval: zero-shot, and test-time adaptation of CLIP to each query.

    python tta_ret.py --dataset coco --root DATA --retrieval_task image2text -a ViT-B/16 --reward_arch ViT-L/14 \\
        --tta_steps 8 --lr 1e-6 --output output/tta_clip_coco_ret_01/image2text
    python tta_ret.py --method zeroshot --dataset flickr30k --root DATA -a ViT-B/16 ViT-L/14 --output ...

See docs/TTA_RETRIEVAL.md.
"""
import sys

from engine.utils.faults import run_command
from tta.retrieval.runner import main

if __name__ == "__main__":
    sys.exit(run_command(main))
