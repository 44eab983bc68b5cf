"""KgCoOp (Yao et al., CVPR 2023): CoOp with a knowledge-guided regulariser.

Loss = CE(logits, y) + W * (1 - mean_c cos(t_c, w_c)), where t_c is the prompted class text
and w_c the frozen CLIP's text feature of the data set's hand-written prompt ("a photo of a
{}, a type of pet." ...), both normalised; W is TRAINER.COOP.W (the reference's scripts use
8.0). As in the reference, 1 - mean cos is what the code computes (for unit vectors it is half
the mean squared distance the paper writes). Only the context is trained; checkpoints are
CoOp's (``prompt_learner/`` with ``ctx``); the reference's unused ``meta_net`` and
``bias_vectors`` are not built, and are ignored when its checkpoints load.
"""
import torch.nn.functional as F

from datasets.config import prompt_template_override
from engine import TRAINER_REGISTRY
from engine.feature_cache import cached_text_features
from engine.metrics import compute_accuracy

from .coop import CoOp
from .shared.templates import KGCOOP_TEMPLATES, dataset_template, fill_templates, normalised, template_features

def kgcoop_template(dataset_name, override=""):
    """``override`` (DATASET.PROMPT_TEMPLATE) when given, else the reference's prompt of the data set."""
    return dataset_template(dataset_name, override, KGCOOP_TEMPLATES, "KGCOOP_TEMPLATES")


def hand_crafted_prompts(classnames, template):
    """``template`` filled with each class name ("_" read as a space): [C] strings."""
    return fill_templates([template], classnames)[0]


def hand_crafted_text_features(clip_model, classnames, template):
    """The frozen CLIP's normalised text features [C, D] of ``template`` filled with each class name."""
    return normalised(template_features(clip_model, [hand_crafted_prompts(classnames, template)])[0])


def knowledge_guided_loss(text, clip_text):
    """1 - mean over classes of cos(text_c, clip_text_c); text, clip_text: [C, D] -> scalar."""
    return 1.0 - F.cosine_similarity(text, clip_text.to(text.dtype), dim=-1, eps=1e-7).mean()


@TRAINER_REGISTRY.register()
class KgCoOp(CoOp):
    """CoOp's prompt learner and evaluation; the loss adds W * the knowledge-guided term."""

    def build_custom_clip(self, clip_model):
        classnames = self.dm.dataset.classnames
        template = kgcoop_template(self.cfg.DATASET.NAME, prompt_template_override(self.cfg))
        prompts = hand_crafted_prompts(classnames, template)
        print(f"Prompts: {prompts}")
        self.clip_text = cached_text_features(
            self, clip_model, "kgcoop-anchors", prompts, lambda: hand_crafted_text_features(clip_model, classnames, template)
        )  # [C, D], frozen
        return super().build_custom_clip(clip_model)

    def losses(self, image, label):
        text = self.model.text_features()  # [C, D], normalised
        logits = self.model.logit_scale.exp() * self.image_features(image) @ text.t()  # [B, C]
        loss = F.cross_entropy(logits, label) + self.prompt_cfg.W * knowledge_guided_loss(text, self.clip_text)
        return loss, {"acc": compute_accuracy(logits, label)[0]}
