"""Test-time adaptation to one retrieval query: what is tuned, the steps, the score row, the episodic reset.

image2text: the query is an image, the gallery the set's captions; the whole image tower
            (``visual.*``) is tuned.
text2image: the query is a caption, the gallery the set's images; every other parameter (text
            transformer, token and positional embeddings, ln_final, text_projection, logit_scale)
            is tuned, the image tower is locked.

Per query, from the reset point: ``steps`` times { logits = exp(logit_scale) * q @ gallery^T over
the whole gallery [1, G]; the objective's loss of them (tta.retrieval.objectives: RLCF's reward of
the top-K candidates x their CE, or distillation from the reward CLIP's softmax); one AdamW step };
then the query's score row from the adapted weights; then the momentum buffer (if on), the weights
back to the reset point and the optimizer back to its initial state.
The gallery embeddings (policy and reward) are fixed: only the tuned tower runs on the query.
The model stays in eval mode (a ViT has neither dropout nor BatchNorm, so this is the reference's
train mode for the towers it tunes).
"""
import contextlib
import copy

import torch

from tta.core.episodic import ResetPoint

DIRECTIONS = ("image2text", "text2image")


def tuned_parameters(model, direction):
    """{name: parameter} that ``direction`` tunes (see the module docstring)."""
    visual = direction == "image2text"
    return {n: p for n, p in model.named_parameters() if n.startswith("visual.") == visual}


def adamw(params, lr, weight_decay):
    """AdamW with eps 1e-6 as the reference (transformers' AdamW default). On CPU torch's fused
    kernel: the same update, one pass over each tensor instead of the default loop's ten or so (the
    step over a ViT-B/16 image tower falls from ~0.7 s to ~0.2 s on two cores); on other devices
    torch's default (foreach on CUDA), which is what the reference runs."""
    on_cpu = all(p.device.type == "cpu" for p in params)
    return torch.optim.AdamW(params, lr=lr, eps=1e-6, weight_decay=weight_decay, fused=True if on_cpu else None)


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


class QueryTuner:
    """Test-time adaptation of ``model`` (fp32) to one query at a time against a fixed ``gallery``
    [G, D] (the policy's normalised embeddings of the other side); ``objective`` a RewardObjective or
    DistillationObjective, or None with ``steps`` 0 (the zero-shot scores)."""

    def __init__(self, model, direction, gallery, objective, steps, lr, weight_decay, scaler=None, amp=False,
                 momentum_update=False, momentum=0.9998, update_freq=64, update_w=1.0):
        if direction not in DIRECTIONS:
            raise ValueError(f'retrieval_task must be one of {DIRECTIONS}, got "{direction}"')
        self.model = model.eval().requires_grad_(False)
        self.direction = direction
        self.params = tuned_parameters(model, direction)
        for p in self.params.values():
            p.requires_grad_(True)
        self.gallery = gallery
        self.objective = objective
        self.steps = steps
        self.scaler = scaler
        self.amp = amp
        self.reset_point = ResetPoint(self.params, momentum_update, momentum, update_freq, update_w)
        self.optimizer = adamw(list(self.params.values()), lr, weight_decay)
        self.initial_optim_state = copy.deepcopy(self.optimizer.state_dict())
        self.updates = 0
        self.skipped_updates = 0  # GradScaler skips (inf/NaN gradients)

    def autocast(self):
        return torch.autocast(device_type=self.gallery.device.type) if self.amp else contextlib.nullcontext()

    def query_features(self, query):
        """Image [1, 3, H, W] or token ids [1, 77] -> normalised embedding [1, D]."""
        if self.direction == "image2text":
            return unit(self.model.encode_image(query).float())
        return unit(self.model.encode_text(query).float())

    def logits(self, query):
        """[1, G]: exp(logit_scale) * q @ gallery^T."""
        return self.model.logit_scale.exp() * self.query_features(query) @ self.gallery.t()

    def step(self, query):
        self.optimizer.zero_grad()
        with self.autocast():
            loss = self.objective.loss(self.logits(query).float())
        self.updates += 1
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
            return loss.detach()
        self.scaler.scale(loss).backward()
        before = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.skipped_updates += self.scaler.get_scale() < before  # update() backs off exactly when step() skipped
        return loss.detach()

    def __call__(self, query, reward_query):
        """Adapt to ``query`` -> its score row [G] (float32) from the adapted weights, then reset.
        ``reward_query``: per reward model the query's normalised embedding [1, D_m]."""
        if self.steps > 0:
            self.objective.set_queries(reward_query)
            for _ in range(self.steps):
                self.step(query)
        with torch.no_grad(), self.autocast():
            scores = self.logits(query)[0].float()
        if self.steps > 0:
            self.reset_point.after_episode()
            self.reset_point.reset()
            self.optimizer.load_state_dict(self.initial_optim_state)
        return scores
