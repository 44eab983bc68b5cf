"""DistributedDataParallel around a trainer's loss.

Trainers compute their loss through methods of several modules (the prompted CLIP, a cache, a
teacher), not through one ``forward``. LossModule gathers the trainable modules under one
module whose forward is the trainer's loss function, so DistributedDataParallel registers every
trainable parameter and averages their gradients during backward, as it does for a model.
"""
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..utils.tools import distinct
from .context import is_distributed


class LossModule(nn.Module):
    """``modules`` (deduplicated) as children; forward(*inputs) = loss_fn(*inputs)."""

    def __init__(self, modules, loss_fn):
        super().__init__()
        self.trainable = nn.ModuleList(distinct(modules))
        self.loss_fn = loss_fn

    def forward(self, *inputs):
        return self.loss_fn(*inputs)


def wrap_losses(modules, loss_fn, device):
    """DistributedDataParallel over ``modules`` computing ``loss_fn``; None in a single process.

    Every trainable parameter gets a gradient in every step in all trainers here
    (find_unused_parameters off: no extra graph traversal; a trainer that leaves one unused gets
    DistributedDataParallel's error naming it). Buffers are synchronised once, at construction:
    every rank then keeps them identical itself (GlobalBatchNorm statistics, caches written
    from the gathered batch).
    """
    if not is_distributed():
        return None
    device_ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(
        LossModule(modules, loss_fn), device_ids=device_ids, find_unused_parameters=False, forward_sync_buffers=False
    )
