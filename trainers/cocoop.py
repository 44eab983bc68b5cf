"""CoCoOp (Zhou et al., CVPR 2022): CoOp's context shifted per image by a meta-net.

Per image i: bias_i = meta_net(norm(f_i)) [d]; the context tokens of every class become
ctx + bias_i; the class text is encoded per image, giving text [B, C, D]; logits_i =
scale * norm(f_i) @ norm(text_i)^T. The text depends on the image, so it is recomputed for
every test image (no once-per-evaluation text as in CoOp).

Names are the reference's: ``prompt_learner.ctx``, ``prompt_learner.meta_net.linear1`` /
``linear2`` (Linear(vis_dim, vis_dim // 16), ReLU, Linear(vis_dim // 16, ctx_dim)), and the
registered model "prompt_learner" (checkpoints ``prompt_learner/model.pth.tar-N`` hold the
prompt learner's own state dict: ``ctx``, ``meta_net.*``; ``token_prefix`` / ``token_suffix``
are rebuilt from the class names on load).
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from engine import TRAINER_REGISTRY
from engine.config import CfgNode

from .coop import CoOp, CustomCLIP, PromptLearner


def meta_net(vis_dim, ctx_dim):
    """Linear(vis_dim, vis_dim // 16) -> ReLU -> Linear(vis_dim // 16, ctx_dim), the reference's layer names."""
    if vis_dim < 16:
        raise ValueError(f"CoCoOp's meta-net needs an image feature width of at least 16, got {vis_dim}")
    hidden = vis_dim // 16
    return nn.Sequential(
        OrderedDict(
            [
                ("linear1", nn.Linear(vis_dim, hidden)),
                ("relu", nn.ReLU(inplace=True)),
                ("linear2", nn.Linear(hidden, ctx_dim)),
            ]
        )
    )


class CoCoOpPromptLearner(PromptLearner):
    """A generic context (N_CTX tokens or the CTX_INIT words) with the class name at the end,
    plus the meta-net; prompt_cfg is TRAINER.COCOOP (no CSC, no class position)."""

    def __init__(self, prompt_cfg, input_size, classnames, clip_model):
        generic = dict(N_CTX=prompt_cfg.N_CTX, CTX_INIT=prompt_cfg.CTX_INIT, CSC=False, CLASS_TOKEN_POSITION="end")
        super().__init__(CfgNode(generic), input_size, classnames, clip_model)
        # built after the context, as the reference: a seeded run draws the same initial weights
        self.meta_net = meta_net(clip_model.visual.output_dim, self.ctx.shape[-1]).to(
            device=self.ctx.device, dtype=clip_model.dtype
        )

    def instance_contexts(self, image_features):
        """ctx + meta_net(f_i) for each image: [B, D] normalised features -> [B, n_ctx, d]."""
        bias = self.meta_net(image_features.to(self.meta_net.linear1.weight.dtype))  # [B, d]
        return self.ctx.unsqueeze(0) + bias.unsqueeze(1).to(self.ctx.dtype)


class CoCoOpCLIP(CustomCLIP):
    """Frozen CLIP around a CoCoOpPromptLearner: per-image class text and logits."""

    prompt_learner_class = CoCoOpPromptLearner

    def instance_text_features(self, image_features):
        """Normalised class text per image: [B, D] normalised image features -> [B, C, D].

        Each image's prompts share SOS + its shifted context, so that prefix is encoded once
        per image (encode_text_shared_prefix; equal to encoding the full prompts).
        """
        learner = self.prompt_learner
        contexts = learner.instance_contexts(image_features)  # [B, n_ctx, d]
        sos, rows = learner.token_prefix[0], learner.token_suffix  # [1, d], [C, 77 - 1 - n_ctx, d]
        encode = self.text_encoder.forward_shared_prefix
        text = torch.stack([encode(torch.cat([sos, ctx_i]), rows, self.tokenized_prompts) for ctx_i in contexts])
        return text / text.norm(dim=-1, keepdim=True)  # [B, C, D]

    def text_features(self):
        raise RuntimeError("CoCoOp's class text depends on the image: use instance_text_features(image_features)")

    def forward(self, image):
        image_features = self.encode_image(image)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)  # [B, D]
        text = self.instance_text_features(image_features)  # [B, C, D]
        return self.logit_scale.exp() * torch.einsum("bd,bcd->bc", image_features, text)  # [B, C]


@TRAINER_REGISTRY.register()
class CoCoOp(CoOp):
    """The reference's CoCoOp trainer: CE on the per-image logits, ctx and meta-net trained
    (batch 1 in its configs: the text encoder runs B x C prompts per step)."""

    prompt_key = "COCOOP"
    log_trainable = True

    def build_custom_clip(self, clip_model):
        return CoCoOpCLIP(self.prompt_cfg, self.cfg.INPUT.SIZE, self.dm.dataset.classnames, clip_model)

    def losses(self, image, label):
        return F.cross_entropy(self.model(image), label), {}  # the reference logs the loss only

    # the class text depends on the image: no text once per evaluation, per-image text per batch
    def before_evaluation(self, split):
        pass

    def logits_from_features(self, features):
        """CoCoOpCLIP.forward after its image encoder: normalised features [B, D] -> logits [B, C]."""
        text = self.model.instance_text_features(features)  # [B, C, D]
        return self.model.logit_scale.exp() * torch.einsum("bd,bcd->bc", features, text)
