"""TextRefiner on KgCoOp (TRAINER.TF.HOST "KgCoOp"): the CoOp adapter's loss plus KgCoOp's own regulariser.

Loss: CE(image, t~) + L_sem / BALANCE + DISTILL * L_reg (the CoOp variant) + W * (1 - mean cos(t,
w)), where t is the prompted (unrefined) text and w the hand-crafted CLIP text (TRAINER.COOP.W).
Evaluation and checkpoints as on CoOp: t~ once per evaluation; ``prompt_learner/`` and ``Memory/``.
"""
import torch

from ..kgcoop import KgCoOp, knowledge_guided_loss
from .plugin import (
    COOP_FAMILY_KEYS, attach_refiner, coop_weights, is_refiner_parameter, memory_checkpoint, refined_ce, refiner_to_half,
)
from .refiner import check_refiner_cfg


class TextRefinerKgCoOp(KgCoOp):
    # ----- the host's loss composition ---------------------------------------------------------
    def losses(self, image, label):
        text = self.model.text_features()  # [C, D], normalised
        loss, parts, _, _ = refined_ce(self.head, self.model, image, label, text, self.cfg.TRAINER.TF)
        knowledge = self.prompt_cfg.W * knowledge_guided_loss(text, self.clip_text)
        return loss + knowledge, {**parts, "kg": knowledge.detach()}

    # ----- the plug-in, attached through the host's hooks (see plugin.py) ----------------------
    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        check_refiner_cfg(cfg.TRAINER.TF)

    def build_extra_modules(self):
        super().build_extra_modules()
        in_dim = out_dim = self.model.image_encoder.output_dim
        tf = self.cfg.TRAINER.TF
        weights = {**coop_weights(tf), "w": self.prompt_cfg.W}
        self.head = attach_refiner(self.model, tf, in_dim, out_dim, weights)
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

    # ----- evaluation: the refined class text, once per evaluation ---------------------------
    @torch.no_grad()
    def class_text(self):
        return self.head.refine(super().class_text())  # [C, D]
