"""TextRefinerHead: the plug-in's per-step recipe over modules that the host owns.

Decision: the head owns no modules. Checkpoint names must stay the reference's, and there the
alignment is a submodule of the host's model (CoOp: ``CustomCLIP.mid_image_trans``, saved under
``prompt_learner/``) while the cache is a model of its own, registered as ``"Memory"`` (state
dict ``{"extractor.weight"}`` plus ``memory_item``). So ``attach_refiner`` (plugin.py) builds a
FeatureAlignment and a LocalCache (in the reference's construction order, which fixes the seeded
initial values), attaches the alignment where the reference does and hands both to the head
(the host adapter registers the cache), which holds the recipe: k, the local feature set, and
the order read -> aggregate -> write.
Host adapters (``<host>_host.py``) combine ``forward_train``'s outputs with the host's losses:
the CoOp variant (``coop_losses``) on CE hosts, the KD losses of ``losses.py`` on PromptKD.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .local_features import LOCAL_PARTS, check_local_parts, num_local_features, select_local_features
from .losses import coop_total, regularisation_loss, semantic_loss


def check_refiner_cfg(tf):
    """TRAINER.TF keys a host cannot honour, refused with the key named."""
    if tf.LAYER != -1:
        raise ValueError(f"TRAINER.TF.LAYER {tf.LAYER} is not supported: the refiner reads the last block (-1)")


@dataclass
class RefinerStep:
    """What one training step of the refiner produces."""

    refined: torch.Tensor  # [C, D] refined text t~, not normalised
    aligned: torch.Tensor  # [B, L, D] aligned tokens Z (what was written into the cache)
    local: torch.Tensor  # [n*B, D] local features, the n rows of one image contiguous, not normalised
    regularisation: torch.Tensor  # L_reg = mean |normalize(t~) - t|


class TextRefinerHead:
    """The refiner around a host's text features t and image tokens, on host-owned modules.

    alignment: a FeatureAlignment (tokens -> cache width). cache: a LocalCache.
    topk, local_parts: TRAINER.TF.TOPK and TRAINER.TF.LOCAL_FEATURES.
    gather: aligned tokens of this process [b, L, D] -> those of the whole global batch [B, L, D]
    (under torchrun every rank writes the whole batch, so the caches stay identical and equal
    one process's); the identity by default.
    """

    def __init__(self, alignment, cache, topk=5, local_parts=LOCAL_PARTS, gather=None):
        if alignment.out_dim != cache.dim:
            raise ValueError(
                f"The feature alignment outputs {alignment.out_dim}-d tokens but the local cache is "
                f"{cache.dim}-d: build both with the width of the text features"
            )
        self.alignment, self.cache = alignment, cache
        self.topk, self.local_parts = topk, check_local_parts(local_parts, topk)
        self.gather = gather if gather is not None else (lambda tokens: tokens)
        self.n_local = num_local_features(topk, self.local_parts)

    def local_features(self, tokens, cls_attn):
        """Aligned tokens Z [B, L, D] and local features [n*B, D] from tokens [B, L, d] and cls_attn [B, L-1]."""
        aligned = self.alignment(tokens)
        return aligned, select_local_features(aligned, cls_attn, self.topk, self.local_parts)

    def refine(self, text):
        """t~ [C, D] for text features t [C, D]; reads the cache, never writes it."""
        return self.cache.refine(text)

    def forward_train(self, text, tokens, cls_attn):
        """One training step of the refiner, in the reference's order: read -> aggregate -> write.

        The read sees the cache the previous step left; this step's aligned tokens are written
        after it (no gradient flows into or through the cache).
        """
        aligned, local = self.local_features(tokens, cls_attn)
        refined = self.cache.refine(text)
        self.cache.write(self.gather(aligned.detach()))
        return RefinerStep(refined, aligned, local, regularisation_loss(refined, text))

    def coop_losses(self, step, image_features, text, labels, logit_scale, balance=50.0, distill=20.0):
        """The CoOp variant's objective: (global logits [B, C], total loss, logged parts).

        image_features: [B, D] normalised global features; text: [C, D] the unrefined normalised
        text (the local logits use it, the global logits use the unnormalised t~).
        """
        logits = logit_scale * image_features @ step.refined.t()  # [B, C]
        global_ce = F.cross_entropy(logits, labels)
        semantic = semantic_loss(step.local, text, labels, logit_scale, self.n_local)
        total, parts = coop_total(global_ce, semantic, step.regularisation, balance=balance, distill=distill)
        return logits, total, parts
