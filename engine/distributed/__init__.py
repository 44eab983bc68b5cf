"""Multi-process training on torch.distributed (torchrun): process group, sharding, gathering.

Nothing here holds state of its own: the process group torchrun's environment describes is
torch.distributed's, and every helper degrades to the single-process behaviour when no group
is initialised (``python train.py``), so single-process runs are unchanged.
"""
from .context import (
    barrier,
    init_from_environment,
    is_distributed,
    is_main_process,
    local_rank,
    process_group,
    rank,
    shutdown,
    world_size,
)
from .gather import all_gather_cat, all_gather_objects, broadcast_object, mean_over_ranks, sum_over_ranks
from .batchnorm import GlobalBatchNorm, convert_batchnorm
from .sampler import ShardedSampler
from .wrap import LossModule, wrap_losses

__all__ = [
    "GlobalBatchNorm",
    "LossModule",
    "ShardedSampler",
    "all_gather_cat",
    "all_gather_objects",
    "barrier",
    "broadcast_object",
    "convert_batchnorm",
    "init_from_environment",
    "is_distributed",
    "is_main_process",
    "local_rank",
    "mean_over_ranks",
    "process_group",
    "rank",
    "shutdown",
    "sum_over_ranks",
    "world_size",
    "wrap_losses",
]
