"""Independent vision-language prompting (IVLP, multimodal-prompt-learning's baseline): the
prompted CLIP that IVLP and PromptSRC train and PromptKD's teacher runs. The text context is the
first text block's prompt; deep prompts live in the CLIP blocks themselves
(clip.model.add_ivlp_prompts), so the model is clip/'s, not a copy. The IVLP trainer: CE only.

State-dict names are the reference's: ``prompt_learner.ctx``, ``image_encoder.VPT``,
``image_encoder.transformer.resblocks.{i}.VPT_shallow`` and
``text_encoder.transformer.resblocks.{i}.VPT_shallow``.
"""
import torch
import torch.nn.functional as F
from torch import nn

from clip.model import add_ivlp_prompts
from engine import TRAINER_REGISTRY
from engine.checkpoint import CheckpointKeys

from .coop import CustomCLIP, PromptLearner, token_embeddings
from .prompt_trainer import PromptTrainer

PROMPT_BUFFERS = ("prompt_learner.token_prefix", "prompt_learner.token_suffix")


def initial_ivlp_context(n_ctx, ctx_init, clip_model):
    """[n_ctx, d] context and its words: the CTX_INIT embeddings when n_ctx <= 4 (the reference's
    rule; with fewer context tokens than words the rest stay fixed text), else N(0, 0.02)."""
    if ctx_init and n_ctx <= 4:
        ctx_init = ctx_init.replace("_", " ")
        return token_embeddings(clip_model, ctx_init)[1 : 1 + n_ctx], ctx_init
    ctx_dim = clip_model.ln_final.weight.shape[0]
    device = clip_model.token_embedding.weight.device
    ctx_vectors = torch.empty(n_ctx, ctx_dim, dtype=clip_model.dtype, device=device)
    nn.init.normal_(ctx_vectors, std=0.02)
    return ctx_vectors, " ".join(["X"] * n_ctx)


class VLPromptLearner(PromptLearner):
    """The text context of IVLP: N_CTX_TEXT tokens after SOS, generic, class name at the end."""

    @staticmethod
    def initial_context(prompt_cfg, n_cls, clip_model):
        n_ctx = prompt_cfg.N_CTX_TEXT
        ctx_vectors, prompt_prefix = initial_ivlp_context(n_ctx, prompt_cfg.CTX_INIT, clip_model)
        print("Independent V-L design")
        print(f'Initial text context: "{prompt_prefix}"')
        print(f"Number of context words (tokens) for Language prompting: {n_ctx}")
        print(f"Number of context words (tokens) for Vision prompting: {prompt_cfg.N_CTX_VISION}")
        return ctx_vectors, prompt_prefix


def check_depths(prompt_cfg, clip_model, text=True):
    """One clear error when a prompt depth exceeds the blocks of the branch it prompts."""
    branches = [("PROMPT_DEPTH_VISION", "image", clip_model.visual.transformer.layers)]
    if text:
        branches.append(("PROMPT_DEPTH_TEXT", "text", clip_model.transformer.layers))
    for key, branch, layers in branches:
        if not 0 <= prompt_cfg[key] <= layers:
            raise ValueError(
                f"{key} {prompt_cfg[key]} does not fit the {layers} blocks of the CLIP {branch} encoder: "
                f"set TRAINER.<method>.{key} between 0 and {layers}"
            )


class IVLPCLIP(CustomCLIP):
    """CLIP with IVLP prompts: logits = scale * norm(prompted image) @ norm(prompted text)^T."""

    prompt_learner_class = VLPromptLearner

    def __init__(self, prompt_cfg, input_size, classnames, clip_model):
        check_depths(prompt_cfg, clip_model)
        add_ivlp_prompts(
            clip_model,
            prompt_cfg.N_CTX_VISION,
            prompt_cfg.PROMPT_DEPTH_VISION,
            prompt_cfg.N_CTX_TEXT,
            prompt_cfg.PROMPT_DEPTH_TEXT,
        )
        super().__init__(prompt_cfg, input_size, classnames, clip_model)


def is_prompt(name):
    """The IVLP parameters a trainer updates: the text context and every VPT* tensor."""
    return name.startswith("prompt_learner.ctx") or "VPT" in name


@TRAINER_REGISTRY.register()
class IVLP(PromptTrainer):
    """Deep prompts in both encoders, trained with CE. Checkpoints: ``VLPromptLearner/`` (the prompts)."""

    prompt_key = "IVLP"
    vit_only = True
    optimize_all_parameters = True  # as the reference, which hands the optimizer the whole model

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        if cfg.TRAINER[self.prompt_key].PROMPT_DEPTH_TEXT < 1:
            raise ValueError(
                f"TRAINER.{self.prompt_key}.PROMPT_DEPTH_TEXT must be >= 1 in independent V-L prompting "
                "(the learned text context is the first text prompt)"
            )

    def build_custom_clip(self, clip_model):
        return IVLPCLIP(self.prompt_cfg, self.cfg.INPUT.SIZE, self.dm.dataset.classnames, clip_model)

    def is_trainable(self, name):
        return is_prompt(name)

    def losses(self, image, label):
        return F.cross_entropy(self.model(image), label), {}

    def saved_models(self):
        # the prompts; reference checkpoints hold the whole model and load whole, as in the reference
        return {"VLPromptLearner": (self.model, CheckpointKeys("trainable", unsaved=PROMPT_BUFFERS, load_unsaved=True))}
