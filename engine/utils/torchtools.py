"""Dassl's ``dassl.utils.torchtools`` names: the checkpoint functions live in engine/checkpoint/."""
from ..checkpoint.files import latest_checkpoint, load_checkpoint, load_pretrained_weights, save_checkpoint
from ..checkpoint.resume import resume_from_checkpoint

__all__ = [
    "count_num_param",
    "latest_checkpoint",
    "load_checkpoint",
    "load_pretrained_weights",
    "resume_from_checkpoint",
    "save_checkpoint",
]


def count_num_param(model=None, params=None):
    if model is not None:
        return sum(p.numel() for p in model.parameters())
    if params is not None:
        total = 0
        for p in params:
            total += p["params"].numel() if isinstance(p, dict) else p.numel()
        return total
    raise ValueError("model and params must provide at least one.")
