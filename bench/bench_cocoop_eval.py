"""Evaluation cost of TextRefiner on CoCoOp against CoCoOp itself, at ViT-B/16 shape (random weights).

CoCoOp's class text depends on the image, so TextRefiner cannot refine it once per evaluation:
every test batch runs CoCoOp's per-image text and refines its B x C rows. This prints the time of
one evaluation batch for both (measured alternately in one run, best of the repeats), their
ratio, and the time of the refinement alone (cache read + aggregation of the B x C rows).

usage: python bench/bench_cocoop_eval.py [--threads 2] [--classes 50] [--batch 8] [--repeats 3] [--device cpu]
                                        [--shape vit-b16|tiny]
"""
import argparse
import os
import sys
import time
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.random_clips import SHAPES, student_clip  # noqa: E402
from engine.config import CfgNode  # noqa: E402
from trainers.cocoop import CoCoOpCLIP  # noqa: E402
from trainers.prompt_trainer import PromptTrainer  # noqa: E402
from trainers.shared.alignment import FeatureAlignment  # noqa: E402
from trainers.textrefiner.cache import LocalCache  # noqa: E402
from trainers.textrefiner.cocoop_host import TextRefinerCoCoOp  # noqa: E402
from trainers.textrefiner.refiner import TextRefinerHead  # noqa: E402

WORDS = ["cat", "dog", "husky", "tabby", "beagle", "sphynx", "boxer", "pug", "shiba inu", "maine coon"]
SMALLEST = ["--shape", "tiny", "--classes", "4", "--batch", "2", "--repeats", "1"]


def build(clip_model, n_classes, device):
    prompt_cfg = CfgNode(dict(N_CTX=4, CTX_INIT="a photo of a", PREC="fp32"))
    classnames = [f"{WORDS[i % len(WORDS)]} {i}" for i in range(n_classes)]
    size, dim = clip_model.visual.input_resolution, clip_model.visual.output_dim
    model = CoCoOpCLIP(prompt_cfg, (size, size), classnames, clip_model).to(device).eval()
    head = TextRefinerHead(FeatureAlignment(dim, dim).to(device).eval(), LocalCache(dim).to(device).eval())
    refiner = types.SimpleNamespace(model=model, head=head)  # what TextRefinerCoCoOp.model_inference reads (with the two methods below)
    refiner.image_features = types.MethodType(PromptTrainer.image_features, refiner)
    refiner.logits_from_features = types.MethodType(TextRefinerCoCoOp.logits_from_features, refiner)
    return model, refiner


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", default="vit-b16", choices=SHAPES, help="tiny: the smallest mode (tests)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model, refiner = build(student_clip(args.shape), args.classes, device)
    size = model.image_encoder.input_resolution
    images = torch.randn(args.batch, 3, size, size, device=device)
    with torch.no_grad():
        text = model.instance_text_features(refiner.image_features(images))  # [B, C, D]
    runs = {
        "CoCoOp": lambda: model(images),
        "TextRefiner on CoCoOp": lambda: TextRefinerCoCoOp.model_inference(refiner, images),
        "refinement alone": lambda: refiner.head.refine(text),
    }
    times = {name: [] for name in runs}
    with torch.no_grad():
        for fn in runs.values():
            fn()  # warm-up
        for _ in range(args.repeats):  # alternate, so load changes hit both alike
            for name, fn in runs.items():
                sync(device)
                start = time.perf_counter()
                fn()
                sync(device)
                times[name].append(time.perf_counter() - start)
    best = {name: min(values) for name, values in times.items()}
    print(f"{args.device} threads={args.threads} fp32 {args.shape} CLIP (random weights), {args.classes} classes, "
          f"batch {args.batch}")
    for name, value in best.items():
        print(f"eval batch: {name} {value:.3f} s")
    print(f"ratio TextRefiner on CoCoOp / CoCoOp: {best['TextRefiner on CoCoOp'] / best['CoCoOp']:.3f} "
          f"(CoCoOp + refinement alone: {(best['CoCoOp'] + best['refinement alone']) / best['CoCoOp']:.4f})")


if __name__ == "__main__":
    main()
