"""caption.py: ClipCap / CapDec features, training, and RLCF test-time adaptation with the caption metrics.

    python caption.py extract --annotations coco_karpathy_train.json --images_root COCO --clip_model_type ViT-B/16 --out F
    python caption.py train --data F --cap_model CapDec --llm_config_dir facebook/opt-125m --out_dir OUT
    python caption.py tta --checkpoint OUT/ckpt-latest.safetensors --annotations flickr30k_test.json --images_root FLICKR \
        --llm_config_dir facebook/opt-125m --tta_steps 4 --tta_lr 5e-6 --sample_k 6 --output OUT/c2f
    python caption.py split_nocaps nocaps_val_4500_captions.json

Flag names are the reference's (train.py, capdec_tta.py, predictions.py); --tta_steps 0 is its
zero-TTA evaluation (predictions.py).
"""
import argparse
import hashlib
import os.path as osp
import time

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from engine.utils.faults import UserError, check_output_dir
from engine.utils.tools import atomic_write, write_json_atomic
from tta.captioning import checkpoints, data, metrics
from tta.captioning.adapt import CaptionAdapter
from tta.captioning.features import CaptionFeatures, load_features, save_features
from tta.captioning.generate import generate
from tta.captioning.model import Captioner, load_language_model, load_weights
from tta.captioning.record import CaptionRecord
from tta.captioning.train import NOISE_VARIANCE, MapperTraining
from tta.core.models import clip_file, load_clip_model, peak_memory_line
from tta.core.rewards import CLIPReward


def add_model_args(p):
    p.add_argument("--llm_config_dir", default="facebook/opt-125m", help="OPT: a Hugging Face hub name or a local folder")
    p.add_argument("--clip_model_type", default="ViT-B/16", help="the CLIP whose embeddings the mapper reads (name or file)")
    p.add_argument("--prefix_length", type=int, default=40)
    p.add_argument("--prefix_length_clip", type=int, default=40)
    p.add_argument("--num_layers", type=int, default=8, help="mapper transformer layers")
    p.add_argument("--seed", type=int, default=0)


def build_parser():
    parser = argparse.ArgumentParser(prog="caption.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("extract", help="CLIP image and text embeddings of a training JSON, into one safetensors file")
    p.add_argument("--annotations", required=True)
    p.add_argument("--images_root", required=True)
    p.add_argument("--clip_model_type", default="ViT-B/16")
    p.add_argument("--out", required=True, help="the feature file (.safetensors)")
    p.add_argument("--bs", type=int, default=64)

    p = sub.add_parser("train", help="train the mapper on a feature file (OPT frozen)")
    add_model_args(p)
    p.add_argument("--data", required=True, help="our .safetensors features or the reference's feature .pkl")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--cap_model", choices=("CLIPCap", "CapDec"), default="CapDec")
    p.add_argument("--use_image_embedding", action="store_true", help="ClipCap: image embeddings (CapDec: text + noise)")
    p.add_argument("--noise_variance", type=float, default=NOISE_VARIANCE)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--bs", type=int, default=40)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--warmup_steps", type=int, default=5000)
    p.add_argument("--checkpoint_iter_freq", type=int, default=0,
                   help="also a resumable checkpoint every N batches (0: after every epoch only)")

    p = sub.add_parser("tta", help="caption a test set with RLCF (or --tta_steps 0: without), with the metrics")
    add_model_args(p)
    p.add_argument("--checkpoint", required=True, help="a mapper (.safetensors) or a reference checkpoint (ckpt-*.pt)")
    p.add_argument("--annotations", required=True)
    p.add_argument("--images_root", required=True)
    p.add_argument("--output", required=True, help="folder of run.json, results.json, captions.json")
    p.add_argument("--tta_steps", type=int, default=4)
    p.add_argument("--tta_lr", type=float, default=5e-6)
    p.add_argument("--tta_weight_decay", type=float, default=0.0)
    p.add_argument("--sample_k", type=int, default=6)
    p.add_argument("--reward_arch", default="ViT-L/14")
    p.add_argument("--use_nucleus_sampling", type=int, default=0)
    p.add_argument("--clipscore_arch", default=metrics.CLIPSCORE_ARCH, help="the CLIP of CLIPScore / RefCLIPScore")
    p.add_argument("--no_coco_metrics", action="store_true", help="CLIPScores only (no java needed)")
    p.add_argument("--max_images", type=int, default=0, help="the first N images only (0: all)")

    p = sub.add_parser("split_nocaps", help="NoCaps val -> in / near / out-domain test files")
    p.add_argument("annotations")
    return parser


def device_of():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def encode_images(model, paths, batch, device):
    transform = data.clip_transform(model.visual.input_resolution)
    out = []
    for i in range(0, len(paths), batch):
        images = torch.cat([data.load_image(p, transform) for p in paths[i : i + batch]]).to(device)
        out.append(model.encode_image(images).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def extract(args):
    import clip

    device = device_of()
    images, captions, index = data.read_train_set(args.annotations, args.images_root)
    model = load_clip_model(clip_file(args.clip_model_type, "--clip_model_type"), device)
    image_feats = encode_images(model, [im.path for im in images], args.bs, device)
    text = torch.cat([model.encode_text(clip.tokenize(captions[i : i + 256], truncate=True).to(device)).float().cpu()
                      for i in range(0, len(captions), 256)])
    save_features(args.out, CaptionFeatures(image_feats, text, torch.tensor(index), captions,
                                            [str(im.image_id) for im in images], args.clip_model_type))
    print(f"{len(images)} image and {len(captions)} text embeddings saved to {args.out}")


def build_captioner(args, clip_dim, device):
    llm, tokenizer = load_language_model(args.llm_config_dir)
    torch.manual_seed(args.seed)
    captioner = Captioner(llm, clip_dim, args.prefix_length, args.prefix_length_clip, args.num_layers)
    return captioner.to(device), tokenizer


MAPPER_FILE = "ckpt-latest.safetensors"
TRAIN_NOT_RESULT_ARGS = ("data", "out_dir", "llm_config_dir", "clip_model_type", "checkpoint_iter_freq", "command")


def train(args):
    """Train the mapper into --out_dir; an unfinished run there resumes exactly, a finished one is kept."""
    if args.cap_model == "CLIPCap" and not args.use_image_embedding:
        raise UserError("--cap_model CLIPCap trains on image embeddings: add --use_image_embedding")
    features = load_features(args.data)
    config = {k: v for k, v in sorted(vars(args).items()) if k not in TRAIN_NOT_RESULT_ARGS}
    # the run's input files (compared by content): the features and the OPT
    inputs = {"--data": args.data, "--llm_config_dir": args.llm_config_dir}
    record = CaptionRecord(args.out_dir, "caption.py train", config, inputs, {}, results_name=MAPPER_FILE)
    if record.finished_before():
        print(f'The training in "{args.out_dir}" is finished ({MAPPER_FILE}); nothing to do.')
        return
    check_output_dir(args.out_dir)
    record.start()
    device = device_of()
    captioner, tokenizer = build_captioner(args, features.text.shape[1], device)
    training = MapperTraining(captioner, tokenizer, features, args.use_image_embedding, args.noise_variance, args.lr,
                              args.bs, args.epochs, args.warmup_steps, args.seed)
    checkpoints.resume(training, args.out_dir)
    every = args.checkpoint_iter_freq

    def mid_epoch_checkpoint():
        if every and training.batch % every == 0:
            checkpoints.save(training, args.out_dir)

    try:
        while training.epoch < args.epochs:
            start = time.time()
            loss = training.run_epoch(mid_epoch_checkpoint)
            print(f">>> epoch {training.epoch}/{args.epochs}: loss {loss:.4f} ({time.time() - start:.1f} s)")
            save_mapper(captioner, osp.join(args.out_dir, MAPPER_FILE), training.epoch)
            checkpoints.save(training, args.out_dir)
    except KeyboardInterrupt:
        print(f"Interrupted at epoch {training.epoch + 1} batch {training.batch}: stopped. Rerun the same command to "
              "resume from the last checkpoint.")
        raise
    write_json_atomic({"train": training.losses}, osp.join(args.out_dir, "loss_per_epoch.json"))
    record.finish()
    print(f"Mapper saved to {osp.join(args.out_dir, MAPPER_FILE)}")


def save_mapper(captioner, path, epoch):
    state = {k: v.contiguous() for k, v in captioner.mapper_state().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"epoch": str(epoch)}))


def data_digest(items):
    digest = hashlib.sha256()
    for it in items:
        digest.update(("\t".join([it.key] + it.references) + "\n").encode())
    return {"test": {"images": len(items), "sha256": digest.hexdigest()}}


def tta(args):
    device = device_of()
    items = data.read_test_set(args.annotations, args.images_root)
    if args.max_images:
        items = items[: args.max_images]
    weights = {"--checkpoint": args.checkpoint, "--llm_config_dir": args.llm_config_dir,
               "--clip_model_type": clip_file(args.clip_model_type, "--clip_model_type"),
               "--reward_arch": clip_file(args.reward_arch, "--reward_arch") if args.tta_steps else None,
               "--clipscore_arch": clip_file(args.clipscore_arch, "--clipscore_arch")}
    skip = ("checkpoint", "llm_config_dir", "clip_model_type", "reward_arch", "clipscore_arch", "output",
            "annotations", "images_root", "command")
    record = CaptionRecord(args.output, "caption.py tta", {k: v for k, v in sorted(vars(args).items()) if k not in skip},
                           weights, data_digest(items))
    if record.finished_before():
        print(f'The run in "{args.output}" is finished (results.json); nothing to do.')
        return
    check_output_dir(args.output)
    record.start()
    clip_model = load_clip_model(weights["--clip_model_type"], device)
    transform = data.clip_transform(clip_model.visual.input_resolution)
    captioner, tokenizer = build_captioner(args, clip_model.text_projection.shape[1], device)
    load_weights(captioner, args.checkpoint)
    adapter = None
    if args.tta_steps:
        reward = CLIPReward([load_clip_model(weights["--reward_arch"], device)], sample_k=args.sample_k, process_batch=False)
        adapter = CaptionAdapter(captioner, tokenizer, reward, args.tta_lr, args.tta_steps, args.sample_k,
                                 args.tta_weight_decay, nucleus=bool(args.use_nucleus_sampling))
    captions, start = {}, time.time()
    for n, item in enumerate(items):
        image = data.load_image(item.path, transform).to(device)
        with torch.no_grad():
            embedding = F.normalize(clip_model.encode_image(image).float(), dim=-1)  # [1, D]
        if adapter is None:
            with torch.no_grad():
                captions[item.key] = generate(captioner, tokenizer, captioner.prefix(embedding), num_beams=5)[0].lower()
        else:
            captions[item.key] = adapter.caption(embedding, image)
        if (n + 1) % 50 == 0 or n + 1 == len(items):
            print(f"[{n + 1}/{len(items)}] {(time.time() - start) / (n + 1):.2f} s per image; {item.key}: {captions[item.key]}")
    write_json_atomic(captions, osp.join(args.output, "captions.json"))
    write_json_atomic([{"image_id": it.image_id, "caption": captions[it.key]} for it in items], osp.join(args.output, "predictions.json"))
    score_model = load_clip_model(weights["--clipscore_arch"], device)
    image_features = encode_images(score_model, [it.path for it in items], 64, device)
    results = metrics.all_metrics([it.references for it in items], [captions[it.key] for it in items], score_model,
                                  image_features, coco=not args.no_coco_metrics)
    for name, value in results.items():
        print(f"{name}: {value:.2f}")
    write_json_atomic({"annotations": osp.basename(args.annotations), "images": len(items), "metrics": results,
                       "seconds_per_image": (time.time() - start) / len(items)}, osp.join(args.output, "results.json"))
    print(peak_memory_line(device))
    record.finish()


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "extract":
        extract(args)
    elif args.command == "train":
        train(args)
    elif args.command == "tta":
        tta(args)
    else:
        for path in data.split_nocaps(args.annotations):
            print(f"wrote {path}")
