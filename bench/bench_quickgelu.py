"""What QuickGELU costs in an fp32 CPU forward of a ViT-B/16-shaped CLIP (random weights), and the
eval throughput of the bare image encoder and of CoOp's evaluation path with each activation path.

Variants of one image encoder (same weights), timed alternately so load changes hit them alike:
- eager:    the reference expression x * sigmoid(1.702 x) (three hidden-size tensors per block)
- identity: the activation replaced by identity; eager - identity is the activation's share
- in-place: the default QuickGELU(inplace=True), bit-identical to eager (checked here too)
- compiled: with --compile, the encoder under torch.compile (MODEL.BACKBONE.COMPILE)
and CoOp's evaluation (PromptTrainer.model_inference: image features against the class text,
computed once per evaluation as in a test run) with eager, in-place and (--compile) compiled.

Each thread count runs in its own process (torch.compile bakes the thread count into its
kernels). Times: wall-clock median [min, max] over the repeats, img/s from the median, and the
median CPU time of this process (at 1 thread it does not count the time other processes hold the
core, so it is steadier on a shared machine). The activation's share is the median [min, max]
over the repeats of (eager - identity) / eager, in wall and in CPU time, and its share of the
self CPU time of one eager forward under torch.profiler.

usage: python bench/bench_quickgelu.py [--threads 1 2] [--batch 1 8] [--repeats 5] [--classes 100] [--compile]
                                      [--shape vit-b16|tiny]
"""
import argparse
import copy
import os
import statistics
import subprocess
import sys
import time
import types

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from clip.layers import QuickGELU  # noqa: E402
from tools.random_clips import SHAPES, student_clip  # noqa: E402
from engine.config import CfgNode  # noqa: E402
from trainers.clip_backbone import compile_image_encoder  # noqa: E402
from trainers.coop import CustomCLIP  # noqa: E402
from trainers.prompt_trainer import PromptTrainer  # noqa: E402

WORDS = ["tench", "goldfish", "great white shark", "tiger shark", "hammerhead shark", "electric ray", "stingray"]
SMALLEST = ["--shape", "tiny", "--threads", "1", "--batch", "1", "--repeats", "1", "--classes", "4"]


def set_activation(visual, make):
    """Give every MLP of the image encoder the activation ``make()``."""
    for block in visual.transformer.resblocks:
        block.mlp.gelu = make()


def coop_evaluator(clip_model, n_classes):
    """What CoOp's evaluation runs per batch (model_inference), with its class text computed once."""
    prompt_cfg = CfgNode(dict(N_CTX=16, CSC=False, CTX_INIT="", PREC="fp32", CLASS_TOKEN_POSITION="end"))
    names = [f"{WORDS[i % len(WORDS)]} {i}" for i in range(n_classes)]
    size = clip_model.visual.input_resolution
    model = CustomCLIP(prompt_cfg, (size, size), names, clip_model).eval()
    trainer = types.SimpleNamespace(model=model)  # what model_inference reads
    trainer.image_features = types.MethodType(PromptTrainer.image_features, trainer)
    trainer.logits_from_features = types.MethodType(PromptTrainer.logits_from_features, trainer)
    with torch.no_grad():
        trainer._eval_text = model.text_features()  # [C, D], once per evaluation
    return model, types.MethodType(PromptTrainer.model_inference, trainer)


def activation_profile_share(visual, images):
    """Share of aten::sigmoid + aten::mul (in the ViT only QuickGELU's) in one eager forward's self CPU time."""
    from torch.profiler import profile

    with profile() as prof:
        visual(images)
    times = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    return (times.get("aten::sigmoid", 0) + times.get("aten::mul", 0)) / sum(times.values())


def summary(values):
    return statistics.median(values), min(values), max(values)


def run_one(args, threads):
    """Every batch size at one thread count, in this process."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    clip_model = student_clip(args.shape)
    visual = clip_model.visual
    coop, coop_inference = coop_evaluator(clip_model, args.classes)
    compiled = None
    if args.compile:
        compiled = copy.deepcopy(visual)
        set_activation(compiled, QuickGELU)
        if not compile_image_encoder(compiled, torch.device("cpu")):
            compiled = None
    activations = {"eager": QuickGELU, "identity": nn.Identity, "in-place": lambda: QuickGELU(inplace=True)}

    def bare(activation):
        return lambda x: (set_activation(visual, activations[activation]), visual(x))[1]

    def coop_eval(activation):
        def run(x):
            set_activation(visual, activations[activation])
            coop.image_encoder = visual
            return coop_inference(x)

        return run

    def coop_compiled(x):
        coop.image_encoder = compiled
        return coop_inference(x)

    runs = {  # (path, activation): one evaluation batch
        ("bare", "eager"): bare("eager"),
        ("bare", "identity"): bare("identity"),
        ("bare", "in-place"): bare("in-place"),
        ("coop", "eager"): coop_eval("eager"),
        ("coop", "in-place"): coop_eval("in-place"),
    }
    if compiled is not None:
        runs["bare", "compiled"] = compiled
        runs["coop", "compiled"] = coop_compiled
    for batch in args.batch:
        images = torch.randn(batch, 3, visual.input_resolution, visual.input_resolution)
        wall, cpu = {key: [] for key in runs}, {key: [] for key in runs}
        with torch.no_grad():
            outputs = {}
            for key, fn in runs.items():  # warm-up (and compilation), outputs for the exactness check
                start = time.perf_counter()
                outputs[key] = fn(images)
                if key[1] == "compiled":
                    print(f"  {LABELS[key]}: first call {time.perf_counter() - start:.1f} s (compiles)")
            for _ in range(args.repeats):
                for key, fn in runs.items():
                    start, start_cpu = time.perf_counter(), time.process_time()
                    fn(images)
                    wall[key].append(time.perf_counter() - start)
                    cpu[key].append(time.process_time() - start_cpu)
            set_activation(visual, QuickGELU)
            profile_share = activation_profile_share(visual, images)
        print(f"cpu threads={threads} fp32 {args.shape} image encoder (random weights), batch {batch}, "
              f"{args.repeats} repeats, CoOp with {args.classes} classes")
        report(batch, wall, cpu, outputs, profile_share)


LABELS = {
    ("bare", "eager"): "bare encoder, eager QuickGELU",
    ("bare", "identity"): "bare encoder, identity activation",
    ("bare", "in-place"): "bare encoder, in-place QuickGELU (default)",
    ("bare", "compiled"): "bare encoder, torch.compile",
    ("coop", "eager"): "CoOp eval (model_inference), eager QuickGELU",
    ("coop", "in-place"): "CoOp eval (model_inference), in-place QuickGELU (default)",
    ("coop", "compiled"): "CoOp eval (model_inference), torch.compile",
}


def report(batch, wall, cpu, outputs, profile_share):
    print(f"  {'':58s} wall: median [min, max]      img/s   CPU time (median)")
    for key, values in wall.items():
        median, low, high = summary(values)
        print(f"  {LABELS[key]:58s} {median:7.3f} s [{low:.3f}, {high:.3f}]  {batch / median:6.2f}  "
              f"{statistics.median(cpu[key]):7.3f} s")
    for name, times in (("wall", wall), ("CPU time", cpu)):
        eager, identity, inplace = times["bare", "eager"], times["bare", "identity"], times["bare", "in-place"]
        share = summary([100 * (e - i) / e for e, i in zip(eager, identity)])
        speed = summary([e / f for e, f in zip(eager, inplace)])
        print(f"  {name}: QuickGELU share of the eager forward {share[0]:.1f}% [{share[1]:.1f}%, {share[2]:.1f}%] "
              f"(eager - identity); in-place / eager speed {speed[0]:.3f}x [{speed[1]:.3f}, {speed[2]:.3f}]")
    print(f"  profiler: QuickGELU {100 * profile_share:.1f}% of the eager forward's self CPU time")
    exact = {path: torch.equal(outputs[path, "in-place"], outputs[path, "eager"]) for path in ("bare", "coop")}
    print(f"  in-place vs eager: features bit-identical {exact['bare']}, CoOp logits bit-identical {exact['coop']}")
    if ("bare", "compiled") in outputs:
        diff = {path: (outputs[path, "compiled"] - outputs[path, "eager"]).abs().max().item() for path in ("bare", "coop")}
        print(f"  torch.compile vs eager: max abs diff features {diff['bare']:.2e}, CoOp logits {diff['coop']:.2e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--compile", action="store_true", help="also time the encoder under torch.compile")
    parser.add_argument("--shape", default="vit-b16", choices=SHAPES, help="tiny: the smallest mode (tests)")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)  # one thread count, here
    args = parser.parse_args()
    if args.in_process:
        run_one(args, args.threads[0])
        return
    for threads in args.threads:
        command = [sys.executable, os.path.abspath(__file__), *sys.argv[1:]]
        subprocess.run(command + ["--threads", str(threads), "--in-process"], check=True)


if __name__ == "__main__":
    main()
