"""tta.py's main: build the student, the reward CLIP(s) and the views, then adapt on every test set."""
import json
import os
import sys
import time
from dataclasses import dataclass

import torch

from engine import distributed
from engine.utils import set_random_seed, setup_logger
from engine.utils.logger import restore_stdout
from engine.utils.tools import write_text_atomic
from tta.core.models import clip_file, load_clip_model, peak_memory_line
from tta.core.record import TTARecord
from tta.core.rewards import REFERENCE_MULTIPLE, CLIPReward, normalised_weights

from .adapt import Adapter, evaluate_set
from .cli import build_parser, check_args, steps_for
from .data import is_fine_grained, load_test_set, parse_test_sets, views_loader
from .policy import PromptPolicy, VisualPolicy, coop_checkpoint_file, load_coop_context
from .results import results_table, write_results
from .views import ViewBuilder


def reward_names(args):
    """[(flag, CLIP name or file)] of the reward models (none for zeroshot and tpt)."""
    if not args.method.startswith("rlcf"):
        return []
    if args.multiple_reward_models:
        return [(f"--reward_archs[{i}]", name) for i, name in enumerate(args.reward_archs or REFERENCE_MULTIPLE)]
    return [("--reward_arch", args.reward_arch)]


def weights_files(args):
    """{flag: file} of every weights file the run reads, each checked (or downloaded) before any image."""
    files = {"-a": clip_file(args.arch, "-a/--arch")}
    files.update({flag: clip_file(name, flag) for flag, name in reward_names(args)})
    if args.load and args.method != "rlcf-tune":
        files["--load"] = coop_checkpoint_file(args.load)
        if not os.path.isfile(files["--load"]):
            raise FileNotFoundError(f'--load "{args.load}": no such CoOp checkpoint file or train.py output folder')
    return files


def build_policy(args, device, files):
    return policy_for(args, load_clip_model(files["-a"], device), files)


def policy_for(args, student, files=None):
    """The adapted part of ``student`` (a loaded CLIP) for args.method."""
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
        init_ctx = load_coop_context(files["--load"], n_ctx, student.ln_final.weight.shape[0])
        init_ctx = init_ctx.to(student.logit_scale.device)
    return PromptPolicy(student, n_ctx, ctx_init, init_ctx, args.class_chunk)


def build_reward(args, device, files=None):
    flags = reward_names(args)
    if not flags:
        return None
    names = [name for _, name in flags]
    weights = None
    if args.multiple_reward_models:
        if args.weighted_scores:
            weights = normalised_weights(names, args.reward_weights)
        else:
            weights = [1.0 / len(names)] * len(names)
    files = files or {flag: clip_file(name, flag) for flag, name in flags}
    return reward_for(args, [load_clip_model(files[flag], device) for flag, _ in flags], names, weights)


def reward_for(args, models, names, weights=None):
    """The CLIPReward of the loaded reward CLIPs ``models`` (named ``names``, weighted ``weights``)."""
    print(f"CLIPRewards: {names}, weights {weights}, sample_k {args.sample_k}, reward_process {args.reward_process}, "
          f"process_batch {args.process_batch}, reward_amplify {args.reward_amplify}")
    return CLIPReward(models, weights, args.clipscore_weight, args.sample_k, bool(args.reward_process),
                      bool(args.process_batch), bool(args.reward_amplify))


@dataclass
class TestSet:
    """A test set, read and checked before any image is adapted to."""

    set_id: str
    name: str
    items: list
    classnames: list
    steps: int
    fine: bool


def prepare_set(args, set_id, name, root):
    items, classnames = load_test_set(name, root)
    fine = is_fine_grained(name)
    steps = steps_for(args, fine)
    if args.method.startswith("rlcf") and steps > 0 and args.sample_k > len(classnames):
        raise ValueError(f"--sample_k {args.sample_k} is more than the {len(classnames)} classes of {set_id} ({name}): "
                         f"use --sample_k {len(classnames)} or less")
    return TestSet(set_id, name, items, classnames, steps, fine)


def run_set(args, test_set, policy, reward, scaler, amp, device):
    set_id, name, items, classnames = test_set.set_id, test_set.name, test_set.items, test_set.classnames
    fine, steps = test_set.fine, test_set.steps
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
    # everything the run reads is checked before the first image: weights, earlier runs, test sets
    files = weights_files(args)
    record = TTARecord(args, files)
    record.check()
    main_process = distributed.is_main_process()
    if main_process:
        os.makedirs(args.output, exist_ok=True)
        setup_logger(args.output)
    try:
        print(f"Command: {' '.join(sys.argv)}\n{vars(args)}")
        if ranks > 1:
            print(f"torchrun: {ranks} processes, each adapting to 1/{ranks} of the images (rank 0 writes the log and results)")
        test_sets = [prepare_set(args, set_id, name, root) for set_id, name, root in sets]
        record.check_sets(test_sets)
        if main_process:
            write_text_atomic(os.path.join(args.output, "hparams_train.json"), json.dumps(vars(args), indent=4, sort_keys=True))
        set_random_seed(args.seed)
        device = select_device(args, ranks)
        amp = args.prec == "amp" and device.type == "cuda"
        if args.prec == "amp" and not amp:
            print("PREC amp needs CUDA: running in fp32 on cpu")
        scaler = torch.amp.GradScaler(device.type, init_scale=1000) if amp else None
        policy = reward = None
        if any(record.finished(t.set_id) is None for t in test_sets):  # else every set is kept: nothing to build
            policy = build_policy(args, device, files)
            reward = build_reward(args, device, files)
        record.start()
        results = run_sets(args, test_sets, record, policy, reward, scaler, amp, device)
        record.finish()
        if main_process:
            print(f"======== Result Summary ========\n{args.output}\n{results_table(args.method, results)}")
        return results
    finally:
        restore_stdout()


def run_sets(args, test_sets, record, policy, reward, scaler, amp, device):
    """Every set in order; a set an earlier run of this command finished is kept. results.json and
    the table are written after each set, so a stopped run keeps the sets it finished."""
    results = []
    for test_set in test_sets:
        done = record.finished(test_set.set_id)
        if done is not None:
            print(f"=> {test_set.set_id}: finished by an earlier run of this command (@1 {done[0]} / @5 {done[1]}): kept")
            top1, top5 = done
        else:
            try:
                top1, top5 = run_set(args, test_set, policy, reward, scaler, amp, device)
            except KeyboardInterrupt:
                kept = ", ".join(r[0] for r in results) or "none"
                print(f"Interrupted during set {test_set.set_id}: the finished sets ({kept}) are kept in "
                      f"{args.output}/results.json; rerun the same command to run the others")
                raise
            record.finish_set(test_set, top1, top5)
        results.append((test_set.set_id, test_set.name, top1, top5))
        if distributed.is_main_process():
            write_results(args.output, args.method, results)
    return results
