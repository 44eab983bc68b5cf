"""Per-image cost of RLCF captioning TTA against ``steps x one K-beam generation`` (random weights).

The captioner is the reference's mapper (512 -> 40 x 768, 8 layers) on a random OPT with
OPT-125m's layers (768 wide, 12 layers, 12 heads, FFN 3072), and the reward CLIP has ViT-L/14's
shape. The vocabulary is the bench tokenizer's (tools.tiny_opt, 400 tokens; OPT-125m has 50,272),
so the LM head's share of the time is left out. A random OPT rarely emits "\\n": every candidate runs
to the 50 new tokens, the longest a caption can be. ``--shape tiny`` is the smallest mode.

usage: python bench/bench_caption_tta.py [--shape opt125m|tiny] [--images 2] [--steps 4] [--sample_k 6] [--threads 2]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.random_clips import teacher_clip  # noqa: E402
from tools.tiny_opt import tiny_opt, tiny_opt_tokenizer  # noqa: E402
from tta.captioning.adapt import CaptionAdapter  # noqa: E402
from tta.captioning.model import Captioner  # noqa: E402
from tta.core.models import peak_memory_line  # noqa: E402
from tta.core.rewards import CLIPReward  # noqa: E402

SMALLEST = ["--shape", "tiny", "--images", "1", "--steps", "1", "--sample_k", "2"]


def build(shape, steps, k, device):
    tokenizer = tiny_opt_tokenizer()
    if shape == "tiny":
        llm, sizes = tiny_opt(len(tokenizer)), dict(clip_dim=32, prefix_length=4, clip_length=4, layers=2, heads=2)
    else:
        llm = tiny_opt(len(tokenizer), width=768, layers=12, heads=12, max_positions=2050, init_std=0.02)
        sizes = dict(clip_dim=512)
    captioner = Captioner(llm, **sizes).to(device).eval()
    reward = CLIPReward([teacher_clip(shape).to(device)], sample_k=k, process_batch=False)
    return CaptionAdapter(captioner, tokenizer, reward, lr=2e-6, steps=steps, sample_k=k), sizes["clip_dim"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", choices=("opt125m", "tiny"), default="opt125m")
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--sample_k", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    adapter, clip_dim = build(args.shape, args.steps, args.sample_k, device)
    size = adapter.reward.models[0].visual.input_resolution
    embedding = torch.nn.functional.normalize(torch.randn(1, clip_dim, device=device), dim=-1)
    image = torch.randn(1, 3, size, size, device=device)
    adapter.candidates(embedding)  # warm-up

    def timed(fn):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.time() - start

    with torch.no_grad():
        generation = sum(timed(lambda: adapter.candidates(embedding)) for _ in range(args.images)) / args.images
    tta = sum(timed(lambda: adapter.caption(embedding, image)) for _ in range(args.images)) / args.images
    print(f"shape {args.shape}, K {args.sample_k}, {args.steps} steps, {device.type}, {args.threads} threads")
    print(f"one K-beam generation: {generation:.3f} s")
    print(f"TTA per image ({args.steps} steps + beam 5): {tta:.3f} s")
    print(f"ratio TTA / (steps x generation): {tta / (args.steps * generation):.2f}")
    print(peak_memory_line(device))


if __name__ == "__main__":
    main()
