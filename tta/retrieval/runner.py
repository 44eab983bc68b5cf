"""tta_ret.py's main: zero-shot retrieval, or adaptation to every query of one direction (RLCF, or
distillation from the reward CLIP)."""
import os
import sys
import time

import torch

from engine import distributed
from engine.utils import set_random_seed, setup_logger, write_json_atomic
from engine.utils.logger import restore_stdout
from tta.classification.runner import select_device
from tta.core.models import clip_file, load_clip_model, peak_memory_line
from tta.core.rewards import REFERENCE_MULTIPLE, CLIPReward, normalised_weights

from .adapt import QueryTuner
from .cli import build_parser, check_args
from .data import image_loader, load_retrieval_set
from .features import FeatureCache, data_digests, default_cache_dir, tokenize
from .metrics import best_ranks, both_metrics, direction_metrics, matrix_ranks, targets_of
from .objectives import DistillationObjective, RewardObjective
from .record import RetrievalRecord


def reward_flags(args):
    """[(flag, CLIP name or file)] of the reward CLIPs (none for zeroshot)."""
    if args.method == "zeroshot":
        return []
    if args.multiple_reward_models:
        return [(f"--reward_archs[{i}]", n) for i, n in enumerate(args.reward_archs or REFERENCE_MULTIPLE)]
    return [("--reward_arch", args.reward_arch)]


def weights_files(args):
    """{flag: file} of every CLIP the run reads, each checked (or downloaded) before any image."""
    files = {("-a" if len(args.arch) == 1 else f"-a[{i}]"): clip_file(a, "-a/--arch") for i, a in enumerate(args.arch)}
    files.update({flag: clip_file(name, flag) for flag, name in reward_flags(args)})
    return files


def reward_weights(args):
    if not args.multiple_reward_models:
        return None
    names = [name for _, name in reward_flags(args)]
    if args.weighted_scores:
        return normalised_weights(names, args.reward_weights)
    return [1.0 / len(names)] * len(names)


def loader_of(weights, device):
    """A memoised ``load()`` of the CLIP of file ``weights`` (loaded only if an embedding is not cached)."""
    loaded = []

    def load():
        if not loaded:
            loaded.append(load_clip_model(weights, device))
        return loaded[0]
    return load


def zero_shot_features(cache, files):
    """Per policy CLIP its (image embeddings [N_img, D_m], text embeddings [N_txt, D_m])."""
    features = []
    for flag, weights in files.items():
        load = loader_of(weights, cache.device)
        features.append((cache.get(weights, "image", load, flag), cache.get(weights, "text", load, flag)))
    return features


def zero_shot(data, features):
    """Both directions; several CLIPs: the mean of their cosine similarities."""
    image, text = [f[0] for f in features], [f[1] for f in features]
    n = len(features)

    def i2t(rows):  # [rows, N_txt]
        return sum(i[rows] @ t.t() for i, t in zip(image, text)) / n

    def t2i(rows):  # [rows, N_img]
        return sum(t[rows] @ i.t() for i, t in zip(image, text)) / n

    ranks_i2t = matrix_ranks(i2t, len(data.images), targets_of("image2text", data.txt2img, data.img2txt))
    ranks_t2i = matrix_ranks(t2i, len(data.texts), targets_of("text2image", data.txt2img, data.img2txt))
    return both_metrics(direction_metrics(ranks_i2t, "image2text"), direction_metrics(ranks_t2i, "text2image"))


def queries_of(args, data, size, indices):
    """Yield (query index, query) for the ``indices`` of the direction's queries: images [1, 3, H, W]
    or token ids [1, 77]."""
    if args.retrieval_task == "image2text":
        yield from zip(indices, image_loader([data.images[i] for i in indices], size, 1, args.workers))
    else:
        for i in indices:
            yield i, tokenize([data.texts[i]])


def sides(args):
    """(query side, gallery side) of --retrieval_task."""
    return ("image", "text") if args.retrieval_task == "image2text" else ("text", "image")


def adaptation_features(args, cache, files, load_policy):
    """(policy gallery [G, D], per reward CLIP: its gallery [G, D_m] and query embeddings [Q, D_m],
    and, for --method kd, the reward CLIP's exp(logit_scale) (else None))."""
    query_side, gallery_side = sides(args)
    reward_gallery, reward_queries, logit_scale = [], [], None
    for flag, _ in reward_flags(args):
        load = loader_of(files[flag], cache.device)
        reward_gallery.append(cache.get(files[flag], gallery_side, load, f"reward {flag}"))
        reward_queries.append(cache.get(files[flag], query_side, load, f"reward {flag}"))
        if args.method == "kd":
            logit_scale = load().logit_scale.exp().item()
    gallery = cache.get(files["-a"], gallery_side, load_policy, "policy")
    return gallery, reward_gallery, reward_queries, logit_scale


def objective_of(args, reward_gallery, logit_scale):
    """The loss each query is adapted to (tta.retrieval.objectives) and its log line."""
    names = [name for _, name in reward_flags(args)]
    if args.method == "kd":
        return (DistillationObjective(reward_gallery[0], logit_scale),
                f"distillation from {names[0]} (logit scale {logit_scale:g})")
    weights = reward_weights(args)
    reward = CLIPReward([], weights, args.clipscore_weight, args.sample_k, bool(args.reward_process),
                        bool(args.process_batch), bool(args.reward_amplify))
    reward.set_candidates(reward_gallery)
    return RewardObjective(reward), f"CLIPRewards: {names}, weights {weights}, sample_k {args.sample_k}"


def adapt_set(args, data, features, policy, amp):
    """RLCF or distillation on every query of --retrieval_task (under torchrun: every world_size-th
    query) -> metrics."""
    gallery, reward_gallery, reward_queries, logit_scale = features
    device = gallery.device
    query_side, gallery_side = sides(args)
    objective, described = objective_of(args, reward_gallery, logit_scale)
    print(f"{described}; {args.retrieval_task}: {len(getattr(data, query_side + 's'))} queries, gallery of "
          f"{gallery.shape[0]} {gallery_side}s, {args.tta_steps} steps")
    scaler = torch.amp.GradScaler(device.type, init_scale=1000) if amp and args.tta_steps > 0 else None
    tuner = QueryTuner(policy, args.retrieval_task, gallery, objective, args.tta_steps, args.lr, args.weight_decay,
                       scaler, amp, bool(args.momentum_update), args.tta_momentum, args.update_freq, args.update_w)
    targets = targets_of(args.retrieval_task, data.txt2img, data.img2txt)
    n = len(targets)
    ranks = torch.zeros(n, dtype=torch.long, device=device)
    world, rank = distributed.world_size(), distributed.rank()
    start, done = time.time(), 0
    mine = list(range(rank, n, world))  # under torchrun this process's share of the queries
    for i, query in queries_of(args, data, policy.visual.input_resolution, mine):
        scores = tuner(query.to(device), [q[i:i + 1] for q in reward_queries])  # [G]
        ranks[i] = best_ranks(scores[None], [targets[i]])[0]
        done += 1
        if done % args.print_freq == 0:
            print(f"[{done}/{len(mine)}] {(time.time() - start) / done:.3f} s per query")
    seconds = time.time() - start
    print(f"The running time for {data.name} {args.retrieval_task} is {seconds / 60:.1f} Minute "
          f"({seconds / max(done, 1):.3f} s per query)")
    if scaler is not None:
        print(f"GradScaler skipped {tuner.skipped_updates} of {tuner.updates} adaptation steps; "
              f"loss scale now {scaler.get_scale():g}")
    if world > 1:
        ranks = distributed.sum_over_ranks(ranks)
    return direction_metrics(ranks.cpu(), args.retrieval_task)


def main(argv=None):
    parser = build_parser()
    args = check_args(parser, parser.parse_args(argv))
    with distributed.process_group(use_cuda=True) as ranks:
        return run(args, ranks)


def run(args, ranks):
    if ranks > 1 and args.momentum_update:
        raise ValueError("--momentum_update 1 carries the adapted weights from one query to the next in the run's "
                         "order, which one process alone has: run tta_ret.py without torchrun (NPROC=1)")
    # everything the run reads is checked before the first image: weights, data, earlier runs
    files = weights_files(args)
    data = load_retrieval_set(args.dataset, args.root, args.ann_file, args.image_root)
    if args.method == "rlcf":  # the top-K candidates (distillation uses the whole gallery)
        gallery = len(data.texts if args.retrieval_task == "image2text" else data.images)
        if args.sample_k > gallery:
            raise ValueError(f"--sample_k {args.sample_k} is more than the {gallery} gallery items of {data.name} "
                             f"({args.retrieval_task}): use --sample_k {gallery} or less")
    digests = data_digests(data)
    record = RetrievalRecord(args, files, digests)
    record.check()
    set_id = f"{args.dataset}/{'zero_shot' if args.method == 'zeroshot' else args.retrieval_task}"
    record.check_sets([(set_id, data)])
    main_process = distributed.is_main_process()
    if main_process:
        os.makedirs(args.output, exist_ok=True)
        setup_logger(args.output)
    try:
        print(f"Command: {' '.join(sys.argv)}\n{vars(args)}")
        print(f"{data.name}: {len(data.images)} images, {len(data.texts)} captions ({data.ann_file})")
        metrics = record.finished(set_id)
        if metrics is not None:
            print(f"=> {set_id}: finished by an earlier run of this command: kept")
        else:
            record.start()
            metrics = run_set(args, data, digests, files, ranks)
            record.finish_set(set_id, data, metrics)
        record.finish()
        if main_process:
            write_results(args, metrics)
        print(f"{set_id}: {metrics}")
        return metrics
    finally:
        restore_stdout()


def run_set(args, data, digests, files, ranks):
    set_random_seed(args.seed)
    device = select_device(args, ranks)
    amp = args.precision == "amp" and device.type == "cuda"
    if args.precision == "amp" and not amp:
        print("PREC amp needs CUDA: running in fp32 on cpu")
    cache = FeatureCache(args.feature_cache or default_cache_dir(), data, digests, device, amp, args.workers,
                         args.text_bs)
    # under torchrun rank 0 encodes and caches the embeddings first, the others then read them
    main_process = distributed.is_main_process()
    if ranks > 1 and not main_process:
        distributed.barrier()
    load_policy = None if args.method == "zeroshot" else loader_of(files["-a"], device)
    features = (zero_shot_features(cache, files) if load_policy is None
                else adaptation_features(args, cache, files, load_policy))
    if ranks > 1 and main_process:
        distributed.barrier()
    if args.method == "zeroshot":
        metrics = zero_shot(data, features)
    else:
        metrics = adapt_set(args, data, features, load_policy(), amp)
    print(peak_memory_line(device))
    return metrics


def write_results(args, metrics):
    """results.json (the metrics, as computed) and, for an adaptation run, the reference's
    results_{retrieval_task}.json (rounded to 3 decimals as there)."""
    write_json_atomic(metrics, os.path.join(args.output, "results.json"))
    if args.method != "zeroshot":
        rounded = {k: round(v, 3) for k, v in metrics.items()}
        write_json_atomic(rounded, os.path.join(args.output, f"results_{args.retrieval_task}.json"))
