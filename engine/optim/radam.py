"""RAdam as Dassl ships it (Liu et al. 2019), not torch.optim.RAdam.

Differences from torch's version that change results: weight decay is applied as
``p -= wd * lr * p`` before the update, and with ``degenerated_to_sgd`` the first steps
(N_sma < 5) take an SGD-with-momentum step of size ``lr / (1 - beta1^t)``.
"""
import math

import torch
from torch.optim.optimizer import Optimizer


class RAdam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, degenerated_to_sgd=True):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
        self.degenerated_to_sgd = degenerated_to_sgd
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _step_size(self, step, beta1, beta2):
        """Rectified step size and N_sma for update number ``step`` (1-based)."""
        beta2_t = beta2**step
        n_sma_max = 2 / (1 - beta2) - 1
        n_sma = n_sma_max - 2 * step * beta2_t / (1 - beta2_t)
        if n_sma >= 5:
            rect = (1 - beta2_t) * (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2) / n_sma * n_sma_max / (n_sma_max - 2)
            return math.sqrt(rect) / (1 - beta1**step), n_sma
        if self.degenerated_to_sgd:
            return 1.0 / (1 - beta1**step), n_sma
        return -1.0, n_sma

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("RAdam does not support sparse gradients")
                grad = p.grad.float()
                p32 = p.float()
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p32)
                    state["exp_avg_sq"] = torch.zeros_like(p32)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                state["step"] += 1
                step_size, n_sma = self._step_size(state["step"], beta1, beta2)
                if n_sma < 5 and step_size <= 0:
                    continue
                if group["weight_decay"] != 0:
                    p32.add_(p32, alpha=-group["weight_decay"] * group["lr"])
                if n_sma >= 5:
                    denom = exp_avg_sq.sqrt().add_(group["eps"])
                    p32.addcdiv_(exp_avg, denom, value=-step_size * group["lr"])
                else:
                    p32.add_(exp_avg, alpha=-step_size * group["lr"])
                p.copy_(p32)
        return loss
