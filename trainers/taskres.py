"""TaskRes (Yu et al., CVPR 2023): tune the classifier, t' = t + alpha * x, over a frozen base t.

The base t [C, D] is CLIP's text classifier, computed once at build time (the text tower
never runs during training): per class, the projected EOT features of the data set's
template(s), averaged without normalising. Only the residual x [C, D] (zero at start)
trains; the image tower is frozen. TaskRes* ("enhanced base") recomputes t with a text
projection read from a file ({"state_dict": {"weight": [D, width]}}, see
trainers/taskres_base.py for how to train one).
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import clip
from datasets.config import prompt_template_override
from engine import TRAINER_REGISTRY
from engine.checkpoint import CheckpointKeys
from engine.feature_cache import cached_text_features
from engine.metrics import compute_accuracy
from engine.utils import load_checkpoint

from .prompt_trainer import PromptTrainer
from .shared.templates import IMAGENET_TEMPLATES_SELECT, dataset_template

NO_ENHANCED_BASE = ("", "none")


def taskres_templates(dataset_name, override=""):
    """The base's templates: the data set's own one (or ``override``, DATASET.PROMPT_TEMPLATE); ImageNet:
    the 7 selected ones plus its own (8).

    A fresh list each call (the reference grew its shared module-level list on every build).
    """
    templates = list(IMAGENET_TEMPLATES_SELECT) if dataset_name == "ImageNet" else []
    return templates + [dataset_template(dataset_name, override)]


@torch.no_grad()
def eot_features(clip_model, tokens):
    """The text tower's output at the EOT token, before the projection: [N, width]."""
    eot = tokens.argmax(dim=-1)  # [N]: EOT has the largest id
    length = int(eot.max()) + 1  # causal attention: positions after the last EOT change nothing
    dtype = clip_model.dtype
    x = clip_model.token_embedding(tokens[:, :length]).type(dtype)
    x = x + clip_model.positional_embedding[:length].type(dtype)  # [N, n, width]
    x = clip_model.ln_final(clip_model.transformer(x)).type(dtype)
    return x[torch.arange(x.shape[0], device=x.device), eot]


@torch.no_grad()
def class_eot_features(clip_model, classnames, templates):
    """[C, T, width]: EOT features of every (class, template) prompt, one text-tower run per class.

    Class names are used as the data set gives them (the reference does not replace "_").
    """
    device = clip_model.token_embedding.weight.device
    rows = []
    for name in classnames:
        tokens = clip.tokenize([template.format(name) for template in templates]).to(device)
        rows.append(eot_features(clip_model, tokens))
    return torch.stack(rows)


@torch.no_grad()
def base_text_features(eot, projection):
    """The base classifier [C, D]: projected EOT features [C, T, width] @ [width, D], template mean."""
    return (eot @ projection.type(eot.dtype)).mean(dim=1)


def load_enhanced_projection(path, width, embed_dim, backbone=""):
    """The text projection [width, D] stored in an enhanced-base file as ``state_dict.weight`` [D, width]."""
    expected = (
        f'{{"state_dict": {{"weight": tensor [{embed_dim}, {width}]}}}} (the text projection of '
        f"{backbone or 'this backbone'} as an nn.Linear({width}, {embed_dim}) weight)"
    )
    where = f'TRAINER.TaskRes.ENHANCED_BASE "{path}"'
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{where} does not exist: give a file holding {expected}, or none")
    try:
        checkpoint = load_checkpoint(path, map_location="cpu")
    except RuntimeError as e:
        raise ValueError(f"{where} cannot be read ({e}); it should hold {expected}") from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    weight = state.get("weight") if isinstance(state, dict) else None
    if not isinstance(weight, torch.Tensor):
        found = state if isinstance(state, dict) else checkpoint if isinstance(checkpoint, dict) else {}
        keys = list(found)[:8]
        raise ValueError(f"{where} has no state_dict.weight (found keys {keys}); it should hold {expected}")
    if tuple(weight.shape) != (embed_dim, width):
        raise ValueError(
            f"{where} holds a weight of shape {list(weight.shape)}, but it should hold {expected}: "
            "was it made for another backbone?"
        )
    return weight.t()


class TaskResLearner(nn.Module):
    """Class weights t + alpha * x; names (base_text_features, text_feature_residuals) are the reference's."""

    def __init__(self, base, alpha):
        super().__init__()
        self.alpha = alpha
        self.register_buffer("base_text_features", base)  # [C, D]
        self.text_feature_residuals = nn.Parameter(torch.zeros_like(base))  # [C, D]

    def forward(self):
        return self.base_text_features + self.alpha * self.text_feature_residuals  # [C, D]


class ClassWeightCLIP(nn.Module):
    """CLIP's frozen image tower against learned class weights: scale * norm(img) @ norm(weights())^T."""

    def __init__(self, clip_model, prompt_learner):
        super().__init__()
        self.image_encoder = clip_model.visual
        self.logit_scale = clip_model.logit_scale
        self.prompt_learner = prompt_learner  # any module returning class weights [C, D]

    def encode_image(self, image):
        return self.image_encoder(image.type(self.image_encoder.conv1.weight.dtype))  # [B, D]

    def text_features(self):
        weights = self.prompt_learner()
        return weights / weights.norm(dim=-1, keepdim=True)  # [C, D]

    def forward(self, image):
        image_features = self.encode_image(image)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        return self.logit_scale.exp() * image_features @ self.text_features().t()  # [B, C]


@TRAINER_REGISTRY.register()
class TaskRes(PromptTrainer):
    """Regular base (TRAINER.TaskRes.ENHANCED_BASE none) or enhanced base (a projection file)."""

    prompt_key = "TaskRes"
    log_trainable = False
    frozen_image_encoder = True  # only class weights are learned

    @classmethod
    def weights_files(cls, cfg):
        files = super().weights_files(cfg)
        path = cfg.TRAINER.TaskRes.ENHANCED_BASE
        if str(path).lower() not in NO_ENHANCED_BASE:
            files["TRAINER.TaskRes.ENHANCED_BASE"] = path
        return files

    def build_custom_clip(self, clip_model):
        templates = taskres_templates(self.cfg.DATASET.NAME, prompt_template_override(self.cfg))
        print(f"Templates of the base ({len(templates)}): {templates}")
        classnames = self.dm.dataset.classnames
        prompts = [[template.format(name) for template in templates] for name in classnames]  # [C][T]
        eot = cached_text_features(
            self, clip_model, "taskres-eot", prompts, lambda: class_eot_features(clip_model, classnames, templates)
        )  # [C, T, width]
        head = self.build_head(clip_model, eot)
        # the reference casts the whole model to fp32 after the base is computed, whatever PREC
        clip_model.float()
        return ClassWeightCLIP(clip_model, head.float())

    def build_head(self, clip_model, eot):
        """The class-weight module from the EOT features [C, T, width]."""
        projection = clip_model.text_projection
        path = self.prompt_cfg.ENHANCED_BASE
        if str(path).lower() in NO_ENHANCED_BASE:
            print(">> Use regular base!")
        else:
            print(f'>> Use enhanced base! (text projection from "{path}")')
            width, embed_dim = projection.shape
            projection = load_enhanced_projection(path, width, embed_dim, self.cfg.MODEL.BACKBONE.NAME)
            projection = projection.to(device=eot.device)
        base = base_text_features(eot, projection)  # [C, D]
        print(f">> Residual scale (alpha): {self.prompt_cfg.RESIDUAL_SCALE}")
        return TaskResLearner(base, self.prompt_cfg.RESIDUAL_SCALE)

    def is_trainable(self, name):
        return name == "prompt_learner.text_feature_residuals"

    def saved_models(self):
        return {"prompt_learner": (self.model.prompt_learner, CheckpointKeys(fit=self.fit_class_rows))}

    def trainable_modules(self):
        return [module for module, _ in self.saved_models().values()]

    def losses(self, image, label):
        output = self.model(image)
        return F.cross_entropy(output, label), {"acc": compute_accuracy(output, label)[0]}

    def fit_class_rows(self, state):
        """A loaded state dict with ImageNet-trained class rows cut to the classes of ImageNet-A/-R (matched by wnid)."""
        rows = state.get("text_feature_residuals")
        if rows is not None and rows.shape[0] != self.num_classes:
            index = torch.as_tensor(imagenet_subset_rows(self.dm.dataset, rows.shape[0]), device=rows.device)
            for key in ("base_text_features", "text_feature_residuals"):
                if key in state:
                    state[key] = state[key].index_select(0, index)
        return state


def imagenet_subset_rows(dataset, n_rows):
    """Row of each class of an ImageNet variant in an ImageNet classifier of ``n_rows`` classes.

    ImageNet's labels follow its sorted wnids (classnames.txt, a copy of which every variant
    folder holds); the variant's class folders are its wnids.
    """
    from datasets.imagenet import ImageNetVariant, read_classnames

    n_cls = len(dataset.classnames)
    if not isinstance(dataset, ImageNetVariant):
        raise ValueError(
            f"The checkpoint has {n_rows} classes but {type(dataset).__name__} has {n_cls}: "
            "evaluate it on the data set it was trained on (only ImageNet variants are remapped)"
        )
    all_wnids = sorted(read_classnames(os.path.join(dataset.dataset_dir, "classnames.txt")))
    if len(all_wnids) != n_rows:
        raise ValueError(
            f"The checkpoint has {n_rows} classes, but {dataset.dataset_dir}/classnames.txt lists "
            f"{len(all_wnids)}: it should be a copy of the classnames.txt of the ImageNet it was trained on"
        )
    wnid_of = {}
    for item in dataset.test:
        wnid_of[item.label] = os.path.basename(os.path.dirname(item.impath))
    return [all_wnids.index(wnid_of[label]) for label in range(n_cls)]
