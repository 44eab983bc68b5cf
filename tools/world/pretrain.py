"""The generated world's CLIP: shipped with the project, or pretrained contrastively here (its "web pretraining").

    python -m tools.world.pretrain                  # the default world CLIP, from the shipped file
    python -m tools.world.pretrain --pretrain       # pretrain the default settings here (~13 min of CPU)
    python -m tools.world.pretrain --steps 1500     # other settings: pretrained here
    python -m tools.world.pretrain --pretrain --force --write-shipped tools/world/world_clip.safetensors
                                                    # regenerate the shipped file
    python -m tools.world.pretrain --large          # the large world CLIP (reward model, teacher), shipped too

Gives an OpenAI-layout state dict file that ``clip.build_model`` and every trainer read
unchanged (``MODEL.BACKBONE.PATH FILE``) and prints the zero-shot top-1 ("a photo of a {}.") on
each world data set's test split when it makes one. The default world CLIP is expanded from
the compact file shipped beside this module (tools/world/world_clip.safetensors, see
compact.py), so every machine starts from the same bytes; a pretraining run gives what this
machine's float kernels give. Files are cached: without --out they go to
$TEXTREFINER_WORLD_CACHE (default ~/.cache/textrefiner/world), named by the shipped file's digest
or by the settings, and a second call returns at once. The path is the last line printed.

Model: ViT image tower (32 px, patch 8, width 128, 2 blocks) and CLIP's text tower (width 64,
2 blocks, CLIP's 49,408-token BPE vocabulary via ``clip.tokenize``), embedding 64. Training:
AdamW, warm-up then cosine, learnable temperature; captions identical within a batch count as
positives of each other (soft targets), and each batch holds two colours only (see
``captions.pretraining_batch``).
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import clip
from engine.utils.tools import atomic_write
from clip.model import encode_text_embeddings
from tools.tiny_clip import tiny_clip_model

from . import compact
from .captions import pretraining_batch, vocabulary
from .data import DATASETS, generate
from .render import IMAGE_SIZE

WORLD_VERSION = 1  # bump when rendering or captions change, so cached models are not reused
CACHE_ENV = "TEXTREFINER_WORLD_CACHE"
PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's, as in the trainer configs
PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)
ZERO_SHOT_TEMPLATE = "a photo of a {}."
DEFAULTS = dict(steps=3000, batch_size=128, lr=2e-3, warmup=150, weight_decay=0.05, seed=0,
                vision_layers=2, vision_width=128, text_layers=2, text_width=64, embed_dim=64)
# The large world CLIP: one more vision block and longer pretraining; the reward model of
# test-time adaptation and the teacher of distillation in the world (a student learns from a
# stronger model, as RLCF's CLIP-L/14 reward and PromptKD's ViT-L/14 teacher do on real data).
LARGE = dict(DEFAULTS, vision_layers=3, steps=7000)
_HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED_FILE = os.path.join(_HERE, "world_clip.safetensors")
SHIPPED_NAME = "tools/world/world_clip.safetensors"  # as docs/WORLD.md and the messages name it
LARGE_SHIPPED_FILE = os.path.join(_HERE, "world_clip_large.safetensors")
LARGE_SHIPPED_NAME = "tools/world/world_clip_large.safetensors"


def default_cache_dir():
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "textrefiner", "world")


def cached_path(settings):
    """The cache file of a settings dict: world_clip_<hash of settings and world version>.pt."""
    key = json.dumps({"world": WORLD_VERSION, **settings}, sort_keys=True)
    return os.path.join(default_cache_dir(), f"world_clip_{hashlib.sha1(key.encode()).hexdigest()[:12]}.pt")


def to_tensor(images):
    """uint8 [B, H, W, 3] -> normalised float [B, 3, H, W], as the trainers' transforms give."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def shipped_cache_path(digest):
    """The cache file of the shipped world CLIP, expanded: named by its digest."""
    return os.path.join(default_cache_dir(), f"world_clip_shipped_{digest[:12]}.pt")


def tokenize_cached(texts, cache):
    """clip.tokenize(texts) [N, 77], each distinct caption tokenized once (captions repeat a lot)."""
    for text in texts:
        if text not in cache:
            cache[text] = clip.tokenize(text)[0]
    return torch.stack([cache[text] for text in texts])


def world_token_ids():
    """The token ids [V] (sorted) that world captions and prompts use: padding, SOT, EOT and the vocabulary's."""
    ids = {0, clip.tokenize("")[0, 0].item(), clip.tokenize("")[0, 1].item()}
    for word in vocabulary():
        ids.update(clip.encode(word))
    return torch.tensor(sorted(ids))


class WorldTokens(torch.nn.Module):
    """The rows of CLIP's token embedding that world captions use, trained in place of the whole
    49,408-row table (an optimizer step over the full table would cost more than the model), and
    written back into it by ``write_back``."""

    def __init__(self, token_embedding):
        super().__init__()
        ids = world_token_ids()
        index = torch.full((token_embedding.num_embeddings,), -1, dtype=torch.long)
        index[ids] = torch.arange(len(ids))
        self.register_buffer("ids", ids)
        self.register_buffer("index", index)  # token id -> row, -1 for tokens the world never uses
        self.rows = torch.nn.Parameter(token_embedding.weight.detach()[ids].clone())  # [V_world, width]

    def forward(self, tokens):
        """Token ids [N, ctx] -> embeddings [N, ctx, width]."""
        rows = self.index[tokens]
        if (rows < 0).any():
            raise ValueError("a caption uses a token outside the world's vocabulary (captions.vocabulary)")
        return self.rows[rows]

    @torch.no_grad()
    def write_back(self, token_embedding):
        token_embedding.weight[self.ids] = self.rows


def contrastive_loss(model, images, texts, token_cache=None, world_tokens=None):
    """Symmetric CLIP loss with soft targets: captions equal as strings are positives.

    ``world_tokens`` (WorldTokens) replaces the model's token embedding when given."""
    tokens = tokenize_cached(texts, {} if token_cache is None else token_cache)
    image_features = F.normalize(model.encode_image(images), dim=-1)  # [B, D]
    embeddings = model.token_embedding(tokens) if world_tokens is None else world_tokens(tokens)
    text_features = F.normalize(encode_text_embeddings(model, embeddings, tokens), dim=-1)  # [B, D]
    logits = model.logit_scale.exp() * image_features @ text_features.t()  # [B, B]
    ids = {t: i for i, t in enumerate(texts)}
    key = torch.tensor([ids[t] for t in texts])
    same = (key[:, None] == key[None, :]).float()
    targets = same / same.sum(1, keepdim=True)  # symmetric, so one target serves both directions
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


def _param_groups(params, weight_decay):
    """Weight decay on matrices only (not on gains, biases or the temperature)."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build(settings):
    return tiny_clip_model(
        "vit", seed=settings["seed"], image_size=IMAGE_SIZE, embed_dim=settings["embed_dim"],
        vision_width=settings["vision_width"], vision_layers=settings["vision_layers"], patch_size=8,
        text_width=settings["text_width"], text_layers=settings["text_layers"],
    )


def pretrain(settings, log=print, print_every=100, eval_every=0):
    """Train a world CLIP with ``settings`` (see DEFAULTS); returns the model (eval mode).

    ``eval_every`` > 0 prints the zero-shot report every so many steps (to watch it learn)."""
    torch.manual_seed(settings["seed"])
    rng = np.random.default_rng(settings["seed"])
    model = build(settings).train()
    model.token_embedding.weight.requires_grad_(False)
    world_tokens = WorldTokens(model.token_embedding)
    steps = settings["steps"]
    params = [p for p in model.parameters() if p.requires_grad] + [world_tokens.rows]
    optimizer = torch.optim.AdamW(_param_groups(params, settings["weight_decay"]), lr=settings["lr"])

    def lr_at(step):
        if step < settings["warmup"]:
            return (step + 1) / settings["warmup"]
        progress = (step - settings["warmup"]) / max(1, steps - settings["warmup"])
        return 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    token_cache = {}
    start = time.time()
    for step in range(steps):
        images, texts = pretraining_batch(rng, settings["batch_size"])
        loss = contrastive_loss(model, to_tensor(images), texts, token_cache, world_tokens)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if (step + 1) % print_every == 0 or step + 1 == steps:
            elapsed = time.time() - start
            eta = elapsed / (step + 1) * (steps - step - 1)
            log(f"pretrain step [{step + 1}/{steps}] loss {loss.item():.3f} "
                f"logit_scale {model.logit_scale.exp().item():.1f} {(step + 1) / elapsed:.1f} steps/s eta {eta:.0f}s")
        if eval_every and (step + 1) % eval_every == 0 and step + 1 < steps:
            world_tokens.write_back(model.token_embedding)
            zero_shot_report(model.eval(), log=log)
            model.train()
    world_tokens.write_back(model.token_embedding)
    with torch.no_grad():  # the rows training never touched: the same on every machine (compact.py)
        model.token_embedding.weight.copy_(
            compact.canonical_token_embedding(model.token_embedding.weight, world_tokens.ids, settings["seed"]))
    model.token_embedding.weight.requires_grad_(True)
    return model.eval()


@torch.no_grad()
def zero_shot_accuracy(model, dataset, split="test", seed=0, template=ZERO_SHOT_TEMPLATE):
    """Top-1 (%) of ``template`` prompts on a world data set's split, rendered in memory (the
    same pixels as the written files)."""
    prompts = [template.format(name) for name in dataset.classnames]
    text = F.normalize(model.encode_text(clip.tokenize(prompts)), dim=-1)  # [C, D]
    labels, images = [], []
    for label, _, pixels in generate(dataset, split, seed):
        labels.append(label)
        images.append(pixels)
    correct = 0
    for i in range(0, len(images), 500):
        feats = F.normalize(model.encode_image(to_tensor(np.stack(images[i:i + 500]))), dim=-1)
        correct += (feats @ text.t()).argmax(1).eq(torch.tensor(labels[i:i + 500])).sum().item()
    return 100.0 * correct / len(images)


def zero_shot_report(model, names=None, log=print):
    """Zero-shot top-1 per world data set (test split), with chance, printed and returned."""
    results = {}
    for name in names or DATASETS:
        dataset = DATASETS[name]
        acc = zero_shot_accuracy(model, dataset)
        chance = 100.0 / len(dataset.classes)
        results[name] = acc
        log(f"zero-shot {name:<20} ({dataset.style}, {len(dataset.classes)} classes): "
            f"{acc:5.1f}%  (chance {chance:.1f}%, {acc / chance:.1f}x)")
    return results


def _check_settings(overrides):
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown pretraining setting(s) {sorted(unknown)}. Known: {sorted(DEFAULTS)}.")
    return {**DEFAULTS, **overrides}


def _shipped(large):
    """(file, name as the docs give it, settings it must hold) of the default or the large shipped world CLIP."""
    return (LARGE_SHIPPED_FILE, LARGE_SHIPPED_NAME, LARGE) if large else (SHIPPED_FILE, SHIPPED_NAME, DEFAULTS)


def shipped_settings(settings):
    """Whether ``settings`` are those of a shipped world CLIP: None (no), False (the default), True (the large)."""
    if settings == DEFAULTS:
        return False
    return True if settings == LARGE else None


def read_shipped(large=False):
    """The shipped compact world CLIP (the large one if ``large``), checked to be of its settings
    and of the current world version."""
    path, name, settings = _shipped(large)
    shipped = compact.read_compact(path)
    if shipped.settings != settings or shipped.world_version != WORLD_VERSION:
        flags = "--large " if large else ""
        raise RuntimeError(
            f"{name} was made with settings {shipped.settings} (world version {shipped.world_version}), "
            f"but they should be {settings} (world version {WORLD_VERSION}): regenerate it with "
            f"python -m tools.world.pretrain {flags}--pretrain --force --write-shipped {name}"
        )
    return shipped


def world_clip_path(settings, out=None, pretrain_here=False):
    """The file ``ensure_world_clip`` gives: ``out``, else the cache file of a shipped world CLIP
    (the defaults or LARGE, unless ``pretrain_here``) or of the settings."""
    large = shipped_settings(settings)
    if large is not None and not pretrain_here:
        return out or shipped_cache_path(read_shipped(large).digest)
    return out or cached_path(settings)


def expand_shipped(path, log=print, large=False):
    """The shipped compact world CLIP (the large one if ``large``) expanded (once) into the full
    OpenAI-layout state dict file ``path``, checked against its SHA-256; then the zero-shot report."""
    shipped = read_shipped(large)
    shipped_file, name, _ = _shipped(large)
    if os.path.isfile(path):
        if compact.state_digest(torch.load(path, map_location="cpu", weights_only=True)) != shipped.digest:
            raise ValueError(f"{path} exists but is not the shipped world CLIP {name} (its SHA-256 differs): "
                             "delete it, or give another --out")
        log(f"World CLIP found at {path} (the shipped one, SHA-256 {shipped.digest[:12]}...)")
        return
    state = compact.expand(shipped)
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    log(f"World CLIP expanded from the shipped {name} ({os.path.getsize(shipped_file) / 2**20:.1f} MiB) "
        f"to {path} (SHA-256 {shipped.digest[:12]}...; `python -m tools.world.pretrain {'--large ' if large else ''}"
        "--pretrain` pretrains one on this machine instead)")
    model = build(shipped.settings)
    model.load_state_dict(state)
    zero_shot_report(model.eval(), log=log)


def write_shipped(path, out, settings, log=print):
    """Write the compact file of the world CLIP at ``path`` (pretrained with ``settings``) to ``out``."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    compact.write_compact(out, state, world_token_ids(), settings, WORLD_VERSION)
    log(f"Wrote the compact world CLIP ({os.path.getsize(out) / 2**20:.1f} MiB, SHA-256 "
        f"{compact.state_digest(state)[:12]}...) to {out}" +
        ("" if shipped_settings(settings) is not None else
         " (not the default settings: the default world CLIP cannot be this file)"))


def ensure_world_clip(out=None, force=False, log=print, eval_every=0, pretrain_here=False, shipped_out=None,
                      **overrides):
    """The path of a world CLIP with DEFAULTS updated by ``overrides``: for the defaults (or LARGE)
    the shipped one (expand_shipped), unless ``pretrain_here`` or ``force``; otherwise pretrained
    here and saved (then evaluated zero-shot) when the file is missing or ``force``.
    ``shipped_out``: also write the compact file of the result there."""
    settings = _check_settings(overrides)
    pretrain_here = pretrain_here or force
    path = world_clip_path(settings, out, pretrain_here)
    large = shipped_settings(settings)
    if large is not None and not pretrain_here:
        expand_shipped(path, log, large)
    elif os.path.isfile(path) and not force:
        log(f"World CLIP found at {path} (delete it or pass --force to pretrain again)")
    else:
        pretrain_and_save(settings, path, log, eval_every)
    if shipped_out:
        write_shipped(path, shipped_out, settings, log)
    return path


def ensure_large_world_clip(out=None, log=print):
    """The path of the large world CLIP (LARGE), expanded from its shipped file."""
    return ensure_world_clip(out, log=log, **{k: v for k, v in LARGE.items() if DEFAULTS[k] != v})


def pretrain_and_save(settings, path, log=print, eval_every=0):
    log(f"Pretraining a world CLIP ({settings['steps']} steps of {settings['batch_size']} image-caption pairs)")
    start = time.time()
    model = pretrain(settings, log=log, eval_every=eval_every)
    atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp))
    n_params = sum(p.numel() for p in model.parameters())
    log(f"Saved the world CLIP ({n_params / 1e6:.2f} M parameters, {os.path.getsize(path) / 2**20:.1f} MiB) "
        f"to {path} after {time.time() - start:.0f}s")
    large = shipped_settings(settings)
    if large is not None:
        _, name, _ = _shipped(large)
        log(f"To ship it: python -m tools.world.pretrain {'--large ' if large else ''}--pretrain --write-shipped {name}")
    zero_shot_report(model, log=log)


def main(argv=None):
    parser = argparse.ArgumentParser(description="The generated world's CLIP: the shipped one, or pretrained here.")
    parser.add_argument("--out", help=f"file to write (default: a cache file under ${CACHE_ENV} or "
                                      "~/.cache/textrefiner/world)")
    parser.add_argument("--pretrain", action="store_true",
                        help=f"pretrain the default settings on this machine instead of expanding {SHIPPED_NAME} "
                             "(other settings are always pretrained here)")
    parser.add_argument("--force", action="store_true", help="pretrain again even when the file exists (implies --pretrain)")
    parser.add_argument("--write-shipped", metavar="FILE",
                        help=f"also write the compact file of the result (what {SHIPPED_NAME} is)")
    parser.add_argument("--large", action="store_true",
                        help=f"the large world CLIP ({LARGE_SHIPPED_NAME}: vision blocks {LARGE['vision_layers']}, "
                             f"{LARGE['steps']} steps; the world's reward model and teacher) instead of the default one")
    for key in ("steps", "batch_size", "seed"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=None,
                            help=f"default {DEFAULTS[key]} ({LARGE[key]} with --large)")
    parser.add_argument("--lr", type=float, default=None, help=f"default {DEFAULTS['lr']}")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (default 1: the model is so small that more threads mostly "
                             "wait on each other, and on a shared CPU they wait a lot)")
    parser.add_argument("--eval-every", type=int, default=0, help="print the zero-shot report every N steps too")
    parser.add_argument("--print-path", action="store_true",
                        help="only print the file these settings give (for scripts); nothing is trained")
    args = parser.parse_args(argv)
    base = LARGE if args.large else DEFAULTS
    settings = {key: base[key] if getattr(args, key) is None else getattr(args, key)
                for key in ("steps", "batch_size", "seed", "lr")}
    settings.update({key: value for key, value in base.items() if key not in settings and value != DEFAULTS[key]})
    if settings["steps"] < 1 or settings["batch_size"] < 2:
        parser.error("--steps must be at least 1 and --batch-size at least 2")
    if args.print_path:
        print(world_clip_path({**DEFAULTS, **settings}, args.out, args.pretrain or args.force))
        return 0
    torch.set_num_threads(args.threads)
    path = ensure_world_clip(args.out, args.force, lambda m: print(m, flush=True), args.eval_every,
                             pretrain_here=args.pretrain, shipped_out=args.write_shipped, **settings)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
