"""The world's image-text retrieval set, in LAVIS's annotation format (as coco_karpathy_test.json).

    python -m tools.world.retrieval --root DATA [--images 1000] [--captions 5] [--seed 0]
    python -m tools.world.retrieval --summarize OUT --seeds 0 1 2


writes <root>/world_retrieval/images/NNNNN.png and <root>/world_retrieval/world_retrieval_test.json,
one entry per image: {"image": "images/NNNNN.png", "caption": [5 world captions of its attributes]}.
Each image draws its attributes uniformly (every style), each caption a random template naming a
random subset of them (tools/world/captions.py), so captions can fit several images, as in COCO.
Everything is a function of the seed.

``--summarize OUT`` reads the runs of scripts/world/retrieval.sh under OUT (seed<S>/zero_shot and
seed<S>/tta_clip_world_ret_01/<direction>) and prints zero-shot vs RLCF R@1 / R@5 both ways, mean
± std (sample std) over the seeds, as markdown; the rows are also written to OUT/results.json.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
from PIL import Image

from engine.utils.tools import write_json_atomic

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


TABLE_METRICS = ("txt_r1", "txt_r5", "img_r1", "img_r5")
# (row, results.json files of one seed's runs, relative to OUT/seed<S>)
RUNS = (("zero-shot", ("zero_shot",)),
        ("RLCF", ("tta_clip_world_ret_01/image2text", "tta_clip_world_ret_01/text2image")))


def _read_metrics(folder):
    path = os.path.join(folder, "results.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist: run scripts/world/retrieval.sh for this seed first")
    with open(path) as f:
        return json.load(f)


def _mean_std(values):
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def summarize(out, seeds):
    """{row: {metric: [value per seed]}} of the runs under ``out`` (written to out/results.json), and
    its markdown table."""
    rows = {}
    for name, folders in RUNS:
        merged = [{} for _ in seeds]
        for per_seed, seed in zip(merged, seeds):
            for folder in folders:
                per_seed.update(_read_metrics(os.path.join(out, f"seed{seed}", folder)))
        rows[name] = {m: [r[m] for r in merged] for m in TABLE_METRICS}
    write_json_atomic({"seeds": list(seeds), "rows": rows}, os.path.join(out, "results.json"))
    lines = [f"| ({len(seeds)} seeds) | " + " | ".join(TABLE_METRICS) + " |", "|---" * (1 + len(TABLE_METRICS)) + "|"]
    lines += [f"| {name} | " + " | ".join(_mean_std(v[m]) for m in TABLE_METRICS) + " |" for name, v in rows.items()]
    return rows, "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the world's image-text retrieval set (LAVIS format).")
    parser.add_argument("--root", help="data root to write world_retrieval/ into")
    parser.add_argument("--summarize", metavar="OUT", help="print the table of scripts/world/retrieval.sh's runs under OUT")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="with --summarize: the seeds")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--captions", type=int, default=5, help="captions per image")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.summarize:
        try:
            print(summarize(args.summarize, args.seeds)[1])
        except FileNotFoundError as e:
            parser.error(str(e))
        return 0
    if args.root is None:
        parser.error("give --root DATA (the folder to write world_retrieval/ into), or --summarize OUT")
    if args.images < 1 or args.captions < 1:
        parser.error(f"--images and --captions must be at least 1, got {args.images} and {args.captions}")
    start = time.time()
    path = write_retrieval_set(args.root, args.images, args.captions, args.seed)
    print(f"Wrote {path} ({args.images} images x {args.captions} captions) in {time.time() - start:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
