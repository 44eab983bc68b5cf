"""One-shot GPU check: every trainer for a few steps in fp16, amp and fp32, CUDA fp32 against CPU
fp32, DDP with 2 processes (2+ GPUs), throughput of ours against the bare CLIP image encoder,
and our PIL transforms against torchvision's. One summary line per check; exit status 1 when a
check fails, 2 without CUDA.

usage: bash bench/gpu_check.sh                        # the whole check on a CUDA machine (budget 8 min)
       python -m bench.gpu_check --device cpu --quick  # the same logic on the CPU, a small subset

Random-weight CLIPs (a tiny one and one of ViT-B/16's shape) and generated images: nothing is
downloaded. With ``--device cpu`` the "CUDA" side of each comparison is the CPU again and
fp16 / amp run in fp32 (resolve_precision), so only the plumbing is exercised.
"""
import argparse
import contextlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import clip  # noqa: E402
from bench.gpu_check_setup import REPO, SIZE_NAMES, SIZES, SPEC_BY_LABEL, SPECS, argv_of, build, prepare  # noqa: E402
from clip.model import convert_weights  # noqa: E402

PRECISIONS = ("fp16", "amp", "fp32")
TOLERANCE = 1e-4  # CUDA fp32 vs CPU fp32: max |diff| <= TOLERANCE * max(1, max |CPU value|)
# ViT-B/16 runs cost CPU time in the comparison: a subset there, every trainer on the tiny CLIP
COMPARED_AT_VITB16 = ("CoOp", "MaPLe", "PromptSRC", "PromptKD", "TextRefiner-CoOp")
QUICK = ("CoOp", "TextRefiner-CoOp", "ZeroshotCLIP")
THROUGHPUT = ("CoOp", "IVLP", "TextRefiner-CoOp")
SMALLEST = ["--device", "cpu", "--quick", "--trainers", "CoOp", "--steps", "1"]  # what tests/test_bench.py runs


class Summary:
    """The check's lines, printed to ``stream`` as they come (the trainers' own output goes to the log)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.lines, self.failed = [], 0
        self.last = time.perf_counter()

    def add(self, status, name, detail):
        """status: PASS, FAIL, SKIP or INFO; each line ends with the seconds since the previous one."""
        self.failed += status == "FAIL"
        now = time.perf_counter()
        line = f"{status:4s}  {name}: {detail} [{now - self.last:.1f} s]"
        self.last = now
        self.lines.append(line)
        print(line, file=self.stream, flush=True)


# ----- one trainer ---------------------------------------------------------------------------------
def first_batches(trainer, n):
    batches = []
    for batch in trainer.train_loader_x:
        batches.append({"img": batch["img"], "label": batch["label"]})
        if len(batches) == n:
            break
    return batches


def train_steps(trainer, batches):
    """Losses of one forward_backward per batch (a non-finite loss raises, naming the step)."""
    trainer.set_model_mode("train")
    losses = []
    for i, batch in enumerate(batches):
        trainer.batch_idx = i
        losses.append(trainer.forward_backward(batch)["loss"])
    return losses


@torch.no_grad()
def eval_logits(trainer, images):
    """The evaluation logits [B, C] of ``images`` (test split classes), as float32 on the CPU."""
    trainer.set_model_mode("eval")
    trainer.before_evaluation("test")
    logits = trainer.model_inference(images.to(trainer.device))  # as SimpleTrainer.test: no autocast
    trainer.after_evaluation("test")
    return logits.float().cpu()


def copy_trainable_state(src, dst):
    """Give ``dst`` the weights and buffers of ``src`` (prompt inits draw from the device's RNG)."""
    for name in src.get_model_names():
        source, target = src._models[name], dst._models[name]
        target.load_state_dict(source.state_dict())
        target_buffers = dict(target.named_buffers())
        with torch.no_grad():  # non-persistent buffers too, e.g. TextRefiner's cache
            for key, value in source.named_buffers():
                target_buffers[key].copy_(value)


def check_precisions(summary, ws, spec, size, device, tmp, steps, precisions=PRECISIONS):
    for prec in precisions[-1:] if spec.eval_only else precisions:  # ZeroshotCLIP: its own precision
        name = f"{spec.label} {'eval' if spec.eval_only else prec} {SIZE_NAMES[size]}"
        try:
            trainer = build(ws, spec, size, prec, device, os.path.join(tmp, f"{spec.label}-{size}-{prec}"))
            losses = [] if spec.eval_only else train_steps(trainer, first_batches(trainer, steps))
            logits = eval_logits(trainer, first_batches(trainer, 1)[0]["img"])
        except Exception as e:  # noqa: BLE001  (a failing trainer is a FAIL line, the others still run)
            summary.add("FAIL", name, _error(e))
            continue
        finite = all(math.isfinite(v) for v in losses) and bool(torch.isfinite(logits).all())
        skipped = getattr(trainer, "skipped_updates", 0)
        detail = "" if spec.eval_only else f"losses {[round(v, 4) for v in losses]}, "
        detail += f"eval logits finite {bool(torch.isfinite(logits).all())}"
        if trainer.scaler is not None:
            detail += f", GradScaler skipped {skipped} of {len(losses)} updates"
        summary.add("PASS" if finite else "FAIL", name, detail)


def compare_devices(summary, ws, spec, size, device, tmp):
    """One step on the same batch from the same weights, on the CPU and on ``device``, fp32."""
    name = f"{spec.label} {device} fp32 vs cpu fp32 {SIZE_NAMES[size]}"
    try:
        cpu = build(ws, spec, size, "fp32", "cpu", os.path.join(tmp, f"{spec.label}-{size}-cmp-cpu"), batch=2)
        other = build(ws, spec, size, "fp32", device, os.path.join(tmp, f"{spec.label}-{size}-cmp-dev"), batch=2)
        batch = first_batches(cpu, 1)
        if spec.eval_only:
            losses = [0.0, 0.0]
        else:
            copy_trainable_state(cpu, other)
            losses = [train_steps(cpu, batch)[0], train_steps(other, batch)[0]]
        logits = [eval_logits(cpu, batch[0]["img"]), eval_logits(other, batch[0]["img"])]
    except Exception as e:  # noqa: BLE001
        summary.add("FAIL", name, _error(e))
        return
    loss_diff = abs(losses[0] - losses[1])
    logit_diff = (logits[0] - logits[1]).abs().max().item()
    ok = loss_diff <= TOLERANCE * max(1.0, abs(losses[0])) and logit_diff <= TOLERANCE * max(
        1.0, logits[0].abs().max().item()
    )
    if spec.eval_only and device == "cuda":  # ZeroshotCLIP runs fp16 on CUDA, as the reference
        summary.add("INFO", name, f"fp16 on CUDA by design: max |logit diff| {logit_diff:.3g}")
        return
    summary.add("PASS" if ok else "FAIL", name,
                f"loss diff {loss_diff:.3g}, max |logit diff| {logit_diff:.3g} (tolerance {TOLERANCE:g} relative)")


# ----- throughput ------------------------------------------------------------------------------
def _rate(fn, images, iters, device):
    fn()  # warm-up (cudnn autotuning, allocator)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return images * iters / (time.perf_counter() - start)


def throughput(summary, ws, size, device, tmp, train_batch, eval_batch, iters, trainers=THROUGHPUT):
    """img/s of a training step and of evaluation: ours against the bare CLIP image encoder (fp16 on CUDA)."""
    image = SIZES[size][0]
    gen = torch.Generator().manual_seed(0)
    x_train = torch.randn(train_batch, 3, image, image, generator=gen).to(device)
    x_eval = torch.randn(eval_batch, 3, image, image, generator=gen).to(device)
    targets = torch.randint(0, 3, (train_batch,), generator=gen).to(device)

    bare = clip.load("ViT-B/16", path=ws.clips[size], device="cpu")
    if device == "cuda":
        convert_weights(bare)
    bare = bare.to(device).visual

    def bare_eval():
        with torch.no_grad():
            bare(x_eval.type(bare.conv1.weight.dtype))

    def bare_train():
        bare.zero_grad(set_to_none=True)
        bare(x_train.type(bare.conv1.weight.dtype)).float().sum().backward()

    rates = {"bare encoder": (_rate(bare_train, train_batch, iters, device), _rate(bare_eval, eval_batch, iters, device))}
    del bare
    for label in trainers:
        trainer = build(ws, SPEC_BY_LABEL[label], size, "fp16", device, os.path.join(tmp, f"speed-{label}"))
        batch = {"img": x_train, "label": targets}
        trainer.set_model_mode("train")
        train_rate = _rate(lambda: trainer.forward_backward(batch), train_batch, iters, device)
        trainer.set_model_mode("eval")
        trainer.before_evaluation("test")

        def ours_eval():
            with torch.no_grad():
                trainer.model_inference(x_eval)

        rates[label] = (train_rate, _rate(ours_eval, eval_batch, iters, device))
        trainer.after_evaluation("test")
    prec = "fp16" if device == "cuda" else "fp32"  # half precision needs CUDA (resolve_precision)
    for label, (train_rate, eval_rate) in rates.items():
        summary.add("INFO", f"throughput {label} {SIZE_NAMES[size]} {device} {prec}",
                    f"train {train_rate:.1f} img/s (batch {train_batch}), eval {eval_rate:.1f} img/s (batch {eval_batch})")


# ----- DDP and transforms ------------------------------------------------------------------------
def check_ddp(summary, ws, tmp, device, timeout=180):
    count = torch.cuda.device_count() if device == "cuda" else 0
    if count < 2:
        summary.add("SKIP", "DDP 2 processes (torchrun)", f"needs 2 GPUs, found {count}")
        return
    out = os.path.join(tmp, "ddp")
    argv = argv_of(ws, SPEC_BY_LABEL["CoOp"], "tiny", "amp", "cuda", out)
    # torchrun, run through the interpreter of this check (the torchrun script may not be on PATH)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "train.py", *argv]
    start = time.time()
    try:
        run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        rc, tail = run.returncode, (run.stdout + run.stderr).strip().splitlines()[-3:]
    except subprocess.TimeoutExpired:
        rc, tail = "timeout", [f"no exit within {timeout} s"]
    ok = rc == 0 and os.path.exists(os.path.join(out, "results.json"))
    summary.add("PASS" if ok else "FAIL", "DDP 2 processes (torchrun, CoOp tiny, 1 epoch)",
                f"exit {rc}, results.json {'written' if ok else 'missing'}, {time.time() - start:.0f} s"
                + ("" if ok else f"; last lines: {' | '.join(tail)}"))


def check_transforms(summary, timeout=300):
    cmd = [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", "tests/test_transforms_torchvision.py"]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    lines = run.stdout.strip().splitlines() or [run.stderr.strip()[-200:]]
    skipped = next((line for line in lines if line.startswith("SKIPPED")), None)
    if run.returncode == 0 and skipped is None:
        summary.add("PASS", "PIL transforms vs torchvision", lines[-1])
    elif run.returncode in (0, 5) and skipped is not None:  # 5: the module skipped, nothing collected
        summary.add("SKIP", "PIL transforms vs torchvision", skipped)
    else:
        failed = [line for line in lines if line.startswith("FAILED")][:3]
        summary.add("FAIL", "PIL transforms vs torchvision", " | ".join(failed + [lines[-1]]))


# ----- main ----------------------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--quick", action="store_true", help=f"tiny CLIP, {', '.join(QUICK)} only, fp32 only")
    p.add_argument("--trainers", nargs="+", choices=[s.label for s in SPECS], help="only these trainers")
    p.add_argument("--sizes", nargs="+", choices=sorted(SIZES), help="CLIP sizes (default: tiny vitb16; --quick: tiny)")
    p.add_argument("--steps", type=int, default=3, help="training steps per trainer and precision")
    p.add_argument("--keep", default="", help="write the work files and the log here (default: a temporary folder)")
    p.add_argument("--budget-s", type=float, default=480.0, help="the whole check must end within this")
    return p.parse_args(argv)


def run(args, tmp, summary, log):
    device = args.device
    sizes = args.sizes or (["tiny"] if args.quick else ["tiny", "vitb16"])
    labels = args.trainers or (QUICK if args.quick else [s.label for s in SPECS])
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        ws = prepare(tmp, sizes)
    for size in sizes:
        steps = args.steps if size == "tiny" else min(args.steps, 2)
        for label in labels:
            spec = SPEC_BY_LABEL[label]
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                check_precisions(summary, ws, spec, size, device, tmp, steps, ("fp32",) if args.quick else PRECISIONS)
                if size == "tiny" or label in COMPARED_AT_VITB16:
                    compare_devices(summary, ws, spec, size, device, tmp)
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        speed_labels = [label for label in THROUGHPUT if label in labels]
        if device == "cuda" and "vitb16" in sizes:
            speed = dict(size="vitb16", train_batch=32, eval_batch=128, iters=5)
        else:  # the CPU: the plumbing only
            speed = dict(size=sizes[-1], train_batch=4, eval_batch=8, iters=1)
        guarded(summary, "throughput", throughput, summary, ws, device=device, tmp=tmp, trainers=speed_labels, **speed)
        guarded(summary, "DDP 2 processes (torchrun)", check_ddp, summary, ws, tmp, device)
    guarded(summary, "PIL transforms vs torchvision", check_transforms, summary)


def guarded(summary, name, check, *args, **kwargs):
    """Run ``check``; an exception it raises becomes a FAIL line and the check goes on."""
    try:
        check(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        summary.add("FAIL", name, _error(e))


def _error(e):
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def main(argv=None):
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("The GPU check needs a CUDA machine (torch.cuda.is_available() is False here). "
              "Run `python -m bench.gpu_check --device cpu --quick` to exercise its logic on the CPU.")
        return 2
    start = time.time()
    summary = Summary()
    tmp = args.keep or tempfile.mkdtemp(prefix="gpu_check_")
    os.makedirs(tmp, exist_ok=True)
    log_path = os.path.join(tmp, "gpu_check.log")
    print(f"GPU check on {args.device}" + (f" ({torch.cuda.get_device_name(0)})" if args.device == "cuda" else "")
          + f", torch {torch.__version__}; details in {log_path}" + ("" if args.keep else " (removed unless a check fails)"),
          flush=True)
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        # exact fp32 on CUDA for the comparison: no TF32 in matmuls and convolutions
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        with open(log_path, "w") as log:
            run(args, tmp, summary, log)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
        elapsed = time.time() - start
        summary.add("PASS" if elapsed <= args.budget_s else "FAIL", "runtime", f"{elapsed:.0f} s (budget {args.budget_s:.0f} s)")
        if not args.keep and not summary.failed:
            shutil.rmtree(tmp, ignore_errors=True)
        elif summary.failed:
            print(f"The trainers' output and the work files are in {tmp}")
    print(f"{summary.failed} of {len(summary.lines)} checks failed" if summary.failed else f"all {len(summary.lines)} checks passed or were skipped/informational")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
