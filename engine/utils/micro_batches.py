"""Gradient accumulation: one training batch as several micro-batches (TRAIN.GRAD_ACCUM)."""
import torch


def micro_batches(inputs, n):
    """``[(weight, chunk)]``: ``inputs`` (a tuple) cut into ``n`` parts along the batch dimension.

    Every tensor whose first dimension is the batch size B (that of the first tensor) is split
    with ``torch.tensor_split`` (sizes differ by at most one); other inputs go whole to every
    chunk. ``weight`` is the chunk's share of B, so the weighted sum of per-chunk mean losses is
    the batch's mean loss and the summed gradients are the batch's. ``n`` 1 gives
    ``[(None, inputs)]``: the batch runs as is, with no extra operation.
    """
    if n <= 1:
        return [(None, inputs)]
    tensors = [x for x in inputs if isinstance(x, torch.Tensor) and x.dim() > 0]
    if not tensors:
        raise ValueError("TRAIN.GRAD_ACCUM > 1 needs a batch tensor among the training inputs")
    batch_size = tensors[0].shape[0]
    if n > batch_size:
        raise ValueError(
            f"TRAIN.GRAD_ACCUM {n} is larger than the batch ({batch_size} items): use at most the batch size"
        )

    def split(x):
        if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] == batch_size:
            return torch.tensor_split(x, n, dim=0)
        return [x] * n

    columns = [split(x) for x in inputs]
    chunks = [tuple(column[i] for column in columns) for i in range(n)]
    sizes = [chunk.shape[0] for chunk in torch.tensor_split(tensors[0], n, dim=0)]
    return [(size / batch_size, chunk) for size, chunk in zip(sizes, chunks)]
