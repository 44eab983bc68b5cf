"""PromptSRC (Khattak et al., ICCV 2023): IVLP prompts trained with self-regularising
constraints towards the frozen CLIP, and Gaussian prompt aggregation (GPA) over the epochs.

PromptKD's teacher is a PromptSRC model (ViT-L/14): train it with
``scripts/promptsrc/base2new_train.sh`` and the ``vit_l14_c2_ep20_batch8_4+4ctx`` config.

Per step: CE(z, y) + TEXT_LOSS_WEIGHT * L1(text, frozen text) + IMAGE_LOSS_WEIGHT * L1(image,
frozen image) + KL(frozen logits || z) / (B * C), where the frozen text is the mean of the 60
ImageNet templates' CLIP features and the frozen image is the prompt-free CLIP image feature.
Checkpoints: ``VLPromptLearner/model.pth.tar-N`` holding the prompts (the frozen CLIP is not stored).
"""
from dataclasses import replace

import torch
import torch.nn.functional as F

from clip.model import convert_weights
from engine import TRAINER_REGISTRY
from engine.checkpoint import ExtraState
from engine.feature_cache import cached_text_features

from .clip_backbone import load_clip
from .gpa import PromptAverager, gaussian_epoch_weights
from .ivlp import IVLP
from .shared.templates import IMAGENET_TEMPLATES, fill_templates, normalised_mean, template_features


def template_prompts(classnames, templates=IMAGENET_TEMPLATES):
    """Every template filled with every class name ("_" read as a space): [T][C] strings."""
    return fill_templates(templates, classnames)


def template_text_features(clip_model, classnames, templates=IMAGENET_TEMPLATES):
    """Mean over the templates of CLIP's (unnormalised) text features, normalised: [C, D]."""
    return normalised_mean(template_features(clip_model, template_prompts(classnames, templates)))


def kl_to_frozen(logits, frozen_logits):
    """KL(softmax(frozen) || softmax(logits)) summed, divided by the logits' element count."""
    kl = F.kl_div(F.log_softmax(logits, dim=1), F.log_softmax(frozen_logits, dim=1), reduction="sum", log_target=True)
    return kl / logits.numel()


@TRAINER_REGISTRY.register()
class PromptSRC(IVLP):
    prompt_key = "PROMPTSRC"

    def load_clip_model(self):
        classnames = self.dm.dataset.classnames
        # fp32 first: the frozen text references come from the fp32 CLIP, as in the reference
        clip_model = load_clip(self.cfg, "fp32", self.device)
        print(f"Computing the frozen text features of {len(IMAGENET_TEMPLATES)} templates x {len(classnames)} classes")
        self.fixed_embeddings = cached_text_features(
            self, clip_model, "promptsrc-frozen-text", template_prompts(classnames),
            lambda: template_text_features(clip_model, classnames),
        )  # [C, D], normalised
        if self.precision.name == "fp16":
            convert_weights(clip_model)
        return clip_model

    def build_extra_modules(self):
        src = self.prompt_cfg
        self.gpa = PromptAverager(gaussian_epoch_weights(src.GPA_MEAN, src.GPA_STD, self.cfg.OPTIM.MAX_EPOCH))

    def losses(self, image, label):
        """The total loss of one batch (and no logged parts)."""
        model = self.model
        scale = model.logit_scale.exp()
        text = model.text_features()  # [C, D], normalised
        image_features = model.encode_image(image)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)  # [B, D]
        logits = scale * image_features @ text.t()
        loss = F.cross_entropy(logits, label)
        for term in self.self_regularisation(image, text, image_features, logits):
            loss = loss + term
        return loss, {}

    def self_regularisation(self, image, text, image_features, logits):
        """PromptSRC's constraints towards the frozen CLIP: (KL on logits, L1 on text, L1 on image features).

        text [C, D], image_features [B, D] (normalised, prompted), logits [B, C] the prompted logits.
        """
        src, model = self.prompt_cfg, self.model
        with torch.no_grad():  # the frozen CLIP: its image encoder without prompts
            frozen_image = model.encode_image(image, use_prompts=False)
            frozen_image = frozen_image / frozen_image.norm(dim=-1, keepdim=True)
            fixed = self.fixed_embeddings.to(frozen_image.dtype)
            frozen_logits = model.logit_scale.exp() * frozen_image @ fixed.t()
        loss_text = F.l1_loss(text.float(), self.fixed_embeddings) * src.TEXT_LOSS_WEIGHT
        loss_image = F.l1_loss(image_features.float(), frozen_image.float()) * src.IMAGE_LOSS_WEIGHT
        return kl_to_frozen(logits, frozen_logits), loss_text, loss_image

    # ----- GPA ----------------------------------------------------------------------------
    def prompts(self):
        return {name: p for name, p in self.model.named_parameters() if p.requires_grad}

    def after_epoch(self):
        self.gpa.add(self.epoch, self.prompts())
        if self.epoch + 1 == self.max_epoch:
            print("Using GPA model for final inference...")
            with torch.no_grad():
                for name, value in self.gpa.average().items():
                    param = self.model.get_parameter(name)
                    param.copy_(value.to(param.dtype))
        super().after_epoch()  # the last checkpoint then holds the GPA prompts

    # ----- checkpoints ----------------------------------------------------------------------
    def saved_models(self):
        """IVLP's, with the GPA running sum beside the prompts (optional: older files have none)."""
        gpa = ExtraState("gpa", lambda: self.gpa.state_dict(), lambda state: self.gpa.load_state_dict(state, self.prompts()))
        return {name: (module, replace(keys, extra=(*keys.extra, gpa))) for name, (module, keys) in super().saved_models().items()}
