"""Zero-shot CLIP: one hand-written template per data set (ZeroshotCLIP) or an ensemble (ZeroshotCLIP2)."""
import torch

import clip
from datasets.config import prompt_template_override
from engine import TRAINER_REGISTRY, TrainerX
from engine.feature_cache import cached_text_features
from engine.step import Precision

from .clip_backbone import backbone_weights_files, check_class_names, load_clip

CUSTOM_TEMPLATES = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "DescribableTextures": "{} texture.",
    "EuroSAT": "a centered satellite photo of {}.",
    "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.",
    "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.",
    "ImageNet": "a photo of a {}.",
    "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.",
    "ImageNetA": "a photo of a {}.",
    "ImageNetR": "a photo of a {}.",
    # the generated world (tools/world): the plain photo prompt, whatever the set's rendering style
    "WorldObjects": "a photo of a {}.",
    "WorldShapes": "a photo of a {}.",
    "WorldColors": "a photo of a {}.",
    "WorldPatterns": "a photo of a {}.",
    "WorldObjectsSketch": "a photo of a {}.",
    "WorldObjectsCartoon": "a photo of a {}.",
    "WorldObjectsNoisy": "a photo of a {}.",
    "ImageFolder": "a photo of a {}.",  # your own data: DATASET.PROMPT_TEMPLATE sets a better one
}

IMAGENET_TEMPLATES_SELECT = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)


def dataset_template(dataset_name, override=""):
    """``override`` (DATASET.PROMPT_TEMPLATE) when given, else the data set's template."""
    if override:
        return override
    if dataset_name not in CUSTOM_TEMPLATES:
        raise KeyError(
            f'No zero-shot prompt template for data set "{dataset_name}": set DATASET.PROMPT_TEMPLATE '
            '(e.g. "a photo of a {}.") or add one to CUSTOM_TEMPLATES in trainers/zsclip.py'
        )
    return CUSTOM_TEMPLATES[dataset_name]


@torch.no_grad()
def zero_shot_weights(clip_model, prompts):
    """prompts [T][C] -> the normalised mean over templates of the normalised text features: [C, D]."""
    device = clip_model.token_embedding.weight.device
    per_template = []
    for row in prompts:
        features = clip_model.encode_text(clip.tokenize(row).to(device))  # [C, D]
        per_template.append(features / features.norm(dim=-1, keepdim=True))
    text_features = torch.stack(per_template).mean(0)
    return text_features / text_features.norm(dim=-1, keepdim=True)


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
        classnames = [name.replace("_", " ") for name in self.dm.dataset.classnames]
        prompts = [[template.format(name) for name in classnames] for template in self.templates()]  # [T][C]
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
