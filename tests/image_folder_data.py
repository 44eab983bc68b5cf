"""Miniature image folders (your own data) in each layout ImageFolder reads."""
import os

import numpy as np
from PIL import Image


def write_image(path, seed, size=(20, 16)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def make_image_folder(root, classes=("sea_lion", "tabby_cat", "tree_frog"), images=8, splits=None, seed=0):
    """root/<class>/img_<i>.png (``splits`` None) or root/<split>/<class>/... for each split given
    as {split: images per class}. Returns root."""
    parts = {"": images} if splits is None else splits
    for split, count in parts.items():
        for c, name in enumerate(classes):
            for i in range(count):
                write_image(os.path.join(root, split, name, f"img_{i}.png"), seed + 1000 * c + 37 * i + len(split))
    return str(root)
