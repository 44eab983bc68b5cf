"""A miniature retrieval set in the COCO layout (coco2014/coco_karpathy_test.json + coco2014/val2014/)."""
import json
import os

import numpy as np
from PIL import Image


def write_mini_coco(root, n_images=6, captions_per_image=5, size=(40, 30), seed=0):
    """Random images with numbered captions (mixed case and punctuation, as COCO's); returns the entries."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "coco2014", "val2014")
    os.makedirs(folder, exist_ok=True)
    entries = []
    for i in range(n_images):
        name = f"val2014/COCO_val2014_{i:012d}.jpg"
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(root, "coco2014", name), quality=95)
        caps = [f"A photo, number {i}: Caption {c} of image {i}!" for c in range(captions_per_image)]
        entries.append({"image": name, "caption": caps, "image_id": i})
    with open(os.path.join(root, "coco2014", "coco_karpathy_test.json"), "w") as f:
        json.dump(entries, f)
    return entries
