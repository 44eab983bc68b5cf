"""The world's benchmark data sets, written in the CoOp split-file layout.

    python -m tools.world.data --root DATA [--seed 0] [--names WorldShapes WorldPatterns]

Each data set has its own label vocabulary and its own rendering style, one that the
hand-written prompt "a photo of a {}." does not name (except the photo-style source):

    WorldObjects         colour x shape (64 classes), photo     the source ("ImageNet") of the world
    WorldShapes          shape (8), sketch
    WorldColors          colour (8), blurry photo
    WorldPatterns        pattern x shape (24), cartoon
    WorldObjectsSketch   WorldObjects' classes as sketches       (ImageNet-Sketch analogue, test only)
    WorldObjectsCartoon  ... as cartoons                          (ImageNet-R analogue, test only)
    WorldObjectsNoisy    ... as noisy photos                      (ImageNetV2 analogue, test only)

Layout of <root>/<folder>/: images/<class folder>/<split>_<n>.png and split_<Name>.json with
"train", "val" and "test" lists of [relative path, label, class name] (the split files of the
CoOp data sets). The test-only shifted sets list their images under "test" only.
Everything is a function of the seed: the same seed writes the same files.
"""
import argparse
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from engine.utils.tools import write_text_atomic

from .captions import random_attributes
from .render import COLOURS, SHAPES, render

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class WorldDataset:
    """One data set: its classes (name, fixed attributes), style and images per class per split."""

    name: str
    folder: str
    style: str
    classes: tuple  # ((classname, {attribute: value}), ...)
    counts: dict = field(default_factory=lambda: {"train": 20, "val": 5, "test": 15})

    @property
    def classnames(self):
        return [name for name, _ in self.classes]

    @property
    def split_file(self):
        return f"split_{self.name}.json"

    @property
    def test_only(self):
        return not self.counts.get("train")


def _objects():
    return tuple((f"{c} {s}", {"colour": c, "shape": s}) for c in COLOURS for s in SHAPES)


def _patterns():
    return tuple((f"{p} {s}", {"pattern": p, "shape": s}) for p in ("striped", "dotted", "checkered") for s in SHAPES)


_TEST_ONLY = {"train": 0, "val": 0, "test": 10}
DATASETS = {
    d.name: d
    for d in (
        WorldDataset("WorldObjects", "world_objects", "photo", _objects()),
        WorldDataset("WorldShapes", "world_shapes", "sketch", tuple((s, {"shape": s}) for s in SHAPES),
                     {"train": 24, "val": 6, "test": 50}),
        WorldDataset("WorldColors", "world_colors", "blurry photo",
                     tuple((f"{c} shape", {"colour": c}) for c in COLOURS), {"train": 24, "val": 6, "test": 50}),
        WorldDataset("WorldPatterns", "world_patterns", "cartoon", _patterns()),
        WorldDataset("WorldObjectsSketch", "world_objects_sketch", "sketch", _objects(), _TEST_ONLY),
        WorldDataset("WorldObjectsCartoon", "world_objects_cartoon", "cartoon", _objects(), _TEST_ONLY),
        WorldDataset("WorldObjectsNoisy", "world_objects_noisy", "noisy photo", _objects(), _TEST_ONLY),
    )
}


def _dataset_seed(seed, name, split):
    """A seed per (world seed, data set, split), independent of which other sets are written."""
    return [seed, sum(ord(ch) * 31**i for i, ch in enumerate(name)) % 2**31, SPLITS.index(split)]


def generate(dataset, split, seed=0):
    """Yield (label, index, image [32, 32, 3] uint8) of one split, in label order."""
    rng = np.random.default_rng(_dataset_seed(seed, dataset.name, split))
    for label, (_, fixed) in enumerate(dataset.classes):
        for i in range(dataset.counts.get(split, 0)):
            attrs = random_attributes(rng, style=dataset.style, **fixed)
            yield label, i, render(attrs, rng)


def class_folder(classname):
    return classname.replace(" ", "_")


def write_dataset(dataset, root, seed=0):
    """Write one data set under ``root``; returns its folder. Paths in the split file are relative
    to <folder>/images."""
    image_root = os.path.join(root, dataset.folder, "images")
    split = {}
    for part in SPLITS:
        items = []
        for label, i, pixels in generate(dataset, part, seed):
            cname = dataset.classnames[label]
            relpath = f"{class_folder(cname)}/{part}_{i:03d}.png"
            path = os.path.join(image_root, relpath)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(pixels).save(path, format="PNG", compress_level=1)
            items.append([relpath, label, cname])
        split[part] = items
    path = os.path.join(root, dataset.folder, dataset.split_file)
    write_text_atomic(path, json.dumps(split))  # last: a folder with its split file is complete
    return os.path.join(root, dataset.folder)


def is_written(dataset, root):
    return os.path.isfile(os.path.join(root, dataset.folder, dataset.split_file))


def resolve_name(text):
    """A world data set by registered name (WorldShapes) or config name (world_shapes)."""
    from datasets.names import resolve_dataset_name  # imported here: generating needs no data set code

    return resolve_dataset_name(text, DATASETS)


def write_world(root, names=None, seed=0, force=False, log=print):
    """Write the named data sets (all by default) that are missing under ``root``."""
    names = [resolve_name(n) for n in names or DATASETS]
    for name in names:
        dataset = DATASETS[name]
        if is_written(dataset, root) and not force:
            log(f"{name}: found in {os.path.join(root, dataset.folder)}")
            continue
        start = time.time()
        folder = write_dataset(dataset, root, seed)
        sizes = ", ".join(f"{k} {dataset.counts.get(k, 0) * len(dataset.classes)}" for k in SPLITS)
        log(f"{name}: wrote {folder} ({len(dataset.classes)} classes, {dataset.style}; {sizes}) "
            f"in {time.time() - start:.1f}s")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the generated world's data sets (split-file layout).")
    parser.add_argument("--root", required=True, help="data root (DATASET.ROOT) to write the data set folders into")
    parser.add_argument("--names", nargs="+", default=None,
                        help=f"data sets by name or config name (default: all of {', '.join(DATASETS)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="write again even when present")
    args = parser.parse_args(argv)
    try:
        write_world(args.root, args.names, args.seed, args.force)
    except ValueError as e:
        parser.error(str(e))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
