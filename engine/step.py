"""The training step, in one place (detectron2's SimpleTrainer.run_step and AMPTrainer are the model).

A trainer declares its precision once (``Precision.resolve(TRAINER.<NAME>.PREC, device)``); the
step owns everything between a batch's inputs and the optimizers having stepped:

    zero_grad
    for each of the TRAIN.GRAD_ACCUM micro-batches (weight w = its share of the batch):
        under autocast (PREC amp) and DistributedDataParallel's no_sync (all but the last):
            loss, parts = losses(*chunk)
            the non-finite guard: stop before any update on a NaN / inf value
            backward of w * loss (through the GradScaler under PREC amp)
    every distinct optimizer steps once (GradScaler.step / update; a skipped update is reported)

The logged values are the weighted means over the micro-batches, averaged over the ranks.
The learning rate is not the step's: TrainerX steps the schedulers once per epoch (Dassl timing).
"""
import contextlib
from dataclasses import dataclass

import torch

from . import distributed
from .utils.faults import NonFiniteLossError, nonfinite_parts
from .utils.micro_batches import micro_batches

PRECISIONS = ("fp16", "fp32", "amp")


@dataclass
class Precision:
    """The precision a trainer runs in: ``name`` fp16 (the reference's pure half: CLIP and the heads in
    fp16, plain backward), fp32, or amp (fp32 weights, autocast forward, ``scaler`` a GradScaler)."""

    name: str = "fp32"
    scaler: object = None  # torch.amp.GradScaler under amp, else None
    device_type: str = "cpu"

    @classmethod
    def resolve(cls, prec, device):
        """The precision that runs for config value ``prec`` on ``device``: half precision (fp16, amp)
        needs CUDA, so CPU runs fp32 (one line says so)."""
        name = resolve_precision(prec, device)
        scaler = torch.amp.GradScaler(device.type) if name == "amp" else None
        return cls(name, scaler, device.type)

    def autocast(self):
        """The forward pass's context: autocast under amp, a no-op otherwise."""
        return torch.autocast(device_type=self.device_type, enabled=self.scaler is not None)


def resolve_precision(prec, device):
    """The precision name that runs: half precision (fp16, amp) needs CUDA, so CPU runs fp32."""
    if prec not in PRECISIONS:
        raise ValueError(f'PREC must be one of {PRECISIONS}, but got "{prec}"')
    if prec != "fp32" and device.type != "cuda":
        print(f"PREC {prec} needs CUDA: running in fp32 on {device.type}")
        return "fp32"
    return prec


def check_finite(values):
    """The non-finite guard: raise NonFiniteLossError (before any update) when a logged value is NaN / inf."""
    if nonfinite_parts(values):
        raise NonFiniteLossError(parts=values)


def check_finite_loss(loss):
    """The same guard on a loss tensor, for a trainer that calls the update primitives itself."""
    if not torch.isfinite(loss).all():
        raise NonFiniteLossError()


class TrainingStep:
    """zero_grad, backward and update of one trainer's optimizers, and the whole step (``run``).

    ``on_skipped_update()`` is called when the GradScaler skipped an update (inf / NaN gradients).
    """

    def __init__(self, precision, on_skipped_update):
        self.precision = precision
        self.on_skipped_update = on_skipped_update

    def zero_grad(self, optims):
        for optim in optims:
            optim.zero_grad()

    def backward(self, loss):
        """Back-propagate ``loss``; gradients add up until ``update`` (micro-batches).

        Under amp the loss was computed under autocast and is scaled first (AMPTrainer); fp16 and
        fp32 back-propagate plainly (fp16 is the reference's pure-half update).
        """
        if self.precision.scaler is None:
            check_finite_loss(loss)  # under amp the GradScaler skips a non-finite update instead
        self._backward(loss)

    def _backward(self, loss):
        scaler = self.precision.scaler
        if scaler is None:
            loss.backward()
        else:
            scaler.scale(loss).backward()

    def update(self, optims):
        """Step every optimizer once (through the GradScaler under amp)."""
        scaler = self.precision.scaler
        if scaler is None:
            for optim in optims:
                optim.step()
            return
        scale = scaler.get_scale()
        for optim in optims:
            scaler.step(optim)
        scaler.update()
        if scaler.get_scale() < scale:  # update() backs off exactly when step() skipped
            self.on_skipped_update()

    def run(self, inputs, losses, optims, grad_accum, device):
        """One update on a batch's ``inputs`` (a tuple): ``losses(*inputs)`` -> (loss, {name: value}).

        ``losses`` may be a DistributedDataParallel module (gradients averaged over the ranks in the
        last micro-batch's backward). Returns the logged values {"loss": ..., name: ...}.
        """
        chunks = micro_batches(inputs, grad_accum)
        self.zero_grad(optims)
        summary = {}
        for i, (weight, chunk) in enumerate(chunks):
            last = i == len(chunks) - 1
            no_sync = getattr(losses, "no_sync", None)
            with contextlib.nullcontext() if last or no_sync is None else no_sync():
                with self.precision.autocast():
                    loss, parts = losses(*chunk)
                values = {"loss": loss.item(), **{k: float(v) for k, v in parts.items()}}
                check_finite(values)
                self._backward(loss if weight is None else loss * weight)
            for k, v in values.items():
                summary[k] = summary.get(k, 0.0) + (v if weight is None else v * weight)
        self.update(optims)
        return distributed.mean_over_ranks(summary, device)
