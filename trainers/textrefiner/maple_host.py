"""TextRefiner on MaPLe (TRAINER.TF.HOST "MaPLe"): the refined text replaces MaPLe's text in the
CE logits, with the CoOp variant's semantic and regularisation losses (BALANCE, DISTILL). The
local tokens come from the image encoder run with this step's coupled vision prompts.
Checkpoints: ``MultiModalPromptLearner/`` (the prompt learner and ``mid_image_trans``) and ``Memory/``.
"""
import torch

from ..maple import MaPLe
from .plugin import (
    attach_refiner, coop_weights, is_refiner_parameter, memory_checkpoint, refined_ce, refiner_to_half,
)
from .refiner import check_refiner_cfg


class TextRefinerMaPLe(MaPLe):
    # ----- the host's loss composition ---------------------------------------------------------
    def losses(self, image, label):
        text = self.model.text_features()  # [C, D], normalised
        loss, parts, _, _ = refined_ce(self.head, self.model, image, label, text, self.cfg.TRAINER.TF)
        return loss, parts

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
        return {**super().saved_models(), **memory_checkpoint(self.memory)}

    # ----- evaluation: the refined class text, once per evaluation ---------------------------
    @torch.no_grad()
    def class_text(self):
        return self.head.refine(super().class_text())  # [C, D]
