"""PromptKD (Li et al., CVPR 2024): a prompted ViT-B/16 image encoder distilled from a frozen
PromptSRC teacher (ViT-L/14) on unlabelled images.

The student has IVLP vision prompts and a projector (``VPT_image_trans``) into the teacher's
embedding space; its logits are taken against the teacher's text features, which are computed
once (the teacher is frozen). Loss: KD_WEIGHT * T^2 * KL(teacher || student) / (B * C).
The data protocol is TRAINER.MODAL (datasets/splits.py): base2novel evaluates val on the base
classes' and test on the new classes' test images, against the matching half of the teacher's
text; cross evaluates on all classes.
Checkpoints: ``VLPromptLearner/`` with the prompts and the projector (the frozen CLIP is not stored).
"""
import math

import torch
import torch.nn as nn

from engine import TRAINER_REGISTRY
from engine.checkpoint import CheckpointKeys

from .clip_backbone import half_like_reference, load_clip
from .ivlp import check_depths
from .prompt_trainer import PromptTrainer
from .promptkd_teacher import load_teacher, teacher_weights_files
from .shared.alignment import FeatureAlignment
from .shared.distillation import kd_loss

MODALS = ("base2novel", "cross")


class StudentCLIP(nn.Module):
    """The student: prompted CLIP image encoder -> projector -> normalised feature [B, teacher D].

    Sub-module names are the reference's (image_encoder, VPT_image_trans); the projector has
    the alignment module's shape (1x1 conv, BN over the batch, ReLU, 1x1 conv).
    """

    def __init__(self, clip_model, prompt_cfg, teacher_dim):
        super().__init__()
        check_depths(prompt_cfg, clip_model, text=False)
        self.image_encoder = clip_model.visual
        self.image_encoder.add_prompts(prompt_cfg.N_CTX_VISION, prompt_cfg.PROMPT_DEPTH_VISION)
        self.logit_scale = clip_model.logit_scale
        self.dtype = clip_model.dtype
        self.VPT_image_trans = FeatureAlignment(clip_model.visual.output_dim, teacher_dim)

    def encode_image(self, image, **kwargs):
        return self.image_encoder(image.type(self.dtype), **kwargs)

    def project(self, global_feat):
        """[B, d] student features -> normalised [B, teacher D]."""
        x = self.VPT_image_trans(global_feat)
        return x / x.norm(dim=-1, keepdim=True)

    def forward(self, image):
        return self.project(self.encode_image(image))


@TRAINER_REGISTRY.register()
class PromptKD(PromptTrainer):
    prompt_key = "PROMPTKD"
    vit_only = True

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        if cfg.TRAINER.MODAL not in MODALS:
            raise ValueError(
                f'{cfg.TRAINER.NAME} distils with TRAINER.MODAL "base2novel" or "cross" (its data protocol), '
                f'got "{cfg.TRAINER.MODAL}": add TRAINER.MODAL base2novel (or cross) to the command '
                "(scripts/promptkd/*.sh do)"
            )

    @classmethod
    def weights_files(cls, cfg):
        return {**super().weights_files(cfg), **teacher_weights_files(cfg)}

    # ----- building ----------------------------------------------------------------------
    def load_clip_model(self):
        kd, classnames = self.prompt_cfg, self.dm.dataset.classnames
        self.n_cls = len(classnames)
        self.modal = self.cfg.TRAINER.MODAL
        self.temperature, self.kd_weight = kd.TEMPERATURE, kd.KD_WEIGHT
        clip_model = load_clip(self.cfg, self.precision.name, self.device)
        self.teacher = load_teacher(self.cfg, classnames, self.precision.name, self.device)
        with torch.no_grad():
            self.teacher_text = self.teacher.text_features()  # [C, D_t], normalised, all classes
        return clip_model

    def build_custom_clip(self, clip_model):
        return StudentCLIP(clip_model, self.prompt_cfg, self.teacher_text.shape[-1])

    def to_reference_half(self):
        """PREC fp16: the heads get fp16 convs and fp32 BN, as the reference's convert_weights leaves them."""
        half_like_reference(self.model.VPT_image_trans)

    def is_trainable(self, name):
        return "VPT" in name

    # ----- training ------------------------------------------------------------------------
    def train_inputs(self, batch):
        image, _ = self.parse_batch_train(batch)  # the labels are never used
        return image, self.teacher_logits(image)

    @torch.no_grad()
    def teacher_logits(self, image):
        """The teacher's logits [B, C] over all classes (its own logit scale, unrefined text)."""
        teacher = self.teacher
        features = teacher.image_encoder(image.type(teacher.dtype))
        features = features / features.norm(dim=-1, keepdim=True)
        return teacher.logit_scale.exp() * features @ self.teacher_text.t()

    def losses(self, image, teacher_logits):
        """(total loss, logged parts) of one batch."""
        student_logits = self.model.logit_scale.exp() * self.model(image) @ self.teacher_text.t().to(self.model.dtype)
        loss = self.kd_weight * kd_loss(student_logits.float(), teacher_logits.float(), self.temperature)
        return loss, {}

    # ----- evaluation ------------------------------------------------------------------------
    def class_text(self):
        """The (teacher) text features the student is evaluated against, all classes: [C, D_t]."""
        return self.teacher_text

    def eval_text(self, split):
        text = self.class_text()
        if self.modal == "base2novel":  # val: the base classes, test: the new ones
            base = math.ceil(self.n_cls / 2)
            text = text[:base] if split == "val" else text[base:]
        return text

    def image_features(self, image):
        return self.model(image)  # projected into the teacher's space, normalised

    # ----- checkpoints ----------------------------------------------------------------------
    def saved_models(self):
        # the prompts and the projector; reference checkpoints hold the whole student: keep those keys
        return {"VLPromptLearner": (self.model, CheckpointKeys("trainable"))}
