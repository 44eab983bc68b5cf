"""The local cache (the reference's ``Memory``): read it, fuse the read into the text, write tokens.

Names follow the reference so checkpoints interchange: the only parameter is
``extractor.weight`` (the state dict holds nothing else) and the cache tensor is
``text_fine_cache``, a non-persistent buffer: it moves with ``.to()`` / ``.half()`` but is saved
beside the state dict, as the checkpoint field ``memory_item`` (plugin.memory_checkpoint).
"""
import torch
import torch.nn.functional as F
from torch import nn


def _positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class LocalCache(nn.Module):
    """M cache entries of dimension D and the extractor that fuses a cache read into the text.

    dim: D, the text / aligned token width. size: M (TRAINER.TF.MEMORY_SIZE). alpha: weight of
    the fused read (TRAINER.TF.ALPHA). momentum: how much of an entry a write keeps
    (TRAINER.TF.MOMENTUM).
    """

    def __init__(self, dim=512, size=25, alpha=0.2, momentum=0.8):
        super().__init__()
        _positive_int("LocalCache dim", dim)
        _positive_int("TRAINER.TF.MEMORY_SIZE", size)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"TRAINER.TF.MOMENTUM must lie in [0, 1], got {momentum!r}")
        self.dim, self.size, self.alpha, self.momentum = dim, size, float(alpha), float(momentum)
        # uniform [0, 1) rows, normalised, drawn from the global CPU RNG before the extractor's
        # init as in the reference, so a seeded run starts from the reference's cache
        initial = F.normalize(torch.rand(size, dim), dim=-1)  # [M, D]
        self.register_buffer("text_fine_cache", initial, persistent=False)
        self.extractor = nn.Linear(2 * dim, dim, bias=False)

    def extra_repr(self):
        return f"dim={self.dim}, size={self.size}, alpha={self.alpha}, momentum={self.momentum}"

    def get_cache(self):
        """The cache [M, D] (what checkpoints store as ``memory_item``)."""
        return self.text_fine_cache

    def set_cache(self, cache):
        """Replace the cache, e.g. by a checkpoint's ``memory_item`` (any device / float dtype)."""
        if not torch.is_tensor(cache) or not cache.is_floating_point():
            raise TypeError(f"The cache (memory_item) must be a floating-point tensor, got {type(cache).__name__}")
        if tuple(cache.shape) != (self.size, self.dim):
            raise ValueError(
                f"The saved cache (memory_item) has shape {tuple(cache.shape)} but this model's is "
                f"{(self.size, self.dim)} (TRAINER.TF.MEMORY_SIZE x feature dim): load it with the "
                "same MEMORY_SIZE and backbone it was trained with"
            )
        current = self.text_fine_cache
        self.text_fine_cache = cache.detach().to(device=current.device, dtype=current.dtype, copy=True)

    def _check_width(self, name, tensor):
        if tensor.shape[-1] != self.dim:
            raise ValueError(
                f"{name} of shape {tuple(tensor.shape)} do not match the cache width {self.dim}: "
                "build the LocalCache with dim equal to the feature width"
            )

    def read(self, query):
        """Softmax-weighted sum of the entries per query row: [C, D] -> [C, D].

        The cache is detached: gradients reach the query (through the scores) but never the cache.
        """
        self._check_width("Cache queries", query)
        cache = self.text_fine_cache.detach().to(query.dtype)  # [M, D]
        scores = F.normalize(query, dim=-1) @ cache.t()  # [C, M]
        return scores.softmax(dim=-1) @ cache  # [C, D]

    def aggregate(self, text, read):
        """t~ = alpha * extractor([t ; read]) + t, text first; [C, D], not normalised."""
        fused = torch.cat([text, read], dim=-1).to(self.extractor.weight.dtype)  # [C, 2D]
        return self.alpha * self.extractor(fused).to(text.dtype) + text

    def refine(self, text):
        """Read then aggregate: the refined text t~ [C, D] for text features t [C, D]."""
        return self.aggregate(text, self.read(text))

    @torch.no_grad()
    def write(self, tokens):
        """Momentum update of every entry by the tokens assigned to it; tokens [..., D].

        With Y the normalised tokens [N, D] and S = Y cache^T [N, M]: token n goes to its most
        similar entry a_n; entry j with at least one token becomes
        momentum * c_j + (1 - momentum) * sum_{a_n = j} w_n Y_n, where w_n = Q[n, j] / max_n' Q[n', j]
        and Q = softmax of S over the tokens (a weighted sum, not a mean, as the reference);
        entries without a token keep their value; then every row is renormalised.
        Vectorised, without host syncs; computed in at least fp32 whatever autocast is active.
        """
        self._check_width("Cache writes (aligned tokens)", tokens)
        old = self.text_fine_cache
        work = torch.promote_types(old.dtype, torch.float32)
        with torch.autocast(device_type=old.device.type, enabled=False):
            cache = old.to(work)  # [M, D]
            y = F.normalize(tokens.reshape(-1, self.dim).to(work), dim=-1)  # [N, D]
            scores = y @ cache.t()  # [N, M]
            over_tokens = scores.softmax(dim=0)  # [N, M]
            assign = scores.argmax(dim=1)  # [N], top-1 entry per token
            entries = torch.arange(self.size, device=assign.device)
            one_hot = (assign.unsqueeze(1) == entries).to(work)  # [N, M]
            weight = over_tokens.gather(1, assign.unsqueeze(1)).squeeze(1) / over_tokens.amax(dim=0)[assign]  # [N]
            summed = (one_hot * weight.unsqueeze(1)).t() @ y  # [M, D]; a matmul: deterministic on GPU
            hit = one_hot.sum(dim=0, keepdim=True).t() > 0  # [M, 1]
            updated = torch.where(hit, self.momentum * cache + (1.0 - self.momentum) * summed, cache)
            self.text_fine_cache = F.normalize(updated, dim=-1).to(old.dtype)
