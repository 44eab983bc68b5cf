"""Per-query cost of RLCF retrieval at real shapes (random weights), against its floor.

The floor of one query is what the method cannot avoid: ``steps x (forward + backward of the
tuned tower on the one query input) + the gallery product`` (q @ gallery^T). Measured per query:
the whole QueryTuner call (the steps with their top-K, reward and AdamW update, the final score
row, the reset). The gallery embeddings (policy and reward) are computed once per set and cached,
so they are not part of a query. Cases:
- image2text: ViT-B/16 image tower tuned, a 25k-caption gallery (COCO's), ViT-L/14-wide reward
- text2image: the text side tuned, a 5k-image gallery (COCO's)
Printed per case: the floor's parts, the AdamW step alone, seconds per query, and the ratio
(mean +- std over --repeats), peak resident memory.

usage: python bench/bench_retrieval.py [--threads 2] [--shape vit-b16|tiny] [--steps 8] [--queries 2]
                                       [--repeats 3] [--captions 25000] [--images 5000] [--device cpu|cuda]
"""
import argparse
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import clip  # noqa: E402
from tools.random_clips import SHAPES, student_clip  # noqa: E402
from tta.core.rewards import CLIPReward  # noqa: E402
from tta.retrieval.adapt import QueryTuner, tuned_parameters  # noqa: E402
from tta.retrieval.objectives import RewardObjective  # noqa: E402

SMALLEST = ["--shape", "tiny", "--steps", "2", "--queries", "1", "--repeats", "1", "--captions", "50",
            "--images", "10", "--device", "cpu"]
CAPTION = "a man riding a brown horse along the beach next to the ocean"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, n=1):
    sync(device)
    start = time.perf_counter()
    for _ in range(n):
        fn()
    sync(device)
    return (time.perf_counter() - start) / n


def unit_rows(n, d, device, seed):
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed)).to(device)
    return x / x.norm(dim=-1, keepdim=True)


def peak_gb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1024**3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run_case(direction, args, device):
    model = student_clip(args.shape).to(device)
    size = model.visual.input_resolution
    dim = model.text_projection.shape[1]
    n_gallery = args.captions if direction == "image2text" else args.images
    gallery = unit_rows(n_gallery, dim, device, 1)  # [G, D] the policy's cached gallery
    reward_dim = 48 if args.shape == "tiny" else 768
    reward = CLIPReward([], None, 2.5, 20 if direction == "image2text" else 12)
    reward.sample_k = min(reward.sample_k, n_gallery)
    reward.set_candidates([unit_rows(n_gallery, reward_dim, device, 2)])
    reward_query = [unit_rows(1, reward_dim, device, 3)]
    if direction == "image2text":
        query = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(4)).to(device)
        encode = model.encode_image
    else:
        query = clip.tokenize([CAPTION]).to(device)
        encode = model.encode_text
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, init_scale=1000) if amp else None
    tuner = QueryTuner(model, direction, gallery, RewardObjective(reward), args.steps, 1e-6, 5e-4, scaler, amp)
    params = [p for p in tuned_parameters(model, direction).values() if p.requires_grad]  # the floor's backward
    updated = tuner.optimizer.param_groups[0]["params"]  # what AdamW updates (text2image: the query's token rows)

    def autocast():
        return torch.autocast(device_type=device.type, enabled=amp)

    def fwd_bwd():
        with autocast():
            out = encode(query).float().sum()
        out.backward()
        for p in params:
            p.grad = None

    def product():
        with torch.no_grad(), autocast():
            (encode_out @ gallery.t()).float()

    def adamw():
        tuner.optimizer.step()

    with torch.no_grad(), autocast():
        encode_out = torch.nn.functional.normalize(encode(query).float(), dim=-1)
    fwd_bwd()
    tuner(query, reward_query)  # warm-up (allocations, kernels)
    figures = []
    for _ in range(args.repeats):
        f = timed(fwd_bwd, device, args.queries)
        g = timed(product, device, 10)
        for p in updated:
            p.grad = torch.zeros_like(p)
        a = timed(adamw, device, 1)  # one AdamW step on zero gradients: its cost, not its effect
        tuner.reset()
        q = timed(lambda: tuner(query, reward_query), device, args.queries)
        floor = args.steps * f + g
        figures.append((f, g, a, q, q / floor))
    mean = [statistics.mean(x) for x in zip(*figures)]
    std = statistics.stdev([x[4] for x in figures]) if len(figures) > 1 else 0.0
    f, g, a, q, ratio = mean
    print(f"{direction}: gallery {n_gallery}, {args.steps} steps, {sum(p.numel() for p in updated) / 1e6:.1f} M tuned "
          f"parameters: fwd+bwd {f:.4f} s, gallery product {g * 1e3:.2f} ms, AdamW step {a:.4f} s; "
          f"per query {q:.3f} s; floor {args.steps * f + g:.3f} s; ratio {ratio:.2f} +- {std:.2f} "
          f"(over {args.repeats} repeats); with the AdamW steps in the floor "
          f"{q / (args.steps * (f + a) + g):.2f}; peak memory {peak_gb(device):.2f} GB", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shape", default="vit-b16", choices=SHAPES, help="tiny: the smallest mode (tests)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--queries", type=int, default=2, help="timed queries per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--captions", type=int, default=25000, help="image2text gallery (COCO: 25,010)")
    parser.add_argument("--images", type=int, default=5000, help="text2image gallery (COCO: 5,000)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--directions", nargs="+", default=["image2text", "text2image"],
                        choices=["image2text", "text2image"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {device}, {args.threads} threads, shape {args.shape}")
    for direction in args.directions:
        run_case(direction, args, device)


if __name__ == "__main__":
    main()
