"""Linear-probe CLIP on one data set and number of shots, over seeds (CoOp's lpclip, one command).

    python -m lpclip.linear_probe --root DATA --dataset-config-file configs/datasets/oxford_pets.yaml \
        --config-file configs/trainers/CoOp/rn50_val.yaml --num-shots 16 --seeds 1 2 3 \
        --output-dir output/lpclip/oxford_pets [KEY VALUE ...]

Per seed: the few-shot train and val sets of the data set (the same K-shot sample, val
min(K, 4) per class, that the trainers see with that seed), features of the frozen image
tower, logistic regression with C searched on val, accuracy on the full test set. Features
are cached under OUTPUT/features/<backbone>/ (test once; train/val per shots and seed), so a
rerun fits again without extracting. The run log and results.json go to
OUTPUT/<backbone>_<K>shots/.
"""
import argparse
import os
import sys

import numpy as np
import torch

import clip
import datasets  # noqa: F401  (registers the data sets)
from engine.config import get_cfg_default
from engine.data.datasets import build_dataset
from engine.utils import set_random_seed, setup_logger
from engine.utils.faults import run_command
from engine.utils.logger import restore_stdout
from engine.utils.tools import write_json_atomic
from engine.step import resolve_precision
from trainers.clip_backbone import load_clip
from trainers.config import extend_cfg

from .features import FeatureCache, backbone_tag
from .search import accuracy, search_c


def build_parser():
    parser = argparse.ArgumentParser(description="Linear-probe CLIP (few-shot logistic regression on image features).")
    parser.add_argument("--root", required=True, help="path to the data sets")
    parser.add_argument("--dataset-config-file", required=True, help="configs/datasets/<dataset>.yaml")
    parser.add_argument("--config-file", default="", help="backbone, input and loader settings (e.g. CoOp/rn50_val.yaml)")
    parser.add_argument("--output-dir", required=True, help="folder for the feature cache and the runs")
    parser.add_argument("--num-shots", type=int, required=True, help="images per class (1, 2, 4, 8, 16)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="few-shot samples (default 1 2 3)")
    parser.add_argument("--num-step", type=int, default=8, help="rounds of the C bisection after the grid (CoOp: 8)")
    parser.add_argument("--backbone", default="", help="CLIP backbone name (overrides the config)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config KEY VALUE pairs")
    return parser


def setup_cfg(args):
    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.merge_from_file(args.dataset_config_file)
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.DATASET.ROOT = args.root
    cfg.OUTPUT_DIR = args.output_dir
    if args.backbone:
        cfg.MODEL.BACKBONE.NAME = args.backbone
    cfg.merge_from_list(args.opts or [])
    if args.num_shots < 1:
        raise ValueError(f"--num-shots must be at least 1, got {args.num_shots}")
    cfg.DATASET.NUM_SHOTS = args.num_shots
    return cfg


def seed_dataset(cfg, seed):
    """The data set with the few-shot sample of ``seed``."""
    cfg = cfg.clone()
    cfg.SEED = seed
    set_random_seed(seed)
    return build_dataset(cfg)


def _same_images(a, b):
    return len(a) == len(b) and all(x.impath == y.impath for x, y in zip(a, b))


def image_encoder_builder(cfg, precision):
    def build():
        device = _device(cfg)
        return load_clip(cfg, precision, device).visual.eval(), device

    return build


def _device(cfg):
    return torch.device("cuda" if cfg.USE_CUDA and torch.cuda.is_available() else "cpu")


def run(args):
    cfg = setup_cfg(args)
    tag = backbone_tag(cfg)
    shots = cfg.DATASET.NUM_SHOTS
    run_dir = os.path.join(cfg.OUTPUT_DIR, f"{tag}_{shots}shots")
    setup_logger(run_dir)
    try:
        print(f"Linear probe: {cfg.DATASET.NAME}, {shots} shots, seeds {args.seeds}, backbone {tag}")
        cache_dir = os.path.join(cfg.OUTPUT_DIR, "features", tag)
        # fp16 on CUDA as CoOp's extractor (clip.load on cuda); fp32 elsewhere
        precision = resolve_precision("fp16", _device(cfg))
        weights = clip.resolve_model_file(cfg.MODEL.BACKBONE.NAME, cfg.MODEL.BACKBONE.PATH or None)
        cache = FeatureCache(cache_dir, image_encoder_builder(cfg, precision), weights, precision)
        results = {}
        test = None
        for seed in args.seeds:
            dataset = seed_dataset(cfg, seed)
            if not dataset.val:
                raise ValueError(f"{cfg.DATASET.NAME} has no val split: the linear probe searches C on val")
            if test is None:
                test = cache.get(cfg, "test", dataset.test)
            train = cache.get(cfg, f"shot_{shots}-seed_{seed}/train", dataset.train_x)
            if _same_images(dataset.val, dataset.test):
                val = test  # ImageNet: val is the test set (as in CoOp); extracted once
            else:
                val = cache.get(cfg, f"shot_{shots}-seed_{seed}/val", dataset.val)
            c, clf, val_acc = search_c(train, val, args.num_step)
            test_acc = 100 * accuracy(clf, *test)
            results[seed] = {"C": c, "val_accuracy": 100 * val_acc, "test_accuracy": test_acc}
            print(f"seed {seed}: C = {c:.6g}, val accuracy {100 * val_acc:.2f}%, test accuracy {test_acc:.2f}%")
        accs = [r["test_accuracy"] for r in results.values()]
        summary = {"dataset": cfg.DATASET.NAME, "shots": shots, "backbone": tag, "seeds": results,
                   "mean": float(np.mean(accs)), "std": float(np.std(accs))}
        write_json_atomic(summary, os.path.join(run_dir, "results.json"), indent=2)
        print("=> result")
        print(f"* accuracy: {summary['mean']:.2f}% +- {summary['std']:.2f}%")
        return summary
    finally:
        restore_stdout()


def main(argv=None):
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(run_command(main))  # a user error: its message alone (TEXTREFINER_DEBUG=1 for the traceback)
