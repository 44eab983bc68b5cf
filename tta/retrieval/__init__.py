"""RLCF image-text retrieval (tta_ret.py): zero-shot, and test-time adaptation of one query at a time.

data.py      LAVIS annotation files (COCO / Flickr30k Karpathy test, the world set), caption cleaning,
             the CLIP eval transform
metrics.py   Recall@1/5/10 both ways under LAVIS's names
"""
