"""The reset point of episodic test-time adaptation, with RLCF's optional momentum buffer.

Every query (or test image) starts from the reset point. Without momentum it is the original
weights. With momentum an EMA of the adapted weights is kept across queries,
``ema = momentum * ema + (1 - momentum) * adapted`` after each, and every ``update_freq``
queries the reset point becomes ``(1 - update_w) * original + update_w * ema``.
"""
import torch


class ResetPoint:
    """``tensors``: {name: live tensor} of what is adapted and reset (parameters, buffers); the EMA
    and the moves of the reset point cover the floating-point ones (integer counters stay original)."""

    def __init__(self, tensors, momentum_update=False, momentum=0.9998, update_freq=64, update_w=1.0):
        self.live = dict(tensors)
        with torch.no_grad():
            self.original = {k: v.detach().clone() for k, v in self.live.items()}
            self.point = {k: v.clone() for k, v in self.original.items()}
            self.floating = [k for k, v in self.original.items() if v.is_floating_point()]
            self.ema = {k: self.original[k].clone() for k in self.floating} if momentum_update else None
        self.momentum = momentum
        self.update_freq = update_freq
        self.update_w = update_w
        self.counter = 0

    @torch.no_grad()
    def reset(self):
        for k, v in self.live.items():
            v.copy_(self.point[k])

    @torch.no_grad()
    def after_episode(self):
        """Fold the adapted weights into the EMA (momentum on); every update_freq-th time move the reset point."""
        if self.ema is None:
            return
        for k in self.floating:
            self.ema[k].mul_(self.momentum).add_(self.live[k], alpha=1.0 - self.momentum)
        self.counter += 1
        if self.counter >= self.update_freq:
            self.counter = 0
            for k in self.floating:
                self.point[k] = (1 - self.update_w) * self.original[k] + self.update_w * self.ema[k]
