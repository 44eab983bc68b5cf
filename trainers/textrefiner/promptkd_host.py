"""TextRefiner on PromptKD (TRAINER.TF.HOST "PromptKD"): the teacher's text features are refined.

The student's last-block tokens (its vision prompts left out) go through the alignment into
the teacher's space (``mid_image_trans``: d -> D_t); the local cache (D_t wide) reads with the
teacher text and is written with the aligned tokens. Losses (the reference's weighting, tied
to KD_WEIGHT): KD * L_ukd (student vs teacher, against the refined text) + KD / 100 * L_sem
(the local features vs the teacher's global soft labels, against the unrefined text) +
KD / 50 * L_mem (regularisation; the text is detached, so it trains only the extractor).
At evaluation the refined teacher text is computed once; the teacher image encoder does not run.
Checkpoints: ``VLPromptLearner/`` (prompts, VPT_image_trans, mid_image_trans) and ``Memory/``
(``extractor.weight`` plus the cache as ``memory_item``).
"""
import torch

from ..clip_backbone import half_like_reference
from ..promptkd import PromptKD
from .alignment import FeatureAlignment
from .cache import LocalCache
from .losses import kd_loss, promptkd_total, semantic_kd_loss
from .refiner import TextRefinerHead, check_refiner_cfg


class TextRefinerPromptKD(PromptKD):
    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        check_refiner_cfg(cfg.TRAINER.TF)

    def build_extra_modules(self):
        tf = self.cfg.TRAINER.TF
        student_dim = self.model.image_encoder.output_dim
        teacher_dim = self.teacher_text.shape[-1]
        self.model.mid_image_trans = FeatureAlignment(student_dim, teacher_dim)
        print("Building memory")
        self.memory = LocalCache(dim=teacher_dim, size=tf.MEMORY_SIZE, alpha=tf.ALPHA, momentum=tf.MOMENTUM)
        self.head = TextRefinerHead(self.model.mid_image_trans, self.memory, tf.TOPK, tuple(tf.LOCAL_FEATURES))
        print(f"check hyper-parameter kd_weight: {self.kd_weight} (L_sem x 1/100, L_mem x 1/50)")
        print(f"check hyper-parameter alpha: {self.memory.alpha}")
        print(f"check hyper-parameter momentum: {self.memory.momentum}")

    def to_reference_half(self):
        super().to_reference_half()
        half_like_reference(self.model.mid_image_trans)
        self.memory.half()  # extractor and cache in fp16, as the reference

    def is_trainable(self, name):
        return "VPT" in name or "image_trans" in name

    def trainable_modules(self):
        return [self.model, self.memory]

    def register_models(self):
        # one optimizer/scheduler under two names, as the reference; stepped once per epoch
        self.register_model(self.model_name, self.model, self.optim, self.sched)
        self.register_model("Memory", self.memory, self.optim, self.sched)

    # ----- training ------------------------------------------------------------------------
    def losses(self, image, teacher_logits):
        model = self.model
        scale = model.logit_scale.exp()
        global_feat, tokens, cls_attn = model.image_encoder(image.type(model.dtype), return_local=True)
        student = model.project(global_feat)  # [B, D_t]
        text = self.teacher_text  # [C, D_t], normalised, frozen
        step = self.head.forward_train(text.detach(), tokens, cls_attn)
        student_logits = scale * student @ step.refined.t().to(student.dtype)  # [B, C]
        local_logits = scale * step.local @ text.t().to(step.local.dtype)  # [n*B, C]
        teacher_logits = teacher_logits.float()
        ukd = kd_loss(student_logits.float(), teacher_logits, self.temperature)
        semantic = semantic_kd_loss(local_logits.float(), teacher_logits, self.temperature, self.head.n_local)
        return promptkd_total(ukd, semantic, step.regularisation.float(), self.kd_weight)

    # ----- evaluation ------------------------------------------------------------------------
    @torch.no_grad()
    def class_text(self):
        return self.head.refine(self.teacher_text)  # [C, D_t], image independent

    # ----- checkpoints ----------------------------------------------------------------------
    def checkpoint_state(self, name):
        if name == "Memory":
            return self.memory.checkpoint_state()
        return super().checkpoint_state(name)

    def restore_state(self, name, checkpoint, strict=True):
        if name == "Memory":
            self.memory.restore_checkpoint(checkpoint)
            return
        super().restore_state(name, checkpoint, strict)
