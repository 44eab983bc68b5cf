"""MaPLe (Khattak et al., CVPR 2023): multi-modal prompts, the vision prompts computed from the
text prompts at every step.

Text: N_CTX context tokens after SOS (block 0) and ``compound_prompts_text[i]`` [N_CTX, text width]
replacing them at the input of blocks 1 .. PROMPT_DEPTH-1. Vision: ``proj(ctx)`` appended after
the patches and ``compound_prompt_projections[i](compound_prompts_text[i])`` replacing those
tokens at the same blocks (each a Linear text width -> vision width). CE loss only.
Parameter names are the reference's (``prompt_learner.ctx``, ``prompt_learner.proj.*``,
``prompt_learner.compound_prompts_text.{i}``, ``prompt_learner.compound_prompt_projections.{i}.*``);
checkpoints: ``MultiModalPromptLearner/`` holding the prompt learner (the frozen CLIP is not stored).
"""
import copy

import torch
import torch.nn.functional as F
from torch import nn

from engine import TRAINER_REGISTRY
from engine.checkpoint import CheckpointKeys

from .coop import CustomCLIP, PromptLearner
from .ivlp import PROMPT_BUFFERS, initial_ivlp_context
from .prompt_trainer import PromptTrainer


class MultiModalPromptLearner(PromptLearner):
    """CoOp's generic context (CTX_INIT words when N_CTX <= 4) plus MaPLe's coupling functions."""

    def __init__(self, prompt_cfg, input_size, classnames, clip_model):
        super().__init__(prompt_cfg, input_size, classnames, clip_model)
        depth = prompt_cfg.PROMPT_DEPTH
        text_width = clip_model.ln_final.weight.shape[0]
        vision_width = clip_model.visual.conv1.weight.shape[0]
        # the reference's construction order (proj, deep text prompts, projections), so seeded
        # initial values follow it; the projections start as copies of one layer, as there
        self.proj = nn.Linear(text_width, vision_width)
        self.compound_prompts_text = nn.ParameterList(
            [nn.Parameter(torch.empty(self.n_ctx, text_width).normal_(std=0.02)) for _ in range(depth - 1)]
        )
        single = nn.Linear(text_width, vision_width)
        self.compound_prompt_projections = nn.ModuleList([copy.deepcopy(single) for _ in range(depth - 1)])

    @staticmethod
    def initial_context(prompt_cfg, n_cls, clip_model):
        ctx_vectors, prefix = initial_ivlp_context(prompt_cfg.N_CTX, prompt_cfg.CTX_INIT, clip_model)
        print("MaPLe design: Multi-modal Prompt Learning")
        print(f'Initial context: "{prefix}"')
        print(f"Number of MaPLe context words (tokens): {prompt_cfg.N_CTX}")
        return ctx_vectors, prefix

    def vision_prompts(self):
        """The vision prompts of this step: proj(ctx) [n_ctx, vision width] and one per deeper block."""
        shallow = self.proj(self.ctx.to(self.proj.weight.dtype))
        deep = [layer(prompt) for layer, prompt in zip(self.compound_prompt_projections, self.compound_prompts_text)]
        return shallow, deep


class MaPLeCLIP(CustomCLIP):
    prompt_learner_class = MultiModalPromptLearner

    def text_deep_prompts(self):
        return list(self.prompt_learner.compound_prompts_text)

    def encode_image(self, image, **kwargs):
        shallow, deep = self.prompt_learner.vision_prompts()
        return self.image_encoder(image.type(self.dtype), shallow_prompt=shallow, deep_prompts=deep, **kwargs)


def check_maple_depth(cfg, clip_model):
    depth, blocks = cfg.PROMPT_DEPTH, clip_model.transformer.layers
    if not 1 <= depth <= min(blocks, clip_model.visual.transformer.layers):
        raise ValueError(
            f"TRAINER.MAPLE.PROMPT_DEPTH {depth} does not fit the CLIP encoders ({blocks} text blocks, "
            f"{clip_model.visual.transformer.layers} image blocks): set it between 1 and the smaller"
        )


@TRAINER_REGISTRY.register()
class MaPLe(PromptTrainer):
    prompt_key = "MAPLE"
    vit_only = True
    optimize_all_parameters = True  # as the reference, which hands the optimizer the whole model

    def build_custom_clip(self, clip_model):
        check_maple_depth(self.prompt_cfg, clip_model)
        return MaPLeCLIP(self.prompt_cfg, self.cfg.INPUT.SIZE, self.dm.dataset.classnames, clip_model)

    def to_reference_half(self):
        self.model.prompt_learner.proj.half()  # as the reference; the deep projections stay fp32

    def is_trainable(self, name):
        return "prompt_learner" in name

    def losses(self, image, label):
        return F.cross_entropy(self.model(image), label), {}

    def saved_models(self):
        # the prompt learner; reference checkpoints hold the whole model and load whole
        keys = CheckpointKeys("trainable", unsaved=PROMPT_BUFFERS, load_unsaved=True)
        return {"MultiModalPromptLearner": (self.model, keys)}
