"""TextRefiner on CoCoOp (TRAINER.TF.HOST "CoCoOp"): the refiner on per-image class text.

CoCoOp's class text t [B, C, D] depends on the image, so the cache is read row by row (each of
the B x C text rows reads it), the refined t~ [B, C, D] replaces t in each image's logits, the
semantic loss compares an image's local features with that image's own text, and the
regularisation mean runs over the B x C rows (an average over the images). For the same
reason t~ cannot be computed once per evaluation: every test batch runs CoCoOp's per-image text
and refines it (a cache read and one Linear per row, small next to the text encoder).
Checkpoints: ``prompt_learner/`` (``prompt_learner.ctx``, ``prompt_learner.meta_net.*``,
``mid_image_trans.*``) and ``Memory/``.
"""
import torch
import torch.nn.functional as F

from engine.metrics import compute_accuracy

from ..cocoop import CoCoOp
from .losses import coop_total
from .plugin import (
    COOP_FAMILY_KEYS, attach_refiner, coop_weights, is_refiner_parameter, memory_checkpoint, refiner_to_half,
)
from .refiner import check_refiner_cfg


def per_image_logits(scale, features, text):
    """scale * <features_b, text_b,c>: features [B, D] or [B, n, D], text [B, C, D] -> [B(*n), C]."""
    if features.dim() == 2:
        return scale * torch.einsum("bd,bcd->bc", features, text)
    return scale * torch.einsum("bnd,bcd->bnc", features, text).flatten(0, 1)


class TextRefinerCoCoOp(CoCoOp):
    # ----- the host's loss composition ---------------------------------------------------------
    def losses(self, image, label):
        global_feat, tokens, cls_attn = self.model.encode_image(image, return_local=True)
        image_features = global_feat / global_feat.norm(dim=-1, keepdim=True)  # [B, D]
        text = self.model.instance_text_features(image_features)  # [B, C, D], normalised
        step = self.head.forward_train(text, tokens, cls_attn)  # refined [B, C, D]
        scale, n_local, tf = self.model.logit_scale.exp(), self.head.n_local, self.cfg.TRAINER.TF
        logits = per_image_logits(scale, image_features, step.refined.to(image_features.dtype))  # [B, C]
        local = step.local.reshape(len(label), n_local, -1)  # [B, n, D], rows of one image together
        local_logits = per_image_logits(scale, local, text.to(local.dtype))  # [B*n, C]
        semantic = F.cross_entropy(local_logits, label.repeat_interleave(n_local))
        total, parts = coop_total(F.cross_entropy(logits, label), semantic, step.regularisation, tf.BALANCE, tf.DISTILL)
        return total, {**parts, "acc": compute_accuracy(logits, label)[0]}

    # ----- evaluation: the class text depends on the image, refined per batch ------------------
    def logits_from_features(self, image_features):
        # image_features: [B, D], normalised
        refined = self.head.refine(self.model.instance_text_features(image_features))  # [B, C, D]
        return per_image_logits(self.model.logit_scale.exp(), image_features, refined.to(image_features.dtype))

    # ----- the plug-in, attached through the host's hooks (see plugin.py) ----------------------
    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        check_refiner_cfg(cfg.TRAINER.TF)

    def build_extra_modules(self):
        super().build_extra_modules()
        in_dim = out_dim = self.model.image_encoder.output_dim
        tf = self.cfg.TRAINER.TF
        self.head = attach_refiner(self.model, tf, in_dim, out_dim, coop_weights(tf))
        self.memory = self.head.cache

    def to_reference_half(self):
        super().to_reference_half()
        refiner_to_half(self.head)

    def is_trainable(self, name):
        return super().is_trainable(name) or is_refiner_parameter(name)

    def trainable_modules(self):
        return [*super().trainable_modules(), self.memory]

    def extra_trainable(self):
        return [*super().extra_trainable(), ("memory", self.memory)]

    def saved_models(self):
        # prompt_learner/ holds the prompt learner and the alignment
        return {"prompt_learner": (self.model, COOP_FAMILY_KEYS), **memory_checkpoint(self.memory)}
