"""tta.py's main: build the student, the reward CLIP(s) and the views, then adapt on every test set."""
import json
import os
import resource
import sys
import time

import torch

import clip
from engine import distributed
from engine.utils import set_random_seed, setup_logger
from engine.utils.logger import restore_stdout

from .adapt import Adapter, evaluate_set
from .cli import build_parser, check_args, steps_for
from .data import is_fine_grained, load_test_set, parse_test_sets, views_loader
from .policy import PromptPolicy, VisualPolicy, load_coop_context
from .results import write_results
from .rewards import REFERENCE_MULTIPLE, CLIPReward, normalised_weights
from .views import ViewBuilder


def load_clip_model(name_or_file, device):
    """A CLIP (fp32, eval) by release name, or from a weights file when the value is a file."""
    if os.path.isfile(name_or_file):
        model = clip.load(os.path.basename(name_or_file), path=name_or_file)
    else:
        model = clip.load(name_or_file)
    return model.to(device).eval()


def build_policy(args, device):
    student = load_clip_model(args.arch, device)
    if args.resolution is not None and args.resolution != student.visual.input_resolution:
        raise ValueError(
            f"--resolution {args.resolution} differs from the input size {student.visual.input_resolution} of the "
            f'student CLIP "{args.arch}": leave --resolution out or set it to {student.visual.input_resolution}'
        )
    if args.method == "rlcf-tune":
        if args.load:
            print("Note: --load (a CoOp prompt) is not used when the image encoder is adapted (rlcf-tune)")
        return VisualPolicy(student, args.ctx_init, bool(args.momentum_update), args.tta_momentum, args.update_freq,
                            args.update_w, args.bn_mode)
    ctx_init = args.ctx_init.replace("_", " ") if args.ctx_init else ""
    n_ctx = len(ctx_init.split(" ")) if ctx_init else args.n_ctx
    init_ctx = None
    if args.load:
        init_ctx = load_coop_context(args.load, n_ctx, student.ln_final.weight.shape[0]).to(device)
    return PromptPolicy(student, n_ctx, ctx_init, init_ctx, args.class_chunk)


def build_reward(args, device):
    if not args.method.startswith("rlcf"):
        return None
    if args.multiple_reward_models:
        names = args.reward_archs or list(REFERENCE_MULTIPLE)
        if args.weighted_scores:
            weights = normalised_weights(names, args.reward_weights)
        else:
            weights = [1.0 / len(names)] * len(names)
    else:
        names, weights = [args.reward_arch], None
    models = [load_clip_model(name, device) for name in names]
    print(f"CLIPRewards: {names}, weights {weights}, sample_k {args.sample_k}, reward_process {args.reward_process}, "
          f"process_batch {args.process_batch}, reward_amplify {args.reward_amplify}")
    return CLIPReward(models, weights, args.clipscore_weight, args.sample_k, bool(args.reward_process),
                      bool(args.process_batch), bool(args.reward_amplify))


def peak_memory_line(device):
    if device.type == "cuda":
        gb = torch.cuda.max_memory_allocated(device) / 1024**3
        return f"The maximum GPU memory occupied by this program is {gb:.2f} GB"
    gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux
    return f"The maximum resident memory of this program is {gb:.2f} GB"


def run_set(args, set_id, name, root, policy, reward, scaler, amp, device):
    items, classnames = load_test_set(name, root)
    fine = is_fine_grained(name)
    steps = steps_for(args, fine)
    if reward is not None and steps > 0 and args.sample_k > len(classnames):
        raise ValueError(f"--sample_k {args.sample_k} is more than the {len(classnames)} classes of {set_id} ({name}): "
                         f"use --sample_k {len(classnames)} or less")
    print(f"evaluating: {set_id} ({name}, {len(classnames)} classes, {steps} steps)")
    tokenized = policy.start_dataset(classnames)
    if reward is not None:
        with torch.autocast(device_type=device.type, enabled=amp):
            reward.set_class_features(tokenized)
    optimizer = None
    if steps > 0:
        optimizer = torch.optim.AdamW(policy.trainable_parameters(), args.lr, weight_decay=args.weight_decay)
    adapter = Adapter(policy, optimizer, steps, args.selection_p, reward, scaler, amp,
                      args.min_entropy_w if args.min_entropy_reg else 0.0)
    n_views = 1 if args.method == "zeroshot" else args.batch_size
    size = policy.clip_model.visual.input_resolution
    builder = ViewBuilder(size, n_views, bool(args.augmix) and fine, bool(args.hard_aug), args.seed)
    print(f"views per image: {n_views} (AugMix: {builder.use_augmix}); number of test samples: {len(items)}")
    loader = views_loader(items, builder, args.workers, args.seed, distributed.world_size(), distributed.rank())
    start = time.time()
    top1, top5, per_image = evaluate_set(adapter, loader, device, args.print_freq)
    seconds = time.time() - start
    print(f"The running time for dataset {set_id} is {seconds // 3600:.1f} Hour {seconds % 3600 / 60:.1f} Minute "
          f"({per_image:.3f} s per image)")
    print(peak_memory_line(device))
    if scaler is not None:
        counts = torch.tensor([adapter.skipped_updates, adapter.updates], dtype=torch.float64, device=device)
        skipped, updates = (int(c) for c in distributed.sum_over_ranks(counts).tolist())
        print(f"GradScaler skipped {skipped} of {updates} adaptation steps on {set_id} "
              f"(inf/NaN gradients: those images were predicted with fewer updates); loss scale now {scaler.get_scale():g}")
    print(f"=> Acc. on testset [{set_id}]: @1 {top1} / @5 {top5}\n")
    return top1, top5


def main(argv=None):
    parser = build_parser()
    args = check_args(parser, parser.parse_args(argv))
    try:
        sets = parse_test_sets(args.test_sets, args.root, args.image_folder)
    except ValueError as e:
        parser.error(str(e))
    with distributed.process_group(use_cuda=True) as ranks:
        return run(args, sets, ranks)


def select_device(args, ranks):
    """cuda:--gpu in one process; under torchrun process r drives GPU LOCAL_RANK; CPU without CUDA."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if ranks > 1:
        if args.gpu != 0:
            print(f"Note: --gpu {args.gpu} is not used under torchrun: process r drives GPU LOCAL_RANK (CUDA_VISIBLE_DEVICES picks them)")
        return torch.device(f"cuda:{distributed.local_rank()}")
    return torch.device(f"cuda:{args.gpu}")


def run(args, sets, ranks):
    """Every test set in this process (under torchrun: this rank's share of each set's images)."""
    if ranks > 1 and args.momentum_update:
        raise ValueError(
            "--momentum_update 1 carries the adapted image encoder from one image to the next in the run's "
            "order, which one process alone has: run tta.py without torchrun (NPROC=1)"
        )
    main_process = distributed.is_main_process()
    if main_process:
        os.makedirs(args.output, exist_ok=True)
        setup_logger(args.output)
    try:
        print(f"Command: {' '.join(sys.argv)}\n{vars(args)}")
        if ranks > 1:
            print(f"torchrun: {ranks} processes, each adapting to 1/{ranks} of the images (rank 0 writes the log and results)")
        if main_process:
            with open(os.path.join(args.output, "hparams_train.json"), "w") as f:
                json.dump(vars(args), f, indent=4, sort_keys=True)
        set_random_seed(args.seed)
        device = select_device(args, ranks)
        amp = args.prec == "amp" and device.type == "cuda"
        if args.prec == "amp" and not amp:
            print("PREC amp needs CUDA: running in fp32 on cpu")
        scaler = torch.amp.GradScaler(device.type, init_scale=1000) if amp else None
        policy = build_policy(args, device)
        reward = build_reward(args, device)
        results = []
        for set_id, name, root in sets:
            top1, top5 = run_set(args, set_id, name, root, policy, reward, scaler, amp, device)
            results.append((set_id, name, top1, top5))
        if main_process:
            table = write_results(args.output, args.method, results)
            print(f"======== Result Summary ========\n{args.output}\n{table}")
        return results
    finally:
        restore_stdout()
