"""TextRefiner on PromptKD (TRAINER.TF.HOST "PromptKD"): the teacher's text features are refined.

The student's last-block tokens (its vision prompts left out) are aligned into the teacher's
space (d -> D_t); the cache (D_t wide) reads with the teacher text. Losses (the reference's
weighting, tied to KD_WEIGHT): KD * L_ukd (student vs teacher, against the refined text) +
KD / 100 * L_sem (local features vs the teacher's global soft labels, against the unrefined
text) + KD / 50 * L_mem (regularisation; the text is frozen, so it trains only the extractor).
At evaluation the refined teacher text is computed once; the teacher image encoder does not run.
Checkpoints: ``VLPromptLearner/`` (prompts, VPT_image_trans, mid_image_trans) and ``Memory/``.
"""
import torch

from ..promptkd import PromptKD
from ..shared.distillation import kd_loss
from .losses import promptkd_total, semantic_kd_loss
from .plugin import attach_refiner, is_refiner_parameter, memory_checkpoint, refiner_to_half
from .refiner import check_refiner_cfg


class TextRefinerPromptKD(PromptKD):
    # ----- the host's loss composition ---------------------------------------------------------
    def losses(self, image, teacher_logits):
        model = self.model
        scale = model.logit_scale.exp()
        global_feat, tokens, cls_attn = model.encode_image(image, return_local=True)
        student = model.project(global_feat)  # [B, D_t]
        text = self.teacher_text  # [C, D_t], normalised, frozen
        step = self.head.forward_train(text.detach(), tokens, cls_attn)
        student_logits = scale * student @ step.refined.t().to(student.dtype)  # [B, C]
        local_logits = scale * step.local @ text.t().to(step.local.dtype)  # [n*B, C]
        teacher_logits = teacher_logits.float()
        ukd = kd_loss(student_logits.float(), teacher_logits, self.temperature)
        semantic = semantic_kd_loss(local_logits.float(), teacher_logits, self.temperature, self.head.n_local)
        return promptkd_total(ukd, semantic, step.regularisation.float(), self.kd_weight)

    # ----- the plug-in, attached through the host's hooks (see plugin.py) ----------------------
    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        check_refiner_cfg(cfg.TRAINER.TF)

    def build_extra_modules(self):
        super().build_extra_modules()
        in_dim, out_dim = self.model.image_encoder.output_dim, self.teacher_text.shape[-1]  # d -> D_t
        tf = self.cfg.TRAINER.TF
        weights = {"kd_weight": f"{self.kd_weight} (L_sem x 1/100, L_mem x 1/50)"}
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
        return {**super().saved_models(), **memory_checkpoint(self.memory)}

    # ----- evaluation: the refined class text, once per evaluation ---------------------------
    @torch.no_grad()
    def class_text(self):
        return self.head.refine(super().class_text())  # [C, D]
