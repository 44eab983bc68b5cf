"""Independent vision-language prompting (IVLP): the prompted CLIP PromptSRC trains and PromptKD's
teacher runs. The text context is the first text block's prompt; deep prompts live in the CLIP
blocks themselves (clip.model.add_ivlp_prompts), so the model is clip/'s, not a copy.

State-dict names are the reference's: ``prompt_learner.ctx``, ``image_encoder.VPT``,
``image_encoder.transformer.resblocks.{i}.VPT_shallow`` and
``text_encoder.transformer.resblocks.{i}.VPT_shallow``.
"""
import torch
from torch import nn

from clip.model import add_ivlp_prompts

from .coop import CustomCLIP, PromptLearner, token_embeddings


class VLPromptLearner(PromptLearner):
    """The text context of IVLP: N_CTX_TEXT tokens after SOS, generic, class name at the end."""

    @staticmethod
    def initial_context(prompt_cfg, n_cls, clip_model):
        """[N_CTX_TEXT, d]: the CTX_INIT embeddings when N_CTX_TEXT <= 4 (the reference's rule), else N(0, 0.02).

        With fewer context tokens than init words, the remaining words stay fixed text.
        """
        n_ctx, ctx_init = prompt_cfg.N_CTX_TEXT, prompt_cfg.CTX_INIT
        if ctx_init and n_ctx <= 4:
            ctx_init = ctx_init.replace("_", " ")
            ctx_vectors = token_embeddings(clip_model, ctx_init)[1 : 1 + n_ctx]
            prompt_prefix = ctx_init
        else:
            ctx_dim = clip_model.ln_final.weight.shape[0]
            device = clip_model.token_embedding.weight.device
            ctx_vectors = torch.empty(n_ctx, ctx_dim, dtype=clip_model.dtype, device=device)
            nn.init.normal_(ctx_vectors, std=0.02)
            prompt_prefix = " ".join(["X"] * n_ctx)
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
