"""Per-image cost of test-time adaptation at real shapes (random weights): seconds and peak memory.

Each case runs in a fresh process, so its peak resident memory (ru_maxrss) is its own; "model"
is the resident memory after building the CLIPs and the per-data-set parts, "peak" the
maximum while adapting. Cases:
- views:        building 64 views (--views) of a 500x375 image (crop + flip, and AugMix)
- tpt / rlcf-prompt / rlcf-tune: one image, 64 views (--views), ViT-B/16 student (ViT-L/14 reward),
  the steps of the method (TPT 1, RLCF 3)
- memory-1000 / memory-1000-chunked: RLCF prompt tuning at 1000 classes, the text encoder's
  backward over all classes at once (--class_chunk 0) vs 256 classes at a time (the default)

usage: python bench/bench_tta.py [--threads 2] [--classes 200] [--shape vit-b16|tiny] [--views 64] [--cases views tpt ...]
                                [--in-process]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.random_clips import SHAPES, student_clip, teacher_clip  # noqa: E402
from tta.classification.adapt import Adapter  # noqa: E402
from tta.classification.policy import PromptPolicy, VisualPolicy  # noqa: E402
from tta.core.rewards import CLIPReward  # noqa: E402
from tta.classification.views import ViewBuilder  # noqa: E402

CASES = ("views", "tpt", "rlcf-prompt", "rlcf-tune", "memory-1000", "memory-1000-chunked")
WORDS = ["tench", "goldfish", "great white shark", "tiger shark", "hammerhead shark", "electric ray", "stingray"]
SMALLEST = ["--shape", "tiny", "--classes", "4", "--images", "1", "--views", "10", "--in-process"]


def rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def view_cost(images, size, n_views):
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (375, 500, 3), dtype=np.uint8))
    out = {}
    for augmix in (False, True):
        builder = ViewBuilder(size, n_views, use_augmix=augmix)
        start = time.time()
        for i in range(images):
            builder(img, i)
        out["s/image AugMix" if augmix else "s/image crop+flip"] = round((time.time() - start) / images, 3)
    return out


def run_case(case, shape, n_classes, images, n_views=64):
    """One case in this process: {"s/image", "model GB", "peak GB"}."""
    if case == "views":
        return view_cost(images, 32 if shape == "tiny" else 224, n_views)
    torch.manual_seed(0)
    memory_cases = {"memory-1000": ("rlcf-prompt", 0), "memory-1000-chunked": ("rlcf-prompt", 256)}
    method, chunk = memory_cases.get(case, (case, 256))
    n_classes = 1000 if case.startswith("memory") else n_classes
    student, teacher = student_clip(shape), teacher_clip(shape)
    names = [f"{WORDS[i % len(WORDS)]} {i}" for i in range(n_classes)]
    size = student.visual.input_resolution
    views = torch.randn(n_views, 3, size, size)
    if method == "rlcf-tune":
        policy, steps, lr, wd = VisualPolicy(student, "a_photo_of_a"), 3, 1e-5, 5e-4
    else:
        policy = PromptPolicy(student, 4, "a photo of a", class_chunk=chunk)
        steps, lr, wd = (1, 5e-3, 0.01) if method == "tpt" else (3, 7e-3, 5e-4)
    reward = None if method == "tpt" else CLIPReward([teacher], sample_k=3)
    tokenized = policy.start_dataset(names)
    if reward is not None:
        reward.set_class_features(tokenized)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr, weight_decay=wd)
    adapter = Adapter(policy, optimizer, steps, 0.1, reward)
    model_gb = rss_gb()
    start = time.time()  # no warm-up: building the optimizer did the one-time imports
    for _ in range(images):
        adapter.predict(views)
    return {"classes": n_classes, "class_chunk": chunk if method != "rlcf-tune" else None,
            "s/image": round((time.time() - start) / images, 2), "model GB": round(model_gb, 2),
            "peak GB": round(rss_gb(), 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--classes", type=int, default=200, help="classes of the tpt / rlcf cases (ImageNet-A: 200)")
    parser.add_argument("--shape", default="vit-b16", choices=SHAPES, help="tiny: the smallest mode (tests)")
    parser.add_argument("--images", type=int, default=2, help="timed images per case")
    parser.add_argument("--views", type=int, default=64, help="views per image")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--in-process", action="store_true",
                        help="run the cases one after another in this process (quicker to start; the memory "
                             "figures then include the earlier cases')")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # one case, in this process
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.case:
        print(json.dumps(run_case(args.case, args.shape, args.classes, args.images, args.views)))
        return
    print(f"torch {torch.__version__}, {args.threads} threads, shape {args.shape}, {args.classes} classes, {args.views} views")
    for case in args.cases:
        if args.in_process:
            print(f"{case:12s} {json.dumps(run_case(case, args.shape, args.classes, args.images, args.views))}", flush=True)
            continue
        cmd = [sys.executable, __file__, "--case", case, "--threads", str(args.threads), "--shape", args.shape,
               "--classes", str(args.classes), "--images", str(args.images), "--views", str(args.views)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        print(f"{case:12s} {out}", flush=True)


if __name__ == "__main__":
    main()
