"""The shifted world sets as image folders for test-time adaptation (scripts/world/benchmark.sh).

    python -m tools.world.tta_folders --root DATA --out FOLDER --per-class N --sets world_objects_sketch ...

writes each set's first N test images per class as an image folder (``<set>/test/<class>/`` and its
``classnames.txt``, docs/OWN_DATA.md) for ``tta.py --image_folder``.
"""
import argparse
import json
import os
import shutil
import sys

from engine.utils.tools import write_text_atomic

from .data import DATASETS


def write_tta_folders(root, out, per_class, sets):
    """Copy the first ``per_class`` test images of each class of each world set into out/<set>/test/<class>/."""
    by_folder = {d.folder: d for d in DATASETS.values()}
    for name in sets:
        if name not in by_folder:
            raise ValueError(f'Unknown world data set "{name}": choose from {", ".join(sorted(by_folder))}')
        dataset = by_folder[name]
        split_file = os.path.join(root, dataset.folder, dataset.split_file)
        if not os.path.isfile(split_file):
            raise FileNotFoundError(f"{split_file} is missing: write it with python -m tools.world.data --root {root}")
        with open(split_file, encoding="utf-8") as f:
            test = json.load(f)["test"]
        target = os.path.join(out, name)
        shutil.rmtree(target, ignore_errors=True)
        taken, names = {}, {}
        for rel, label, classname in test:
            if taken.get(label, 0) >= per_class:
                continue
            taken[label] = taken.get(label, 0) + 1
            folder = os.path.dirname(rel)
            names[folder] = classname
            os.makedirs(os.path.join(target, "test", folder), exist_ok=True)
            shutil.copyfile(os.path.join(root, dataset.folder, "images", rel), os.path.join(target, "test", rel))
        write_text_atomic(os.path.join(target, "classnames.txt"),
                          "".join(f"{folder} {classname}\n" for folder, classname in sorted(names.items())))
        print(f"{name}: {sum(taken.values())} test images ({per_class} per class) in {target}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="The shifted world sets' first test images as image folders.")
    parser.add_argument("--root", required=True, help="the world data root (python -m tools.world.data)")
    parser.add_argument("--out", required=True, help="folder for the image folders")
    parser.add_argument("--per-class", type=int, default=2, help="test images per class")
    parser.add_argument("--sets", nargs="+", required=True, help="world data set folders")
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error(f"--per-class must be at least 1, got {args.per_class}")
    try:
        write_tta_folders(args.root, args.out, args.per_class, args.sets)
    except (ValueError, FileNotFoundError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
