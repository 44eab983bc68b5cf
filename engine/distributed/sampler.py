"""Each rank's share of a Dassl sampler's order.

Rank 0 draws the global order of the configured sampler (RandomSampler, the domain and class
samplers, SequentialSampler) with its own generators, at the moment and with the draws a
single process makes, and sends it to the others; every rank keeps positions rank, rank + N,
rank + 2N, ... So batch k of the N ranks (B/N images each) holds exactly the images of global
batch k (positions kB .. kB+B-1) of the order one process with batch B would use. (With
deterministic transforms the orders are identical to the single-process run's; random
augmentation draws on each rank's generators, so rank 0's later orders differ from it.)
"""
from torch.utils.data import Sampler

from .context import is_main_process
from .gather import broadcast_object


class ShardedSampler(Sampler):
    """Rank ``rank`` of ``num_replicas`` takes every N-th index of ``base``'s order.

    from_rank0: rank 0 draws the order and sends it (training, random samplers); otherwise each
    rank iterates ``base`` itself (evaluation's sequential order).
    even: truncate the order to a multiple of N so every rank runs the same number of steps
    (training); otherwise the last ranks may get one index fewer (evaluation: each index once).
    """

    def __init__(self, base, num_replicas, rank, from_rank0=True, even=True):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.base, self.num_replicas, self.rank = base, num_replicas, rank
        self.from_rank0, self.even = from_rank0, even
        total = len(base)
        if total < num_replicas:
            raise ValueError(
                f"{total} items cannot be shared by {num_replicas} processes: use fewer processes "
                "(--nproc_per_node) or more data"
            )
        self.total = total - total % num_replicas if even else total

    def global_order(self):
        if not self.from_rank0:
            return list(self.base)
        return broadcast_object(list(self.base) if is_main_process() else None)

    def __iter__(self):
        order = self.global_order()
        if self.even:
            order = order[: len(order) - len(order) % self.num_replicas]
        return iter(order[self.rank :: self.num_replicas])

    def __len__(self):
        return len(range(self.rank, self.total, self.num_replicas))
