"""Command line of tta.py: the reference's flags (tpt_cls_rl.py / tune_cls_rl.py) plus --method."""
import argparse

from tta.core.cli import add_momentum_arguments, add_reward_arguments, none_or_str

from .policy import BN_MODES

METHODS = ("zeroshot", "tpt", "rlcf-prompt", "rlcf-tune")

# per method: (tta_steps on ImageNet sets, on fine-grained sets, lr, AdamW weight decay)
METHOD_DEFAULTS = {
    "zeroshot": (0, 0, 5e-3, 0.01),
    "tpt": (1, 1, 5e-3, 0.01),  # TPT: AdamW's default weight decay
    "rlcf-prompt": (3, 5, 7e-3, 5e-4),  # rlcf-prompt.sh / rlcf-prompt-fine.sh
    "rlcf-tune": (3, 3, 1e-5, 5e-4),  # rlcf-tune.sh
}


def build_parser():
    p = argparse.ArgumentParser(description="Test-time adaptation of CLIP: zero-shot, TPT, RLCF (prompt or encoder).")
    p.add_argument("data", nargs="?", default=None, help="data root (DATASET.ROOT); or --root")
    p.add_argument("--root", default=None, help="data root holding the data set folders (docs/DATASETS.md)")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--test_sets", "--test-sets", default=None,
                   help="set ids split by '/': I A V R K, Caltech101 Cars Pets Flower102 Aircraft Food101 SUN397 DTD "
                        "eurosat UCF101 (default A/R/V/K/I, none when --image_folder is given)")
    p.add_argument("--image_folder", "--image-folder", nargs="+", default=[],
                   help="your own test sets: image folders (one folder per class, or a test/ folder of them; "
                        "docs/OWN_DATA.md), each a set named after its folder, after the --test_sets")
    p.add_argument("--output", "--output-dir", default="exp_01", help="output folder (log.txt, results.json)")
    p.add_argument("-a", "--arch", default="RN50",
                   help="student CLIP: a release name (ViT-B/16), openclip:ARCH/TAG, hf:ORG/REPO, or a weights file "
                        "or folder (docs/OTHER_CLIPS.md)")
    p.add_argument("--resolution", type=int, default=None, help="view size; must equal the student's input size")
    p.add_argument("--workers", type=int, default=8, help="data loading workers")
    p.add_argument("-b", "--batch_size", type=int, default=64, help="views per image: the original + batch_size - 1")
    p.add_argument("--lr", "--learning-rate", type=float, default=None, help="default: by --method")
    p.add_argument("--weight_decay", type=float, default=None, help="AdamW weight decay; default: by --method")
    p.add_argument("-p", "--print-freq", type=int, default=500)
    p.add_argument("--gpu", type=int, default=0, help="CUDA device index (CPU when CUDA is absent)")
    p.add_argument("--tpt", action="store_true", help="accepted as in the reference; the views follow --method")
    p.add_argument("--selection_p", type=float, default=0.1, help="fraction of lowest-entropy views kept")
    p.add_argument("--tta_steps", type=int, default=None, help="updates per image; default: by --method and set")
    p.add_argument("--n_ctx", type=int, default=4, help="context tokens when --ctx_init is None")
    p.add_argument("--ctx_init", type=none_or_str, default="a_photo_of_a", help="initial prompt words")
    p.add_argument("--load", type=none_or_str, default=None, help="CoOp checkpoint (file or train.py output folder)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hard_aug", type=int, default=0, help="1: BYOL-style crops instead of crop + flip")
    p.add_argument("--augmix", type=int, default=1, help="1: AugMix on the fine-grained sets (never on I/A/V/R/K)")
    p.add_argument("--prec", default="amp", choices=("amp", "fp32"), help="amp: autocast + GradScaler (CUDA only)")
    p.add_argument("--class_chunk", type=int, default=256,
                   help="prompt tuning: classes per text-encoder backward, bounding the memory of 1000-class sets "
                        "(the same gradient for one extra text forward; 0 = all classes at once)")
    # RLCF reward
    p.add_argument("--sample_k", type=int, default=3, help="candidates (top-K classes) per view")
    add_reward_arguments(p)
    p.add_argument("--process_batch", type=int, default=0, help="1: baseline over all views x K, 0: per view")
    p.add_argument("--min_entropy_reg", type=int, default=0, help="1: add min_entropy_w x marginal entropy")
    p.add_argument("--min_entropy_w", type=float, default=0.1)
    # image-encoder run: momentum buffer
    add_momentum_arguments(p)
    p.add_argument("--bn_mode", default="train", choices=BN_MODES,
                   help="rlcf-tune with a ResNet student: BatchNorm while adapting; train (the reference's: the "
                        "views' batch statistics, running statistics updated, restored for the next image) or eval")
    return p


def check_args(parser, args):
    """One clear error per bad value; fills the method defaults. Returns args."""
    root = args.root or args.data
    if args.test_sets is None:
        args.test_sets = "" if args.image_folder else "A/R/V/K/I"
    if root is None and args.test_sets:
        parser.error("give the data root: --root DATA (or as the first argument, as the reference)")
    if args.root and args.data and args.root != args.data:
        parser.error(f'two data roots given: "{args.data}" and --root "{args.root}"')
    args.root = root
    if not 0 < args.selection_p <= 1:
        parser.error(f"--selection_p must be in (0, 1], got {args.selection_p}")
    if args.method != "zeroshot" and int(args.batch_size * args.selection_p) < 1:
        parser.error(f"--batch_size {args.batch_size} x --selection_p {args.selection_p} selects no view: "
                     "raise either so that at least one view is kept")
    if args.method.startswith("rlcf") and args.sample_k < 1:
        parser.error(f"--sample_k must be at least 1, got {args.sample_k}")
    if args.tta_steps is not None and args.tta_steps < 0:
        parser.error(f"--tta_steps must be >= 0, got {args.tta_steps}")
    if args.method == "rlcf-tune" and args.ctx_init is None:
        parser.error("rlcf-tune builds its class prompts from --ctx_init: give the prompt words (a_photo_of_a)")
    _, _, lr, wd = METHOD_DEFAULTS[args.method]
    args.lr = lr if args.lr is None else args.lr
    args.weight_decay = wd if args.weight_decay is None else args.weight_decay
    return args


def steps_for(args, fine_grained):
    """--tta_steps, or the method's default for this kind of set."""
    if args.tta_steps is not None:
        return args.tta_steps
    imagenet_steps, fine_steps, _, _ = METHOD_DEFAULTS[args.method]
    return fine_steps if fine_grained else imagenet_steps
