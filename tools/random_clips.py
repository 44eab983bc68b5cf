"""The CLIPs that bench/ and tools/world/tta_step_size.py measure: OpenAI's shapes with random
weights, or tiny ones.

``--shape tiny`` is every benchmark's smallest mode (what tests/test_bench.py runs, so that a
benchmark cannot break unnoticed); the figures worth quoting come from the real shapes.
"""
from clip.model import CLIP
from tools.tiny_clip import tiny_clip_model

SHAPES = ("vit-b16", "tiny")


def student_clip(shape):
    """ViT-B/16's shape (224 px, 512-d features) or a tiny ViT (32 px, 32-d), random weights, eval mode."""
    if shape == "tiny":
        return tiny_clip_model(seed=0)
    return CLIP(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12).eval()


def teacher_clip(shape):
    """ViT-L/14's shape, or a tiny ViT one block deeper and wider than the tiny student (48-d)."""
    if shape == "tiny":
        return tiny_clip_model(seed=3, embed_dim=48, vision_layers=3, text_layers=3)
    return CLIP(768, 224, 24, 1024, 14, 77, 49408, 768, 12, 12).eval()
