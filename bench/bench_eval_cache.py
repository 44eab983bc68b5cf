"""Evaluation-phase wall time with and without the feature cache (TEST.FEATURE_CACHE), base-to-new.

The protocol of one data set: 2 methods (CoOp and TextRefiner on CoOp) x 3 seeds, each evaluated on
the base and the new classes' test images, at ViT-B/16 shape with random weights (written to a
file once: the cache keys on its content). Without the cache every evaluation runs the image
tower over its split; with it, the first evaluation of a split computes and stores the features and
the other ones read them. A seed's evaluation is ``trainer.test()`` on a trainer built once per
(method, split) with a fresh run's state (the weights are hashed again, as a new run does); building
is not timed. Each repeat starts with an empty cache. Prints each repeat's times and ratio, the
ratio's mean and spread, and a projection for a 25k-image test split from the measured parts of an
evaluation: a fixed part (class text, keys), the image tower per image (timed alone) and the
cache read per image.

usage: python bench/bench_eval_cache.py [--images 200] [--seeds 3] [--repeats 3] [--threads 2]
                                        [--device cpu] [--shape vit-b16|tiny] [--project 25000]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import train  # noqa: E402
from tools.random_clips import SHAPES, student_clip  # noqa: E402
from tools.synthetic_data import make_dataset  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = {"CoOp": "CoOp/vit_b16_ep50_ctxv1", "TextRefiner": "TextRefiner/vit_b16_ep10_ctxv1"}
N_CLASSES = 10  # 5 base, 5 new
TEST_SHARE = 0.3  # the generated OxfordPets puts about 30% of a class's images in test
SMALLEST = ["--shape", "tiny", "--images", "10", "--seeds", "2", "--repeats", "1", "--threads", "1"]


def build_trainer(root, weights, out, method, subsample, device, size):
    argv = ["--root", root, "--seed", "1", "--output-dir", out, "--trainer", method, "--no-train",
            "--dataset-config-file", os.path.join(REPO, "configs/datasets/oxford_pets.yaml"),
            "--config-file", os.path.join(REPO, f"configs/trainers/{METHODS[method]}.yaml"),
            "MODEL.BACKBONE.PATH", weights, "INPUT.SIZE", f"({size}, {size})", "DATALOADER.NUM_WORKERS", "0",
            "DATASET.SUBSAMPLE_CLASSES", subsample, "USE_CUDA", str(device == "cuda"),
            "TRAINER.COOP.PREC", "fp32"]
    return train.main(train.build_parser().parse_args(argv))


def set_cache(trainer, on, folder):
    trainer.cfg.defrost()
    trainer.cfg.TEST.FEATURE_CACHE = on
    trainer.cfg.TEST.FEATURE_CACHE_DIR = folder
    trainer.cfg.freeze()


def evaluation_phase(trainers, seeds, on, folder, device):
    """Seconds of every seed's evaluation of every (method, split) trainer."""
    total = 0.0
    for _ in range(seeds):
        for trainer in trainers:
            set_cache(trainer, on, folder)
            trainer.weights_digests = {}  # a new run hashes its weights again
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            trainer.test()
            if device == "cuda":
                torch.cuda.synchronize()
            total += time.perf_counter() - start
    return total


def tower_seconds_per_image(trainer, device):
    """Seconds per test image of the image tower alone (the part the cache saves)."""
    trainer.set_model_mode("eval")
    with torch.no_grad():
        batches = [trainer.parse_batch_test(batch)[0] for batch in trainer.test_loader]
        trainer.image_features(batches[0])  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for images in batches:
            trainer.image_features(images)
        if device == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / sum(len(images) for images in batches)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200, help="test images of each split (base, new), about")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--shape", default="vit-b16", choices=SHAPES, help="tiny: the smallest mode (tests)")
    parser.add_argument("--project", type=int, default=25000, help="test images of the projected split")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as work:
        per_class = max(4, round(args.images / (N_CLASSES // 2) / TEST_SHARE))
        make_dataset("OxfordPets", os.path.join(work, "data"), num_classes=N_CLASSES, images_per_class=per_class,
                     seed=0, image_size=(64, 64))
        model = student_clip(args.shape)
        weights = os.path.join(work, "clip.pt")
        torch.save(model.state_dict(), weights)
        size = model.visual.input_resolution
        del model
        trainers = [build_trainer(os.path.join(work, "data"), weights, os.path.join(work, f"{m}-{s}"), m, s,
                                  args.device, size) for m in METHODS for s in ("base", "new")]
        n_images = len(trainers[0].test_loader.dataset)
        tower = tower_seconds_per_image(trainers[0], args.device)
        ratios, without_times, with_times = [], [], []
        for repeat in range(args.repeats):
            folder = os.path.join(work, f"cache{repeat}")
            without = evaluation_phase(trainers, args.seeds, False, folder, args.device)
            cached = evaluation_phase(trainers, args.seeds, True, folder, args.device)
            without_times.append(without)
            with_times.append(cached)
            ratios.append(without / cached)
    evaluations = args.seeds * len(trainers)
    print(f"{args.device} threads={args.threads} fp32 {args.shape} CLIP (random weights), {len(METHODS)} methods x "
          f"{args.seeds} seeds x base+new = {evaluations} evaluations of {n_images} test images each")
    for repeat, (a, b, r) in enumerate(zip(without_times, with_times, ratios)):
        print(f"repeat {repeat + 1}: without cache {a:.2f} s, with cache {b:.2f} s, ratio {r:.2f}")
    spread = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
    print(f"evaluation phase ratio without / with cache: {statistics.mean(ratios):.2f} ± {spread:.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
    # projection: an evaluation costs a fixed part f (class text, keys) plus e per image through the image
    # tower, or r per image read from the cache; the cached phase computes each split once (2 splits)
    u = min(without_times) / evaluations  # one uncached evaluation
    read = (min(with_times) - 2 * u) / (evaluations - 2)  # one evaluation from the cache
    f = max(0.0, u - n_images * tower)
    r = max(0.0, (read - f) / n_images)
    u_big, read_big = f + args.project * tower, f + args.project * r
    projected = evaluations * u_big / (2 * u_big + (evaluations - 2) * read_big)
    print(f"per evaluation: fixed {f:.3f} s, image tower {1000 * tower:.2f} ms/image, cache read {1000 * r:.3f} ms/image "
          "(the cache's own fixed costs counted per image: the projection is a lower bound)")
    print(f"projected for a {args.project}-image test split: evaluation phase ratio at least {projected:.2f} "
          f"(limit {evaluations / 2:.0f}), at least {100 * (1 - 1 / projected):.0f}% of its time saved")


if __name__ == "__main__":
    main()
