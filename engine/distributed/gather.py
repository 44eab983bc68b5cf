"""Collectives the trainers need, each the identity in a single process."""
import torch
import torch.distributed as dist

from .context import is_distributed, world_size


def all_gather_objects(obj):
    """[obj of rank 0, obj of rank 1, ...] on every rank (picklable objects, small)."""
    if not is_distributed():
        return [obj]
    gathered = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj):
    """Rank 0's ``obj`` on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@torch.no_grad()
def all_gather_cat(tensor):
    """Every rank's ``tensor`` [n_r, ...] concatenated in rank order: [sum n_r, ...].

    The leading sizes may differ between ranks (padded for the transfer, trimmed after).
    No gradient flows through it.
    """
    if not is_distributed():
        return tensor
    n = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    sizes = [int(s.item()) for s in sizes]
    longest = max(sizes)
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def mean_over_ranks(values, device):
    """{name: float} averaged over the ranks (every rank holds the same names, in the same order)."""
    if not is_distributed() or not values:
        return values
    names = list(values)
    stacked = torch.tensor([float(values[k]) for k in names], dtype=torch.float64, device=device)
    dist.all_reduce(stacked)
    stacked /= world_size()
    return dict(zip(names, stacked.tolist()))


class _SumOverRanks(torch.autograd.Function):
    """y = sum over ranks of x; every rank's loss depends on every rank's x, so the gradient
    of x is the sum over ranks of the gradients of y."""

    @staticmethod
    def forward(ctx, tensor):
        total = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad):
        total = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total


def sum_over_ranks(tensor):
    """The element-wise sum of every rank's ``tensor``, differentiable (the identity in one process).

    Written here rather than taken from torch.distributed.nn, which is deprecated (a FutureWarning
    at every call).
    """
    if not is_distributed():
        return tensor
    return _SumOverRanks.apply(tensor)
