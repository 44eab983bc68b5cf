"""The world's image-text retrieval set, in LAVIS's annotation format (as coco_karpathy_test.json).

    python -m tools.world.retrieval --root DATA [--images 1000] [--captions 5] [--seed 0]

writes <root>/world_retrieval/images/NNNNN.png and <root>/world_retrieval/world_retrieval_test.json,
one entry per image: {"image": "images/NNNNN.png", "caption": [5 world captions of its attributes]}.
Each image draws its attributes uniformly (every style), each caption a random template naming a
random subset of them (tools/world/captions.py), so captions can fit several images, as in COCO.
Everything is a function of the seed.
"""
import argparse
import json
import os
import time

import numpy as np
from PIL import Image

from .captions import caption, random_attributes
from .render import render

FOLDER = "world_retrieval"
ANNOTATION = "world_retrieval_test.json"
TAG = 7727  # the retrieval set's own stream of the world seed


def generate(n_images, n_captions, seed=0):
    """Yield (image [32, 32, 3] uint8, captions) of the set."""
    rng = np.random.default_rng([seed, TAG])
    for _ in range(n_images):
        attrs = random_attributes(rng)
        yield render(attrs, rng), [caption(attrs, rng) for _ in range(n_captions)]


def write_retrieval_set(root, n_images=1000, n_captions=5, seed=0):
    """Write the set under ``root``; returns the annotation file. The annotation is written last
    (atomically): a folder with its annotation file is complete."""
    folder = os.path.join(root, FOLDER)
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    entries = []
    for i, (pixels, captions) in enumerate(generate(n_images, n_captions, seed)):
        relpath = f"images/{i:05d}.png"
        Image.fromarray(pixels).save(os.path.join(folder, relpath), format="PNG", compress_level=1)
        entries.append({"image": relpath, "caption": captions, "image_id": i})
    path = os.path.join(folder, ANNOTATION)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(entries, f)
    os.replace(tmp, path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the world's image-text retrieval set (LAVIS format).")
    parser.add_argument("--root", required=True, help="data root to write world_retrieval/ into")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--captions", type=int, default=5, help="captions per image")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.images < 1 or args.captions < 1:
        parser.error(f"--images and --captions must be at least 1, got {args.images} and {args.captions}")
    start = time.time()
    path = write_retrieval_set(args.root, args.images, args.captions, args.seed)
    print(f"Wrote {path} ({args.images} images x {args.captions} captions) in {time.time() - start:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
