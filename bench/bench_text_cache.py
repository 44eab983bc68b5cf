"""Build-time text features with and without the text feature cache (TEST.FEATURE_CACHE).

Per method, the hand-made template text features its build computes from C class names
(ZeroshotCLIP: 1 template, ZeroshotCLIP2: 8, KgCoOp: 1, TaskRes: 1, one text-tower run per class,
PromptSRC: 60), through ``cached_text_features`` as the trainers call it, at ViT-B/16 shape with
random weights (written to a file once: the key holds its content hash). "without": the cache
off (the text tower runs); "with": a warm cache (the file is read). The weights' hash, which a run
computes once and shares with the image feature cache, is timed apart. Each repeat starts with an
empty cache; prints each method's times, the ratio's mean and spread over the repeats (the read
takes milliseconds, so the ratio is noisy: the seconds saved per build are printed too).

usage: python bench/bench_text_cache.py [--classes 10] [--repeats 3] [--threads 2] [--shape vit-b16|tiny]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from types import SimpleNamespace

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.random_clips import SHAPES, student_clip  # noqa: E402
from engine.feature_cache import cached_text_features  # noqa: E402
from engine.run_manifest import file_fingerprint  # noqa: E402
from trainers.kgcoop import hand_crafted_prompts, hand_crafted_text_features  # noqa: E402
from trainers.promptsrc import template_prompts, template_text_features  # noqa: E402
from trainers.shared.templates import IMAGENET_TEMPLATES, IMAGENET_TEMPLATES_SELECT  # noqa: E402
from trainers.taskres import class_eot_features  # noqa: E402
from trainers.zsclip import zero_shot_weights  # noqa: E402

TEMPLATE = "a photo of a {}."
SMALLEST = ["--shape", "tiny", "--classes", "3", "--repeats", "1", "--threads", "1"]


def methods(clip_model, classnames):
    """{method: (cache name, prompts, compute)} as the trainers build them."""
    zs2 = [[t.format(c) for c in classnames] for t in (*IMAGENET_TEMPLATES_SELECT, TEMPLATE)]
    return {
        "ZeroshotCLIP": ("zeroshot-weights", [[TEMPLATE.format(c) for c in classnames]],
                         lambda: zero_shot_weights(clip_model, [[TEMPLATE.format(c) for c in classnames]])),
        "ZeroshotCLIP2": ("zeroshot-weights", zs2, lambda: zero_shot_weights(clip_model, zs2)),
        "KgCoOp": ("kgcoop-anchors", hand_crafted_prompts(classnames, TEMPLATE),
                   lambda: hand_crafted_text_features(clip_model, classnames, TEMPLATE)),
        "TaskRes": ("taskres-eot", [[TEMPLATE.format(c)] for c in classnames],
                    lambda: class_eot_features(clip_model, classnames, [TEMPLATE])),
        "PromptSRC": ("promptsrc-frozen-text", template_prompts(classnames, IMAGENET_TEMPLATES),
                      lambda: template_text_features(clip_model, classnames, IMAGENET_TEMPLATES)),
    }


def run_like(weights, folder, on, digest):
    """What cached_text_features reads of a trainer; ``digest`` the run's weights hash, computed once."""
    cfg = SimpleNamespace(TEST=SimpleNamespace(FEATURE_CACHE=on, FEATURE_CACHE_DIR=folder),
                          DATASET=SimpleNamespace(NAME="Bench"))
    return SimpleNamespace(cfg=cfg, weights_files=lambda cfg: {"MODEL.BACKBONE": weights}, weights_digests={weights: digest})


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shape", default="vit-b16", choices=SHAPES, help="tiny: the smallest mode (tests)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    classnames = [f"made up class {i}" for i in range(args.classes)]
    with tempfile.TemporaryDirectory() as work:
        clip_model = student_clip(args.shape)
        weights = os.path.join(work, "clip.pt")
        torch.save(clip_model.state_dict(), weights)
        hash_s, digest = timed(lambda: file_fingerprint(weights)["sha256"])
        table = methods(clip_model, classnames)
        table["KgCoOp"][2]()  # warm-up: the first text-tower call is not the method's cost
        times = {m: ([], []) for m in table}
        for repeat in range(args.repeats):
            folder = os.path.join(work, f"cache{repeat}")
            for method, (name, prompts, compute) in table.items():
                without, plain = timed(lambda: cached_text_features(run_like(weights, folder, False, digest),
                                                                    clip_model, name, prompts, compute))
                cached_text_features(run_like(weights, folder, True, digest), clip_model, name, prompts, compute)
                warm, read = timed(lambda: cached_text_features(run_like(weights, folder, True, digest),
                                                                clip_model, name, prompts, compute))
                assert torch.equal(plain, read), method
                times[method][0].append(without)
                times[method][1].append(warm)
    print(f"cpu threads={args.threads} fp32 {args.shape} CLIP (random weights), {args.classes} classes, "
          f"{args.repeats} repeats; weights hash (once per run, shared with the image cache) {hash_s:.2f} s")
    for method, (without, warm) in times.items():
        ratios = [a / b for a, b in zip(without, warm)]
        spread = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
        n_prompts = sum(len(row) if isinstance(row, list) else 1 for row in table[method][1])
        saved = [a - b for a, b in zip(without, warm)]
        saved_spread = statistics.stdev(saved) if len(saved) > 1 else 0.0
        print(f"{method:14s} {n_prompts:5d} prompts: without cache {statistics.mean(without):.3f} s, "
              f"with cache {1000 * statistics.mean(warm):.2f} ms, ratio {statistics.mean(ratios):.1f} ± {spread:.1f} "
              f"(min {min(ratios):.1f}, max {max(ratios):.1f}), saved {statistics.mean(saved):.3f} ± {saved_spread:.3f} s per build")


if __name__ == "__main__":
    main()
