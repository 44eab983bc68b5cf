"""Image captioning in the generated world: a caption data set, a small OPT pretrained on world
captions, and ClipCap / CapDec with and without RLCF test-time adaptation on a shifted style.

    python -m tools.world.captioning --out output/world_captioning [--seeds 1 2 3] [--styles sketch cartoon]

The data set is in the COCO Karpathy layout that caption.py reads: ``world_captions_train.json``
(one entry per caption, photo-style images) and ``world_captions_test_<style>.json`` (references
per image, images in a shifted style). The decoder is an OPT config sized to the world (the BPE
tokenizer of tools/tiny_opt.py, trained on the world's words: 400 tokens) pretrained as a language
model on a stream of world captions of every style, each ended by "\\n" (the captioner's end of
caption); it is cached under the world cache folder, one folder per setting. The mappers, the
captioner's CLIP, the reward CLIP and CLIPScore's CLIP are all the world CLIP. Nothing here is
tuned to make a method win: the numbers are what comes out.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.utils.tools import write_json_atomic
from tools.tiny_opt import tiny_opt, tiny_opt_tokenizer

from .captions import caption, random_attributes
from .pretrain import WORLD_VERSION, default_cache_dir, ensure_world_clip
from .render import STYLES, render

TRAIN_STYLE = "photo"
SHIFTED_STYLES = ("sketch", "cartoon")
OPT_DEFAULTS = dict(steps=600, batch_size=64, lr=3e-3, width=64, layers=2, heads=4, seed=0)
# the world's mapper and schedule: the reference's mapper shape at the decoder's width, a schedule
# for a few thousand captions (the reference's 5,000 warm-up updates would never end here); TTA's lr
# keeps the reference's ratio to the training lr (CapDec 5e-6 / 2e-5, ClipCap 2e-6 / 2e-5) and its K
MAPPER = ["--prefix_length", "10", "--prefix_length_clip", "10", "--num_layers", "4"]
TRAIN = dict(lr=1e-3, bs=40, epochs=10, warmup_steps=50)
MODELS = {
    "CapDec": dict(train=["--cap_model", "CapDec"], tta_lr=TRAIN["lr"] * 5e-6 / 2e-5, sample_k=6),
    "ClipCap": dict(train=["--cap_model", "CLIPCap", "--use_image_embedding"], tta_lr=TRAIN["lr"] * 2e-6 / 2e-5,
                    sample_k=10),
}
METRICS = ("BLEU-4", "CIDEr", "CLIPScore")


# ----- the data set -----------------------------------------------------------------------------

def _rng(seed, tag):
    return np.random.default_rng([seed, sum(ord(c) * 31**i for i, c in enumerate(tag)) % 2**31])


def _write_split(root, folder, style, n_images, captions_per_image, seed):
    """Render ``n_images`` of ``style`` under root/images/<folder>/; returns [(relative path, [captions])]."""
    rng = _rng(seed, folder)
    os.makedirs(os.path.join(root, "images", folder), exist_ok=True)
    items = []
    for i in range(n_images):
        attrs = random_attributes(rng, style=style)
        relpath = f"images/{folder}/{i:05d}.png"
        Image.fromarray(render(attrs, rng)).save(os.path.join(root, relpath), format="PNG", compress_level=1)
        items.append((relpath, [caption(attrs, rng) for _ in range(captions_per_image)]))
    return items


def train_file(root):
    return os.path.join(root, "world_captions_train.json")


def test_file(root, style):
    return os.path.join(root, f"world_captions_test_{style.replace(' ', '_')}.json")


def write_caption_set(root, train_images=200, test_images=20, captions_per_image=5, styles=SHIFTED_STYLES, seed=0,
                      log=print):
    """The caption set under ``root`` (written when missing; the JSON files come last, so a folder with
    them is complete): train from photo-style images, one test file per shifted style."""
    for style in styles:
        if style not in STYLES or style == TRAIN_STYLE:
            raise ValueError(f'"{style}" is not a shifted world style: choose from {[s for s in STYLES if s != TRAIN_STYLE]}')
    settings = dict(train_images=train_images, test_images=test_images, captions_per_image=captions_per_image,
                    seed=seed, world=WORLD_VERSION)
    marker = os.path.join(root, "caption_set.json")
    if os.path.isfile(marker):
        with open(marker) as f:
            written = json.load(f)
        if written != settings:
            raise ValueError(f'"{root}" holds a world caption set made with {written}, not {settings}: give another --out')
    else:
        items = _write_split(root, "train", TRAIN_STYLE, train_images, captions_per_image, seed)
        write_json_atomic([{"image": path, "caption": c, "image_id": n} for n, (path, caps) in enumerate(items) for c in caps],
                          train_file(root))
        write_json_atomic(settings, marker)
    for style in [s for s in styles if not os.path.isfile(test_file(root, s))]:
        items = _write_split(root, f"test_{style.replace(' ', '_')}", style, test_images, captions_per_image, seed)
        write_json_atomic([{"image": path, "caption": caps, "image_id": n} for n, (path, caps) in enumerate(items)],
                          test_file(root, style))
        log(f"World caption set in {root}: {train_images} photo images x {captions_per_image} captions (train); "
            f"{test_images} {style} test images x {captions_per_image} references")
    return root


# ----- the decoder ------------------------------------------------------------------------------

def opt_cache_path(settings):
    key = json.dumps({"world": WORLD_VERSION, **settings}, sort_keys=True)
    return os.path.join(default_cache_dir(), f"world_opt_{hashlib.sha1(key.encode()).hexdigest()[:12]}")


def caption_stream(rng, n):
    """``n`` world captions of random images of every style, each ended by the end-of-caption "\\n"."""
    return [caption(random_attributes(rng), rng) + "\n" for _ in range(n)]


def pretrain_opt(settings, log=print):
    """(OPT pretrained as a language model on world captions, its tokenizer)."""
    tokenizer = tiny_opt_tokenizer()
    model = tiny_opt(len(tokenizer), seed=settings["seed"], width=settings["width"], layers=settings["layers"],
                     heads=settings["heads"], init_std=0.02)
    rng = np.random.default_rng(settings["seed"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=0.0)
    steps = settings["steps"]

    def factor(step):  # 100 warm-up steps, then a cosine to 0
        return min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / steps))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    model.train()
    for step in range(steps):
        batch = tokenizer(caption_stream(rng, settings["batch_size"]), padding=True, return_tensors="pt")
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]  # [B, T-1, V]
        target = batch.input_ids[:, 1:].masked_fill(batch.attention_mask[:, 1:] == 0, -100)
        loss = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % 500 == 0 or step + 1 == steps:
            log(f"world OPT step {step + 1}/{steps}: loss {loss.item():.4f}")
    return model.eval(), tokenizer


def ensure_world_opt(log=print, **overrides):
    """The folder of the world OPT with OPT_DEFAULTS updated by ``overrides`` (pretrained once, cached)."""
    unknown = set(overrides) - set(OPT_DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown world OPT setting(s) {sorted(unknown)}. Known: {sorted(OPT_DEFAULTS)}.")
    settings = {**OPT_DEFAULTS, **overrides}
    folder = opt_cache_path(settings)
    if os.path.isfile(os.path.join(folder, "settings.json")):
        log(f"World OPT found at {folder}")
        return folder
    start = time.time()
    model, tokenizer = pretrain_opt(settings, log)
    tmp = f"{folder}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_json_atomic(settings, os.path.join(tmp, "settings.json"))
    if os.path.isdir(folder):  # an incomplete folder of an interrupted run
        shutil.rmtree(folder)
    os.replace(tmp, folder)  # the whole folder appears at once
    log(f"World OPT ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters) pretrained in "
        f"{time.time() - start:.0f}s, saved to {folder}")
    return folder


# ----- the experiment ---------------------------------------------------------------------------

def _results(folder):
    with open(os.path.join(folder, "results.json")) as f:
        return json.load(f)["metrics"]


def run(out, seeds=(1, 2, 3), styles=("sketch",), train_images=200, test_images=20, tta_steps=4, epochs=None,
        opt_steps=None, coco=True, clip_path=None, log=print):
    """Every (model, seed, style): train the mapper, caption the shifted test set without and with RLCF
    TTA; returns the summary (also written to out/results.json). ``clip_path``: a CLIP file in place of
    the world CLIP (for tests)."""
    from tta.captioning.cli import main as caption_py

    data_root = write_caption_set(os.path.join(out, "data"), train_images, test_images, styles=styles, log=log)
    clip_path = clip_path or ensure_world_clip(log=log)
    features = os.path.join(out, "features.safetensors")
    if not os.path.isfile(features):
        caption_py(["extract", "--annotations", train_file(data_root), "--images_root", data_root,
                    "--clip_model_type", clip_path, "--out", features])
    schedule = {**TRAIN, **({"epochs": epochs} if epochs else {})}
    opt_settings = {**OPT_DEFAULTS, **({"steps": opt_steps} if opt_steps else {})}
    opt = ensure_world_opt(log, **opt_settings)
    common = ["--llm_config_dir", opt, "--clip_model_type", clip_path, *MAPPER]
    rows = []
    for name, model in MODELS.items():
        for seed in seeds:
            run_dir = os.path.join(out, f"{name.lower()}_seed{seed}")
            checkpoint = os.path.join(run_dir, "ckpt-latest.safetensors")
            if not os.path.isfile(os.path.join(run_dir, "loss_per_epoch.json")):
                shutil.rmtree(run_dir, ignore_errors=True)  # an interrupted training: it does not resume
                caption_py(["train", "--data", features, "--out_dir", run_dir, *model["train"], *common, "--seed", str(seed),
                         *[x for k, v in schedule.items() for x in (f"--{k}", str(v))]])
            for style in styles:
                for steps in (0, tta_steps):
                    output = os.path.join(run_dir, f"{style.replace(' ', '_')}_tta{steps}")
                    caption_py(["tta", "--checkpoint", checkpoint, "--annotations", test_file(data_root, style),
                             "--images_root", data_root, "--output", output, *common, "--seed", str(seed),
                             "--tta_steps", str(steps), "--tta_lr", str(model["tta_lr"]), "--sample_k",
                             str(model["sample_k"]), "--reward_arch", clip_path, "--clipscore_arch", clip_path]
                            + ([] if coco else ["--no_coco_metrics"]))
                    rows.append(dict(model=name, seed=seed, style=style, tta_steps=steps, metrics=_results(output)))
    summary = {"settings": dict(seeds=list(seeds), styles=list(styles), train_images=train_images,
                                test_images=test_images, tta_steps=tta_steps, train=schedule, mapper=MAPPER,
                                opt=opt_settings,
                                models={k: dict(tta_lr=v["tta_lr"], sample_k=v["sample_k"]) for k, v in MODELS.items()}),
               "runs": rows}
    write_json_atomic(summary, os.path.join(out, "results.json"))
    log(table(rows))
    return summary


def _mean_std(values):
    return f"{statistics.mean(values):.2f} ± {statistics.pstdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def table(rows):
    """A markdown table: one line per (style, model, TTA), the metrics' mean ± std over seeds."""
    groups = {}
    for r in rows:
        groups.setdefault((r["style"], r["model"], r["tta_steps"]), []).append(r["metrics"])
    metrics = [m for m in METRICS if all(m in ms for g in groups.values() for ms in g)]
    lines = ["| test style | model | TTA | seeds | " + " | ".join(metrics) + " |", "|---" * (4 + len(metrics)) + "|"]
    for (style, model, steps), runs in groups.items():
        tta = f"RLCF ({steps} steps)" if steps else "none"
        lines.append(f"| {style} | {model} | {tta} | {len(runs)} | " +
                     " | ".join(_mean_std([r[m] for r in runs]) for m in metrics) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="output/world_captioning", help="folder of the data, features, runs and results.json")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--styles", nargs="+", default=["sketch"], help=f"shifted test styles ({', '.join(SHIFTED_STYLES)}, ...)")
    parser.add_argument("--train-images", type=int, default=200)
    parser.add_argument("--test-images", type=int, default=20)
    parser.add_argument("--tta-steps", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=None, help=f"mapper epochs (default {TRAIN['epochs']})")
    parser.add_argument("--opt-steps", type=int, default=None, help=f"world OPT pretraining steps (default {OPT_DEFAULTS['steps']})")
    parser.add_argument("--no-coco-metrics", action="store_true", help="CLIPScores only (no java)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--clip", default=None, help="a CLIP file in place of the shipped world CLIP (captioner, reward "
                        "and CLIPScore)")
    args = parser.parse_args(argv)
    if args.train_images < 1 or args.test_images < 1 or args.tta_steps < 1:
        parser.error("--train-images, --test-images and --tta-steps must be at least 1")
    if args.clip is not None and not os.path.isfile(args.clip):
        parser.error(f"--clip {args.clip}: no such file (a CLIP weights file, e.g. python -m tools.world.pretrain --print-path)")
    torch.set_num_threads(args.threads)
    try:
        run(args.out, args.seeds, args.styles, args.train_images, args.test_images, args.tta_steps, args.epochs,
            args.opt_steps, not args.no_coco_metrics, clip_path=args.clip, log=lambda m: print(m, flush=True))
    except ValueError as e:
        parser.error(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
