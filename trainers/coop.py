"""CoOp (Zhou et al., IJCV 2022): learnable context vectors in front of the class name."""
import torch
import torch.nn as nn
import torch.nn.functional as F

import clip
from clip.model import encode_text_embeddings, encode_text_shared_prefix
from clip.tokenizer import encode as bpe_encode
from engine import TRAINER_REGISTRY
from engine.checkpoint import CheckpointKeys
from engine.metrics import compute_accuracy

from .prompt_trainer import PromptTrainer

CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


def token_embeddings(clip_model, text):
    """The 77 token embeddings [77, d] of ``text`` (SOS at 0), in the model's dtype."""
    tokens = clip.tokenize(text).to(clip_model.token_embedding.weight.device)
    with torch.no_grad():
        return clip_model.token_embedding(tokens).type(clip_model.dtype)[0]


class PromptLearner(nn.Module):
    """Builds [SOS][ctx][CLASS][.][EOT] token embeddings for every class (or the middle/front variants).

    Parameter and buffer names (ctx, token_prefix, token_suffix) are the reference's, so
    checkpoints interchange.
    """

    def __init__(self, prompt_cfg, input_size, classnames, clip_model):
        super().__init__()
        n_cls = len(classnames)
        dtype = clip_model.dtype
        clip_imsize = clip_model.visual.input_resolution
        if input_size[0] != clip_imsize:
            raise ValueError(
                f"INPUT.SIZE {tuple(input_size)} does not match the CLIP input resolution {clip_imsize}: "
                f"set INPUT.SIZE ({clip_imsize}, {clip_imsize})"
            )
        device = clip_model.token_embedding.weight.device
        ctx_vectors, prompt_prefix = self.initial_context(prompt_cfg, n_cls, clip_model)
        n_ctx = ctx_vectors.shape[-2]
        self.ctx = nn.Parameter(ctx_vectors)  # [n_ctx, d] or [n_cls, n_ctx, d]

        classnames = [name.replace("_", " ") for name in classnames]
        self.name_lens = [len(bpe_encode(name)) for name in classnames]
        prompts = [f"{prompt_prefix} {name}." for name in classnames]
        tokenized_prompts = clip.tokenize(prompts).to(device)  # [n_cls, 77]
        with torch.no_grad():
            embedding = clip_model.token_embedding(tokenized_prompts).type(dtype)  # [n_cls, 77, d]
        # SOS, and CLASS . EOT + padding: fixed, rebuilt from the class names on load
        self.register_buffer("token_prefix", embedding[:, :1, :])
        self.register_buffer("token_suffix", embedding[:, 1 + n_ctx :, :])

        self.n_cls = n_cls
        self.n_ctx = n_ctx
        # a buffer so that .to(device) moves it with the module (the teacher is built on the CPU);
        # not persistent: checkpoints hold the reference's keys, and the ids come from the class names
        self.register_buffer("tokenized_prompts", tokenized_prompts, persistent=False)
        self.class_token_position = prompt_cfg.get("CLASS_TOKEN_POSITION", "end")
        if self.class_token_position not in CLASS_TOKEN_POSITIONS:
            raise ValueError(
                f'CLASS_TOKEN_POSITION must be one of {CLASS_TOKEN_POSITIONS}, got "{self.class_token_position}"'
            )

    @staticmethod
    def initial_context(prompt_cfg, n_cls, clip_model):
        """CoOp's context: [n_ctx, d] (or [n_cls, n_ctx, d] with CSC) and the words it stands for.

        With CTX_INIT the init words give both the number of context tokens and their values.
        """
        n_ctx, ctx_init = prompt_cfg.N_CTX, prompt_cfg.CTX_INIT
        dtype = clip_model.dtype
        ctx_dim = clip_model.ln_final.weight.shape[0]
        device = clip_model.token_embedding.weight.device
        if ctx_init:
            ctx_init = ctx_init.replace("_", " ")
            n_ctx = len(ctx_init.split(" "))
            ctx_vectors = token_embeddings(clip_model, ctx_init)[1 : 1 + n_ctx]
            prompt_prefix = ctx_init
        else:
            if prompt_cfg.CSC:
                print("Initializing class-specific contexts")
                ctx_vectors = torch.empty(n_cls, n_ctx, ctx_dim, dtype=dtype, device=device)
            else:
                print("Initializing a generic context")
                ctx_vectors = torch.empty(n_ctx, ctx_dim, dtype=dtype, device=device)
            nn.init.normal_(ctx_vectors, std=0.02)
            prompt_prefix = " ".join(["X"] * n_ctx)
        print(f'Initial context: "{prompt_prefix}"')
        print(f"Number of context words (tokens): {n_ctx}")
        return ctx_vectors, prompt_prefix

    def shared_prefix(self):
        """[1 + n_ctx, d] embeddings every prompt starts with, or None when prompts differ there.

        With a generic context and the class token at the end, all prompts begin with
        SOS + ctx; the text encoder then computes those positions once for all classes.
        """
        if self.ctx.dim() != 2 or self.class_token_position != "end":
            return None
        return torch.cat([self.token_prefix[0], self.ctx], dim=0)

    def forward(self):
        ctx = self.ctx
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(self.n_cls, -1, -1)  # [n_cls, n_ctx, d]
        prefix, suffix = self.token_prefix, self.token_suffix
        if self.class_token_position == "end":
            return torch.cat([prefix, ctx, suffix], dim=1)  # [n_cls, 77, d]

        half = self.n_ctx // 2
        prompts = []
        for i, name_len in enumerate(self.name_lens):
            name, rest = suffix[i : i + 1, :name_len], suffix[i : i + 1, name_len:]
            ctx_i = ctx[i : i + 1]
            if self.class_token_position == "middle":
                parts = [prefix[i : i + 1], ctx_i[:, :half], name, ctx_i[:, half:], rest]
            else:  # front
                parts = [prefix[i : i + 1], name, ctx_i, rest]
            prompts.append(torch.cat(parts, dim=1))
        return torch.cat(prompts, dim=0)


class TextEncoder(nn.Module):
    """The text tower of CLIP, run on prompt embeddings instead of token ids."""

    def __init__(self, clip_model):
        super().__init__()
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.dtype = clip_model.dtype

    def forward(self, prompts, tokenized_prompts, deep_prompts=None):
        # prompts: [n_cls, 77, width]; tokenized_prompts: [n_cls, 77] (EOT has the largest id)
        return encode_text_embeddings(self, prompts, tokenized_prompts, deep_prompts)  # [n_cls, D]

    def forward_shared_prefix(self, prefix, rows, tokenized_prompts, deep_prompts=None):
        # prefix: [P, width] common to all prompts; rows: [n_cls, 77 - P, width]
        return encode_text_shared_prefix(self, prefix, rows, tokenized_prompts, deep_prompts)  # [n_cls, D]


class CustomCLIP(nn.Module):
    """Frozen CLIP encoders around a PromptLearner; logits = scale * norm(img) @ norm(text)^T.

    Sub-module names (prompt_learner, image_encoder, text_encoder) are the reference's.
    """

    prompt_learner_class = PromptLearner

    def __init__(self, prompt_cfg, input_size, classnames, clip_model):
        super().__init__()
        self.prompt_learner = self.prompt_learner_class(prompt_cfg, input_size, classnames, clip_model)
        self.image_encoder = clip_model.visual
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.dtype = clip_model.dtype
        self._frozen_text = None  # normalised text features while evaluating

    @property
    def tokenized_prompts(self):
        """[n_cls, 77] token ids of the prompts: the prompt learner's buffer, wherever it was moved."""
        return self.prompt_learner.tokenized_prompts

    def text_deep_prompts(self):
        """Deep text prompts passed at call time (MaPLe), or None: those the blocks hold, if any."""
        return None

    def text_features(self):
        """Normalised class text features [n_cls, D] from the current context."""
        if self._frozen_text is not None:
            return self._frozen_text
        prefix = self.prompt_learner.shared_prefix()
        deep = self.text_deep_prompts()
        if prefix is None:
            features = self.text_encoder(self.prompt_learner(), self.tokenized_prompts, deep)
        else:
            rows = self.prompt_learner.token_suffix
            features = self.text_encoder.forward_shared_prefix(prefix, rows, self.tokenized_prompts, deep)
        return features / features.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def freeze_text(self):
        """Compute the text features once: they do not depend on the image."""
        self._frozen_text = None
        self._frozen_text = self.text_features()

    def unfreeze_text(self):
        self._frozen_text = None

    def encode_image(self, image, **kwargs):
        """Image features [B, D] of the (prompted) image encoder; kwargs: see VisionTransformer.forward."""
        return self.image_encoder(image.type(self.dtype), **kwargs)

    def encode_image_local(self, image):
        """Global feature [B, D], last-block tokens [B, L, D] and CLS attention [B, L-1] (ViT)."""
        return self.encode_image(image, return_local=True)

    def forward(self, image):
        image_features = self.encode_image(image)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        text_features = self.text_features()
        return self.logit_scale.exp() * image_features @ text_features.t()  # [B, n_cls]


@TRAINER_REGISTRY.register()
class CoOp(PromptTrainer):
    prompt_key = "COOP"
    log_trainable = False
    frozen_image_encoder = True  # the prompts are text tokens only

    def build_custom_clip(self, clip_model):
        return CustomCLIP(self.prompt_cfg, self.cfg.INPUT.SIZE, self.dm.dataset.classnames, clip_model)

    def is_trainable(self, name):
        return "prompt_learner" in name

    def init_weights_module(self):
        return self.model.prompt_learner

    def losses(self, image, label):
        output = self.model(image)
        return F.cross_entropy(output, label), {"acc": compute_accuracy(output, label)[0]}

    def saved_models(self):
        # the prompt learner's whole state; SOS / class-name embeddings are rebuilt from the class names
        keys = CheckpointKeys("all", rebuilt=("token_prefix", "token_suffix"), load_unsaved=True)
        return {"prompt_learner": (self.model.prompt_learner, keys)}
