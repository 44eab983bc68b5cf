"""The local cache (the reference's ``Memory``): read, aggregate into the text, write from tokens."""
import torch
import torch.nn.functional as F
from torch import nn


class LocalCache(nn.Module):
    """M cached local-feature entries of dimension D and the extractor that fuses a read into text.

    The state dict holds only ``extractor.weight`` (as the reference's Memory); the cache itself
    is a non-persistent buffer saved by the trainer as ``memory_item``.
    """

    def __init__(self, dim=512, size=25, alpha=0.2, momentum=0.8):
        super().__init__()
        self.dim, self.size, self.alpha, self.momentum = dim, size, alpha, momentum
        # uniform [0, 1) rows, normalised: drawn from the global RNG, as the reference (seed-dependent)
        self.register_buffer("text_fine_cache", F.normalize(torch.rand(size, dim), dim=-1), persistent=False)
        self.extractor = nn.Linear(2 * dim, dim, bias=False)

    def get_cache(self):
        return self.text_fine_cache

    def set_cache(self, cache):
        if tuple(cache.shape) != (self.size, self.dim):
            raise ValueError(
                f"The saved cache has shape {tuple(cache.shape)} but this model's is {(self.size, self.dim)} "
                "(TRAINER.TF.MEMORY_SIZE x feature dim): load it with the same MEMORY_SIZE and backbone"
            )
        self.text_fine_cache = cache.detach().to(self.text_fine_cache)

    def read(self, query):
        """Softmax-weighted sum of the entries, per query row: [C, D] -> [C, D] (no grad into the cache)."""
        cache = self.text_fine_cache.detach()
        scores = F.normalize(query, dim=-1) @ cache.t().to(query.dtype)  # [C, M]
        return scores.softmax(dim=1) @ cache.to(query.dtype)

    def aggregate(self, text, read):
        """t~ = t + alpha * W [t ; read] (not normalised)."""
        fused = torch.cat([text, read], dim=-1).to(self.extractor.weight.dtype)
        return self.alpha * self.extractor(fused).to(text.dtype) + text

    def refine(self, text):
        return self.aggregate(text, self.read(text))

    @torch.no_grad()
    def write(self, tokens):
        """Momentum update of each entry by the tokens assigned to it (top-1 by similarity).

        tokens: [..., D]. Entry j gets momentum * c_j + (1 - momentum) * sum_n w_n y_n over the
        tokens n assigned to it, with w_n = softmax_over_tokens(S)[n, j] / max_n' of that column;
        entries with no token keep their value; every row is renormalised.
        """
        cache = self.text_fine_cache
        y = F.normalize(tokens.reshape(-1, self.dim).to(cache.dtype), dim=-1)  # [N, D]
        scores = y @ cache.t()  # [N, M]
        over_tokens = scores.softmax(dim=0)
        assign = scores.argmax(dim=1)  # [N]
        col_max = over_tokens.max(dim=0).values  # [M], over all tokens
        weight = over_tokens.gather(1, assign.unsqueeze(1)).squeeze(1) / col_max[assign]  # [N]
        summed = torch.zeros_like(cache).index_add_(0, assign, weight.unsqueeze(1) * y)  # [M, D]
        hit = torch.zeros(self.size, dtype=torch.bool, device=cache.device)
        hit[assign] = True
        updated = torch.where(hit.unsqueeze(1), self.momentum * cache + (1 - self.momentum) * summed, cache)
        self.text_fine_cache = F.normalize(updated, dim=-1)
