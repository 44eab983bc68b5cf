"""Zero-shot CLIP: one hand-written template per data set (ZeroshotCLIP) or an ensemble (ZeroshotCLIP2);
the templates and their encoding are trainers/shared/templates.py's."""
from datasets.config import prompt_template_override
from engine import TRAINER_REGISTRY, TrainerX
from engine.feature_cache import cached_text_features
from engine.step import Precision

from .clip_backbone import backbone_weights_files, check_class_names, load_clip
from .shared.templates import (
    IMAGENET_TEMPLATES_SELECT, dataset_template, fill_templates, mean_of_normalised, template_features,
)

def zero_shot_weights(clip_model, prompts):
    """prompts [T][C] -> the normalised mean over templates of the normalised text features: [C, D]."""
    return mean_of_normalised(template_features(clip_model, prompts))


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(TrainerX):
    """Evaluation only: logits = exp(logit_scale) * norm(image) @ norm(text(template(class)))^T."""

    learns = False

    @classmethod
    def weights_files(cls, cfg):
        return backbone_weights_files(cfg)

    def templates(self):
        return [dataset_template(self.cfg.DATASET.NAME, prompt_template_override(self.cfg))]

    def build_model(self):
        cfg = self.cfg
        # the reference runs CLIP in fp16 on the GPU; on CPU that becomes fp32
        self.set_precision(Precision.resolve("fp16", self.device))
        check_class_names(self.dm.dataset)
        clip_model = load_clip(cfg, self.precision.name, self.device)
        prompts = fill_templates(self.templates(), self.dm.dataset.classnames)  # [T][C]
        for row in prompts:
            print(f"Prompts: {row}")
        self.text_features = cached_text_features(
            self, clip_model, "zeroshot-weights", prompts, lambda: zero_shot_weights(clip_model, prompts)
        )  # [C, D]
        self.clip_model = clip_model

    def frozen_image_tower(self):
        return self.clip_model.visual

    def image_features(self, image):
        """Normalised image features [B, D]."""
        image_features = self.clip_model.encode_image(image.type(self.clip_model.dtype))
        return image_features / image_features.norm(dim=-1, keepdim=True)

    def logits_from_features(self, image_features):
        logit_scale = self.clip_model.logit_scale.exp()
        return logit_scale * image_features @ self.text_features.t()  # [B, C]

    def model_inference(self, image):
        return self.logits_from_features(self.image_features(image))

    def train(self):
        raise RuntimeError(f"{self.__class__.__name__} has nothing to train: run train.py with --eval-only")


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Prompt ensembling over IMAGENET_TEMPLATES_SELECT (+ the data set's own template)."""

    def templates(self):
        templates = list(IMAGENET_TEMPLATES_SELECT)
        if self.cfg.DATASET.NAME != "ImageNet":
            templates.append(dataset_template(self.cfg.DATASET.NAME, prompt_template_override(self.cfg)))
        return templates
