"""How far one image's test-time update moves the adapted features: the world CLIP against ViT-B/16.

    python -m tools.world.tta_step_size --image_folder FOLDER --world-clip FILE --reward-clip FILE
                                        [--images 8] [--methods tpt rlcf-prompt rlcf-tune]

TPT's and RLCF's learning rates were chosen for ViT-B/16. Adam moves every tuned value by about
``lr`` per step whatever the gradient's size, so how far a step moves the features grows with the
width and depth of what is tuned; the world CLIP is 6x narrower and 6x shallower than ViT-B/16.
For each method this runs its update (as on the ImageNet sets: crop + flip views and their step
counts; tta.py's selection and lr) on the same test images with the world CLIP (its large one
rewarding) and with ViT-B/16's shape (CLIP's initialisation, ViT-L/14's shape rewarding: no
pretrained weights are read), and prints the mean
distance the adapted unit features move: the class text features [C, D] for the prompt methods,
the original view's image feature [D] for rlcf-tune. ``world lr`` is the method's lr times the
ratio of the two distances (the lr at which a world update moves the features as far as a ViT-B/16
update, were the distance proportional to lr); scripts/world/benchmark.sh's
``TTA_SETTING=imagenet-scaled`` uses those figures (docs/WORLD.md).
"""
import argparse
import sys

import torch

from tools.random_clips import student_clip, teacher_clip
from tta.classification.adapt import Adapter
from tta.classification.cli import build_parser, check_args, steps_for
from tta.classification.data import load_test_set
from tta.classification.runner import policy_for, reward_for
from tta.classification.views import ViewBuilder
from tta.core.models import load_clip_model
from engine.utils import read_image

METHODS = ("tpt", "rlcf-prompt", "rlcf-tune")


def method_args(method, lr=None):
    """tta.py's arguments for ``method`` as the world benchmark passes them (defaults otherwise)."""
    argv = ["--method", method, "--image_folder", "unused", "-a", "unused"]
    if method.startswith("rlcf"):
        argv += ["--reward_arch", "unused"]
    if method == "rlcf-tune":
        argv += ["--ctx_init", "a photo of a"]
    if lr is not None:
        argv += ["--lr", str(lr)]
    parser = build_parser()
    return check_args(parser, parser.parse_args(argv))


def adapted_features(policy, views):
    """The unit features the method adapts, at the policy's current state: [C, D] or [1, D]."""
    with torch.no_grad():
        if hasattr(policy, "text_features"):
            return policy.text_features()
        return torch.nn.functional.normalize(policy.visual(views[:1]), dim=-1)


def mean_shift(args, student, reward_model, images, classnames):
    """Mean over ``images`` of the distance the adapted unit features move in one image's update."""
    torch.manual_seed(args.seed)
    policy = policy_for(args, student)
    tokenized = policy.start_dataset(classnames)
    reward = None
    if reward_model is not None:
        reward = reward_for(args, [reward_model], ["reward"])
        reward.set_class_features(tokenized)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), args.lr, weight_decay=args.weight_decay)
    adapter = Adapter(policy, optimizer, steps_for(args, False), args.selection_p, reward)
    builder = ViewBuilder(student.visual.input_resolution, args.batch_size, seed=args.seed)
    shifts = []
    for index, image in enumerate(images):
        views = builder(image, index)  # [N, 3, H, W]
        policy.set_views(views)
        policy.reset()
        before = adapted_features(policy, views)
        adapter.adapt(views)
        shifts.append((adapted_features(policy, views) - before).norm(dim=-1).mean().item())
        policy.after_image()
    return sum(shifts) / len(shifts)


def spread_items(items, n):
    """``n`` items spread evenly over the list (the test items come ordered by class)."""
    step = max(len(items) // n, 1)
    return items[::step][:n]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image_folder", required=True, help="a tta.py image folder (python -m tools.world.tta_folders)")
    parser.add_argument("--world-clip", required=True, help="the adapted world CLIP file")
    parser.add_argument("--reward-clip", required=True, help="the world reward CLIP file")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shape", default="vit-b16", choices=("vit-b16", "tiny"), help="tiny: the smallest mode (tests)")
    opts = parser.parse_args(argv)
    torch.set_num_threads(opts.threads)
    items, classnames = load_test_set("ImageFolder", opts.image_folder)
    images = [read_image(item.impath) for item in spread_items(items, opts.images)]
    device = torch.device("cpu")
    print(f"{len(images)} images of {opts.image_folder}, {len(classnames)} classes; torch {torch.__version__}, "
          f"{opts.threads} threads")
    print("| method | lr | steps | ViT-B/16 shift | world shift | ratio | world lr | world shift at world lr |")
    print("|---|---|---|---|---|---|---|---|")
    for method in opts.methods:
        args = method_args(method)
        rewarded = method.startswith("rlcf")
        reference = mean_shift(args, student_clip(opts.shape).to(device),
                               teacher_clip(opts.shape).to(device) if rewarded else None, images, classnames)

        def world_shift(lr):
            student = load_clip_model(opts.world_clip, device)
            reward_model = load_clip_model(opts.reward_clip, device) if rewarded else None
            return mean_shift(method_args(method, lr), student, reward_model, images, classnames)

        world = world_shift(args.lr)
        scaled_lr = float(f"{args.lr * reference / world:.2g}")
        print(f"| {method} | {args.lr:g} | {steps_for(args, False)} | {reference:.4f} | {world:.4f} | "
              f"{reference / world:.1f} | {scaled_lr:g} | {world_shift(scaled_lr):.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
