"""TextRefiner speed at ViT-B/16 shape (random weights): training step and evaluation throughput.

Measures in one run, on the same machine:
- a training step (batch 8): ours (plugin.refined_ce, the step TextRefiner on CoOp
  trains with) vs the reference's computation (bench/reference_style.py);
- evaluation images/s (batch 32): the bare CLIP image encoder, ours with --classes and
  --many-classes classes, and the reference's computation with --classes.

usage: python bench/bench_textrefiner.py [--threads 2] [--classes 50] [--many-classes 1000] [--steps 3]
                                         [--eval-batches 2] [--skip-reference] [--shape vit-b16|tiny]
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools.random_clips import SHAPES, student_clip  # noqa: E402
from bench.reference_style import cache_write_loop, text_full_length, visual_all_layers  # noqa: E402
from engine.config import CfgNode  # noqa: E402
from trainers.coop import CustomCLIP  # noqa: E402
from trainers.shared.alignment import FeatureAlignment  # noqa: E402
from trainers.textrefiner.cache import LocalCache  # noqa: E402
from trainers.textrefiner.plugin import refined_ce  # noqa: E402
from trainers.textrefiner.refiner import TextRefinerHead  # noqa: E402

WORDS = ["cat", "dog", "husky", "tabby", "beagle", "sphynx", "boxer", "pug", "shiba inu", "maine coon"]
SMALLEST = ["--shape", "tiny", "--classes", "4", "--many-classes", "8", "--steps", "1", "--eval-batches", "1"]


def build(clip_model, n_classes):
    """TextRefiner on CoOp's model (CustomCLIP + mid_image_trans), its cache and optimizer, and the
    head and TRAINER.TF weights that ``refined_ce`` reads."""
    prompt_cfg = CfgNode(dict(N_CTX=4, CSC=False, CTX_INIT="a photo of a", CLASS_TOKEN_POSITION="end"))
    classnames = [f"{WORDS[i % len(WORDS)]} {i}" for i in range(n_classes)]
    size = clip_model.visual.input_resolution
    dim = clip_model.visual.output_dim
    model = CustomCLIP(prompt_cfg, (size, size), classnames, clip_model)
    model.mid_image_trans = FeatureAlignment(dim, dim)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(("prompt_learner.", "mid_image_trans.")))
    memory = LocalCache(dim=dim, size=25, alpha=0.2, momentum=0.8)
    params = [p for m in (model, memory) for p in m.parameters() if p.requires_grad]
    optim = torch.optim.SGD(params, lr=0.002, momentum=0.9, weight_decay=5e-4)
    head = TextRefinerHead(model.mid_image_trans, memory)
    tf = CfgNode(dict(BALANCE=50.0, DISTILL=20.0))
    return model, memory, optim, (head, tf)


def our_step(model, head, tf, memory, optim, image, label):
    model.train()
    memory.train()
    loss, _, _, _ = refined_ce(head, model, image, label, model.text_features(), tf)
    optim.zero_grad()
    loss.backward()
    optim.step()


def reference_step(model, memory, optim, image, label):
    model.train()
    memory.train()
    global_feat, layers = visual_all_layers(model.image_encoder, image)
    tokens, cls_attn = layers[-1]
    b, length, d = tokens.shape
    text = text_full_length(model.text_encoder, model.prompt_learner(), model.tokenized_prompts)
    text = text / text.norm(dim=-1, keepdim=True)
    v = global_feat / global_feat.norm(dim=-1, keepdim=True)
    z = model.mid_image_trans(tokens.reshape(-1, d)).reshape(b, length, d)
    _, idx = torch.topk(cls_attn, 5, dim=-1)
    idx = torch.cat([torch.zeros(b, 1, dtype=torch.int64), idx + 1], dim=1)
    local = torch.cat([torch.gather(z, 1, idx.unsqueeze(-1).expand(b, 6, d)), z.mean(1, keepdim=True)], 1)
    refined = memory.aggregate(text, memory.read(text))
    memory.set_cache(cache_write_loop(memory.get_cache(), z, 0.8))
    scale = model.logit_scale.exp()
    loss = (F.cross_entropy(scale * v @ refined.t(), label)
            + F.cross_entropy(scale * local.reshape(-1, d) @ text.t(), label.repeat_interleave(7)) / 50
            + 20 * F.l1_loss(F.normalize(refined, dim=-1), text))
    optim.zero_grad()
    loss.backward()
    optim.step()


def timed(fn, repeats):
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


@torch.no_grad()
def eval_bare(model, images):
    model.image_encoder(images)


@torch.no_grad()
def refined_text(model, memory):
    return memory.refine(model.text_features())


@torch.no_grad()
def eval_ours(model, refined, images):
    # the refined text is computed once per evaluation (timed separately)
    feats = model.image_encoder(images)
    feats = feats / feats.norm(dim=-1, keepdim=True)
    return model.logit_scale.exp() * feats @ refined.t()


@torch.no_grad()
def eval_reference(model, memory, images):
    global_feat, _ = visual_all_layers(model.image_encoder, images)
    text = text_full_length(model.text_encoder, model.prompt_learner(), model.tokenized_prompts)
    text = text / text.norm(dim=-1, keepdim=True)
    refined = memory.aggregate(text, memory.read(text))
    v = global_feat / global_feat.norm(dim=-1, keepdim=True)
    return model.logit_scale.exp() * v @ refined.t()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--many-classes", type=int, default=1000, help="the second class count timed in evaluation")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--eval-batches", type=int, default=2)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--shape", default="vit-b16", choices=SHAPES, help="tiny: the smallest mode (tests)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    clip_model = student_clip(args.shape)
    size = clip_model.visual.input_resolution
    print(f"threads={args.threads} classes={args.classes} fp32 {args.shape} CLIP (random weights)")

    model, memory, optim, (head, tf) = build(clip_model, args.classes)
    image, label = torch.randn(8, 3, size, size), torch.randint(0, args.classes, (8,))
    ours = timed(lambda: our_step(model, head, tf, memory, optim, image, label), args.steps)
    print(f"train step, batch 8: ours {ours:.2f} s")
    if not args.skip_reference:
        ref = timed(lambda: reference_step(model, memory, optim, image, label), args.steps)
        print(f"train step, batch 8: reference computation {ref:.2f} s -> speed-up x{ref / ours:.2f}")

    images = torch.randn(32, 3, size, size)
    model.eval()
    memory.eval()
    bare = 32 / timed(lambda: eval_bare(model, images), args.eval_batches)
    print(f"eval, batch 32: bare CLIP image encoder {bare:.2f} img/s")
    for n_classes in (args.classes, args.many_classes):
        m, mem, _, _ = build(clip_model, n_classes)
        m.eval()
        mem.eval()
        once = timed(lambda: refined_text(m, mem), 1)
        refined = refined_text(m, mem)
        speed = 32 / timed(lambda: eval_ours(m, refined, images), args.eval_batches)
        print(f"eval, batch 32, {n_classes} classes: ours {speed:.2f} img/s ({speed / bare:.1%} of bare encoder); "
              f"refined text once per evaluation: {once:.2f} s")
    if not args.skip_reference:
        speed = 32 / timed(lambda: eval_reference(model, memory, images), args.eval_batches)
        print(f"eval, batch 32, {args.classes} classes: reference computation {speed:.2f} img/s")


if __name__ == "__main__":
    main()
