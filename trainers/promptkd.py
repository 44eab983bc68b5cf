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

from engine import TRAINER_REGISTRY, TrainerX
from engine.optim import build_lr_scheduler, build_optimizer
from engine.utils import load_pretrained_weights, trainable_state_dict

from .clip_backbone import PRECISIONS, half_like_reference, load_clip, make_scaler, optimizer_step, resolve_precision
from .ivlp import check_depths
from .promptkd_teacher import load_teacher
from .textrefiner.alignment import FeatureAlignment
from .textrefiner.losses import kd_loss

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

    def project(self, global_feat):
        """[B, d] student features -> normalised [B, teacher D]."""
        x = self.VPT_image_trans(global_feat)
        return x / x.norm(dim=-1, keepdim=True)

    def forward(self, image):
        return self.project(self.image_encoder(image.type(self.dtype)))


@TRAINER_REGISTRY.register()
class PromptKD(TrainerX):
    model_name = "VLPromptLearner"

    def check_cfg(self, cfg):
        kd = cfg.TRAINER.PROMPTKD
        if kd.PREC not in PRECISIONS:
            raise ValueError(f'TRAINER.PROMPTKD.PREC must be fp16, fp32 or amp, got "{kd.PREC}"')
        if cfg.TRAINER.MODAL not in MODALS:
            raise ValueError(
                f'{cfg.TRAINER.NAME} distils with TRAINER.MODAL "base2novel" or "cross" (its data protocol), '
                f'got "{cfg.TRAINER.MODAL}": add TRAINER.MODAL base2novel (or cross) to the command '
                "(scripts/promptkd/*.sh do)"
            )

    # ----- building ----------------------------------------------------------------------
    def build_model(self):
        cfg, kd = self.cfg, self.cfg.TRAINER.PROMPTKD
        classnames = self.dm.dataset.classnames
        self.n_cls = len(classnames)
        self.modal = cfg.TRAINER.MODAL
        self.temperature, self.kd_weight = kd.TEMPERATURE, kd.KD_WEIGHT
        self.prec = resolve_precision(kd.PREC, self.device)
        clip_model = load_clip(cfg, self.prec, self.device)
        self.teacher = load_teacher(cfg, classnames, self.prec, self.device)
        with torch.no_grad():
            self.teacher_text = self.teacher.text_features()  # [C, D_t], normalised, all classes

        print("Building custom CLIP")
        self.model = StudentCLIP(clip_model, kd, self.teacher_text.shape[-1])
        self.build_extra_modules()
        if self.prec == "fp16":
            self.to_reference_half()
        print("Turning off gradients in both the image and the text encoder")
        for name, param in self.model.named_parameters():
            param.requires_grad_(self.is_trainable(name))
        enabled = [name for module in self.trainable_modules() for name, p in module.named_parameters() if p.requires_grad]
        print(f"Parameters to be updated: {enabled}")
        print(f"Parameters count: {len(enabled)}")
        if cfg.MODEL.INIT_WEIGHTS:
            load_pretrained_weights(self.model, cfg.MODEL.INIT_WEIGHTS)
        for module in self.trainable_modules():
            module.to(self.device)

        params = [p for module in self.trainable_modules() for p in module.parameters() if p.requires_grad]
        self.optim = build_optimizer(params, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_models()
        self.scaler = make_scaler(self.prec, self.device)
        self._eval_text = None

    def build_extra_modules(self):
        """Modules a subclass adds next to the student (built before the optimizer)."""

    def to_reference_half(self):
        """PREC fp16: the heads get fp16 convs and fp32 BN, as the reference's convert_weights leaves them."""
        half_like_reference(self.model.VPT_image_trans)

    def is_trainable(self, name):
        return "VPT" in name

    def trainable_modules(self):
        return [self.model]

    def register_models(self):
        self.register_model(self.model_name, self.model, self.optim, self.sched)

    # ----- training ------------------------------------------------------------------------
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

    def forward_backward(self, batch):
        image, _ = self.parse_batch_train(batch)  # the labels are never used
        teacher_logits = self.teacher_logits(image)
        loss, parts = optimizer_step(self, lambda: self.losses(image, teacher_logits))
        summary = {"loss": loss.item(), **{k: float(v) for k, v in parts.items()}}
        if (self.batch_idx + 1) == self.num_batches:
            self.sched.step()  # once per epoch, after the last batch
        return summary

    # ----- evaluation ------------------------------------------------------------------------
    def class_text(self):
        """The (teacher) text features the student is evaluated against, all classes: [C, D_t]."""
        return self.teacher_text

    def before_evaluation(self, split):
        text = self.class_text()
        if self.modal == "base2novel":
            base = math.ceil(self.n_cls / 2)
            text = text[:base] if split == "val" else text[base:]
        self._eval_text = text

    def after_evaluation(self, split):
        self._eval_text = None

    def model_inference(self, image):
        features = self.model(image)
        return self.model.logit_scale.exp() * features @ self._eval_text.t().to(features.dtype)

    # ----- checkpoints ----------------------------------------------------------------------
    def checkpoint_state(self, name):
        return {"state_dict": trainable_state_dict(self.model)}

    def restore_state(self, name, checkpoint, strict=True):
        # reference checkpoints hold the whole student: keep the keys ours save
        saved = set(trainable_state_dict(self.model))
        state = {k: v for k, v in checkpoint["state_dict"].items() if k in saved}
        super().restore_state(name, {**checkpoint, "state_dict": state}, strict=False)
