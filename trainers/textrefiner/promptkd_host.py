"""TextRefiner on PromptKD (TRAINER.TF.HOST "PromptKD"): the teacher's text features are refined.

The student's last-block tokens (its vision prompts left out) are aligned into the teacher's
space (d -> D_t); the cache (D_t wide) reads with the teacher text. Losses (the reference's
weighting, tied to KD_WEIGHT): KD * L_ukd (student vs teacher, against the refined text) +
KD / 100 * L_sem (local features vs the teacher's global soft labels, against the unrefined
text) + KD / 50 * L_mem (regularisation; the text is frozen, so it trains only the extractor).
At evaluation the refined teacher text is computed once; the teacher image encoder does not run.
Checkpoints: ``VLPromptLearner/`` (prompts, VPT_image_trans, mid_image_trans) and ``Memory/``.
"""
from ..promptkd import PromptKD
from ..shared.distillation import kd_loss
from .losses import promptkd_total, semantic_kd_loss
from .mixin import TextRefinerMixin


class TextRefinerPromptKD(TextRefinerMixin, PromptKD):
    def alignment_dims(self):
        return self.model.image_encoder.output_dim, self.teacher_text.shape[-1]

    def hyper_parameters(self):
        return {"kd_weight": f"{self.kd_weight} (L_sem x 1/100, L_mem x 1/50)"}

    def losses(self, image, teacher_logits):
        model = self.model
        scale = model.logit_scale.exp()
        global_feat, tokens, cls_attn = self.encode_image_local(image)
        student = model.project(global_feat)  # [B, D_t]
        text = self.teacher_text  # [C, D_t], normalised, frozen
        step = self.head.forward_train(text.detach(), tokens, cls_attn)
        student_logits = scale * student @ step.refined.t().to(student.dtype)  # [B, C]
        local_logits = scale * step.local @ text.t().to(step.local.dtype)  # [n*B, C]
        teacher_logits = teacher_logits.float()
        ukd = kd_loss(student_logits.float(), teacher_logits, self.temperature)
        semantic = semantic_kd_loss(local_logits.float(), teacher_logits, self.temperature, self.head.n_local)
        return promptkd_total(ukd, semantic, step.regularisation.float(), self.kd_weight)
