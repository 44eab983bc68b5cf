"""Command line of tta_ret.py: the reference's flags (retrieval/params.py, clip_ret_policy.py), with
the data set named by --dataset instead of a LAVIS config file."""
import argparse

from tta.core.cli import add_momentum_arguments, add_reward_arguments, none_or_str

from .adapt import DIRECTIONS
from .data import SETS

METHODS = ("rlcf", "kd", "zeroshot")
# candidates per query (--sample_k) by set and direction, as the reference's scripts
SAMPLE_K = {("coco", "image2text"): 20, ("flickr30k", "image2text"): 16, ("world", "image2text"): 20,
            ("coco", "text2image"): 12, ("flickr30k", "text2image"): 12, ("world", "text2image"): 12}


def build_parser():
    p = argparse.ArgumentParser(description="Image-text retrieval with CLIP: zero-shot, and RLCF test-time adaptation.")
    p.add_argument("--method", default="rlcf", choices=METHODS,
                   help="rlcf: adapt to each query (--retrieval_task) with the reward CLIP's rewards of the top-K; "
                        "kd: with distillation from the reward CLIP's softmax over the gallery (the reference's "
                        "clip_ret_kd.py); zeroshot: both directions, no adaptation")
    p.add_argument("--dataset", required=True, choices=tuple(SETS), help="the retrieval test set")
    p.add_argument("--root", default=None, help="data root holding the set's folder (docs/TTA_RETRIEVAL.md)")
    p.add_argument("--ann_file", default=None, help="the LAVIS annotation file (default: by --dataset under --root)")
    p.add_argument("--image_root", default=None, help="the folder the annotation's image paths start from")
    p.add_argument("--output", default="tta_ret_rl_01", help="output folder (log.txt, results.json, run.json)")
    p.add_argument("--retrieval_task", default="image2text", choices=DIRECTIONS,
                   help="image2text: image queries, caption gallery, the image tower adapts; text2image: the reverse")
    p.add_argument("-a", "--arch", nargs="+", default=["ViT-B/16"],
                   help="policy CLIP: a release name, openclip:ARCH/TAG, hf:ORG/REPO, or a weights file or folder; "
                        "zeroshot takes several (the mean of their cosine similarities: the reference's ViT-B/16 + "
                        "ViT-L/14 ensemble)")
    p.add_argument("--precision", default="amp", choices=("amp", "fp32"), help="amp: autocast + GradScaler (CUDA only)")
    p.add_argument("--tta_steps", type=int, default=8, help="updates per query")
    p.add_argument("--lr", "--learning-rate", type=float, default=1e-6)
    p.add_argument("--weight_decay", type=float, default=5e-4)
    p.add_argument("--sample_k", type=int, default=None,
                   help="candidates per query (default 20 COCO / 16 Flickr30k image2text, 12 text2image)")
    add_reward_arguments(p)
    p.add_argument("--process_batch", type=int, default=0, help="accepted as the reference (one query per batch)")
    add_momentum_arguments(p)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--gpu", type=int, default=0, help="CUDA device index (CPU when CUDA is absent)")
    p.add_argument("--workers", type=int, default=4, help="image loading workers")
    p.add_argument("--text_bs", type=int, default=128, help="captions / images per encoder call for the gallery")
    p.add_argument("--feature_cache", type=none_or_str, default=None,
                   help="folder of the cached gallery embeddings (default $TEXTREFINER_FEATURE_CACHE or "
                        "~/.cache/textrefiner/retrieval_features)")
    p.add_argument("-p", "--print_freq", type=int, default=500, help="queries between progress lines")
    return p


def check_args(parser, args):
    """One clear error per bad value; fills --sample_k. Returns args."""
    if args.root is None and (args.ann_file is None or args.image_root is None):
        parser.error("give the data root: --root DATA (or both --ann_file and --image_root)")
    if args.method != "zeroshot" and len(args.arch) > 1:
        parser.error(f"-a/--arch: --method {args.method} adapts one policy CLIP, got {len(args.arch)} "
                     f"({' '.join(args.arch)}); several are for --method zeroshot")
    if args.method == "kd" and args.multiple_reward_models:
        parser.error("--method kd distils from one reward CLIP (--reward_arch): use --multiple_reward_models 0")
    if args.tta_steps < 0:
        parser.error(f"--tta_steps must be >= 0, got {args.tta_steps}")
    if args.sample_k is None:
        args.sample_k = SAMPLE_K[(args.dataset, args.retrieval_task)]
    if args.sample_k < 1:
        parser.error(f"--sample_k must be at least 1, got {args.sample_k}")
    if args.update_freq < 1:
        parser.error(f"--update_freq must be at least 1, got {args.update_freq}")
    return args
