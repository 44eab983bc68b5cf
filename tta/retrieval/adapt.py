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

text2image without the momentum buffer tunes the token embedding's rows that the query looks up, not
all 49,408: a row the caption does not contain reaches neither its loss nor its scores, and the reset
undoes the weight decay AdamW gives it, so the score row is the one the whole embedding gives (within
the last bits of float sums: the rows' gradients are summed in another order). That leaves out an
AdamW update and a zeroed gradient of 25M values per step at ViT-B/16's size. With the momentum buffer
every row's adapted value enters the EMA, so there the whole embedding is tuned.
The model stays in eval mode (a ViT has neither dropout nor BatchNorm, so this is the reference's
train mode for the towers it tunes).
"""
import contextlib

import torch

from clip.model import encode_text_embeddings
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


def restart(optimizer):
    """An AdamW's state back to a fresh one's in place: steps and moments zero (what its first step
    would create), their buffers kept. Loading the empty initial state instead makes the next step
    allocate every moment again: at ViT-B/16 size 0.5 GB of fresh pages per query."""
    with torch.no_grad():
        for state in optimizer.state.values():
            for value in state.values():
                value.zero_()


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
        self.rows = None  # text2image: the tuned token rows [ctx, width], the query's ids in its first rows
        if direction == "text2image" and steps > 0 and not momentum_update:
            weight = self.params.pop("token_embedding.weight").requires_grad_(False)
            self.rows = torch.nn.Parameter(weight.new_zeros(model.context_length, weight.shape[1]))
        self.episode_query = None  # the query the rows were loaded for
        self.row_index = None  # [ctx]: each position's row
        self.gallery = gallery
        self.objective = objective
        self.steps = steps
        self.scaler = scaler
        self.amp = amp
        self.reset_point = ResetPoint(self.params, momentum_update, momentum, update_freq, update_w)
        tuned = list(self.params.values()) + ([self.rows] if self.rows is not None else [])
        self.optimizer = adamw(tuned, lr, weight_decay)
        self.updates = 0
        self.skipped_updates = 0  # GradScaler skips (inf/NaN gradients)

    def autocast(self):
        return torch.autocast(device_type=self.gallery.device.type) if self.amp else contextlib.nullcontext()

    def query_features(self, query):
        """Image [1, 3, H, W] or token ids [1, 77] -> normalised embedding [1, D]."""
        if self.direction == "image2text":
            return unit(self.model.encode_image(query).float())
        if self.rows is None:
            return unit(self.model.encode_text(query).float())
        self.load_rows(query)
        embeddings = self.rows[self.row_index].unsqueeze(0)  # [1, ctx, width]
        return unit(encode_text_embeddings(self.model, embeddings, query).float())

    @torch.no_grad()
    def load_rows(self, query):
        """The token rows of ``query`` [1, ctx] into self.rows (once per episode; the reset clears them)."""
        if self.episode_query is not None:
            if not torch.equal(query, self.episode_query):
                raise ValueError("QueryTuner: a new query before the reset of the last one (call the tuner, "
                                 "which resets after each query)")
            return
        ids, self.row_index = torch.unique(query[0], return_inverse=True)  # [U], [ctx]
        self.rows[: len(ids)] = self.model.token_embedding.weight[ids]
        self.episode_query = query.clone()

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
            self.reset()
        return scores

    def reset(self):
        """After a query: the momentum buffer (if on), the weights back to the reset point, the
        optimizer back to its initial state, the token rows free for the next query."""
        self.reset_point.after_episode()
        self.reset_point.reset()
        restart(self.optimizer)
        self.episode_query = None
