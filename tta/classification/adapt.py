"""TPT's and RLCF's test-time tuning of one image, and the episodic loop over a test set.

Per image: reset the adapted state and the optimizer -> select the confident views once ->
``steps`` updates on them -> predict on the original view.
"""
import contextlib
import copy
import math
import time

import torch

from engine import distributed
from tta.core.rewards import reward_loss


def select_confident(logits, p):
    """Indices of the int(N * p) views [N, C] with the lowest softmax entropy, lowest first."""
    entropy = -(logits.softmax(dim=1) * logits.log_softmax(dim=1)).sum(dim=1)  # [N]
    return torch.argsort(entropy)[: int(logits.shape[0] * p)]


def marginal_entropy(logits):
    """Entropy of the mean of the softmax distributions of the views [S, C] (TPT's loss)."""
    log_probs = logits.log_softmax(dim=-1)
    log_mean = log_probs.logsumexp(dim=0) - math.log(logits.shape[0])  # [C]
    log_mean = log_mean.clamp(min=torch.finfo(log_mean.dtype).min)
    return -(log_mean * log_mean.exp()).sum(dim=-1)


class Adapter:
    """The update rule of one method: TPT (``reward`` None) or RLCF (a CLIPReward)."""

    def __init__(self, policy, optimizer, steps, selection_p, reward=None, scaler=None, amp=False,
                 min_entropy_w=0.0):
        self.policy = policy
        self.optimizer = optimizer
        self.initial_optim_state = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None
        self.steps = steps
        self.selection_p = selection_p
        self.reward = reward
        self.scaler = scaler
        self.amp = amp
        self.min_entropy_w = min_entropy_w
        self.updates = 0  # adaptation steps taken on this set
        self.skipped_updates = 0  # of which the GradScaler skipped (inf/NaN gradients)

    def autocast(self, device):
        return torch.autocast(device_type=device.type) if self.amp else contextlib.nullcontext()

    def loss(self, logits):
        if self.reward is None:
            return marginal_entropy(logits)
        loss = reward_loss(logits, self.reward)
        if self.min_entropy_w:
            loss = loss + self.min_entropy_w * marginal_entropy(logits)
        return loss

    def adapt(self, views):
        """Reset, then ``steps`` updates on the confident views of ``views`` [N, 3, H, W].

        The views are selected once, from the logits of all views at the reset state (the
        policy's first ``forward_backward`` call calls ``select``)."""
        self.policy.set_views(views)
        if self.steps == 0:
            return
        self.policy.reset()
        self.optimizer.load_state_dict(self.initial_optim_state)

        def select(logits):  # logits [N, C] of all views, no graph -> indices of the kept views
            idx = select_confident(logits, self.selection_p)
            if self.reward is not None:
                self.reward.set_image_features(views[idx])
            return idx

        scale = self.scaler.scale if self.scaler is not None else (lambda loss: loss)
        idx = None
        for _ in range(self.steps):
            self.optimizer.zero_grad()
            with self.autocast(views.device):
                idx = self.policy.forward_backward(idx, select, self.loss, scale)
            self.updates += 1
            if self.scaler is not None:
                before = self.scaler.get_scale()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.skipped_updates += self.scaler.get_scale() < before  # update() backs off exactly when step() skipped
            else:
                self.optimizer.step()

    def predict(self, views):
        """Adapt to one image, predict on its original view: logits [1, C]."""
        self.adapt(views)
        with self.autocast(views.device), torch.no_grad():
            logits = self.policy.predict().float()
        self.policy.after_image()
        return logits


def topk_hits(logits, label, k):
    """1.0 if ``label`` is among the top-min(k, C) classes of ``logits`` [1, C]."""
    k = min(k, logits.shape[-1])
    return float((logits.topk(k, dim=-1).indices == label).any())


def evaluate_set(adapter, loader, device, print_freq=500):
    """Top-1 / top-5 (%) over the loader's images (of all ranks under torchrun), and the seconds per
    image of this process. Progress lines count this process's images."""
    hits1 = hits5 = 0.0
    start = time.time()
    for i, (views, label) in enumerate(loader):
        views = views[0].to(device)  # [N, 3, H, W]
        logits = adapter.predict(views)
        hits1 += topk_hits(logits, int(label), 1)
        hits5 += topk_hits(logits, int(label), 5)
        if (i + 1) % print_freq == 0:
            n = i + 1
            print(f"Test: [{n}/{len(loader)}] Acc@1 {100 * hits1 / n:6.2f} Acc@5 {100 * hits5 / n:6.2f}")
    seconds_per_image = (time.time() - start) / max(len(loader), 1)
    totals = distributed.sum_over_ranks(torch.tensor([hits1, hits5, len(loader)], dtype=torch.float64, device=device))
    hits1, hits5, n = totals.tolist()
    n = max(n, 1)
    return round(100 * hits1 / n, 3), round(100 * hits5 / n, 3), seconds_per_image
