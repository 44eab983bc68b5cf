"""Test-time adaptation of CLIP on classification: zero-shot, TPT and RLCF (prompt or image encoder).

    python tta.py --method rlcf-prompt --root DATA --test_sets A/V/R/K/I -a ViT-B/16 --reward_arch ViT-L/14 \
        --load COOP_CHECKPOINT --output output/rlcf_prompt

See README.md, section "Test-time adaptation (TPT, RLCF)".
"""
from trainers.tta.runner import main

if __name__ == "__main__":
    main()
