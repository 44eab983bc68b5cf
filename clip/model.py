"""OpenAI CLIP (ModifiedResNet or ViT image tower + causal text transformer) built from a state dict.

Module and parameter names are OpenAI's, so release weights load strictly. Unlike OpenAI's
``build_model``, ours returns the model in fp32: callers that want fp16 call
``convert_weights`` themselves.
"""
import math

import torch
from torch import nn

from .layers import LayerNorm, QuickGELU, ResidualAttentionBlock, Transformer  # noqa: F401  (public names)
from .vision import AttentionPool2d, Bottleneck, ModifiedResNet, VisionTransformer  # noqa: F401

# the keys an OpenAI state dict always holds, whatever its image tower
TEXT_KEYS = ("token_embedding.weight", "positional_embedding", "ln_final.weight", "text_projection")
RELEASE_EXTRAS = ("input_resolution", "context_length", "vocab_size")  # stored in the TorchScript releases
MHA_TENSORS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "bias_k", "bias_v")


def encode_text_embeddings(text_module, embeddings, tokenized, deep_prompts=None):
    """Text features [C, D] from token embeddings [C, ctx, width] and their ids [C, ctx].

    ``text_module`` is a CLIP model or anything holding its transformer, positional_embedding,
    ln_final, text_projection and dtype. The sequence is cut after the last EOT position of the
    batch: under the causal mask no position up to an EOT attends to a later one, so the
    features equal those of the full-length run. Deep text prompts, if the transformer has
    them (or ``deep_prompts`` for blocks 1, 2, ... given at call time), replace their
    positions at each block input.
    """
    eot = tokenized.argmax(dim=-1)  # [C]: EOT has the largest id
    length = int(eot.max()) + 1
    dtype = text_module.dtype
    x = embeddings[:, :length].type(dtype) + text_module.positional_embedding[:length].type(dtype)  # [C, n, width]
    x = text_module.transformer(x, deep_prompts=deep_prompts)
    x = text_module.ln_final(x).type(dtype)
    return x[torch.arange(x.shape[0], device=x.device), eot] @ text_module.text_projection  # [C, D]


def encode_text_shared_prefix(text_module, prefix, rows, tokenized, deep_prompts=None):
    """encode_text_embeddings for prompts that all start with the same tokens, computed once.

    prefix: [P, width] embeddings shared by every prompt (e.g. SOS + a generic learned context);
    rows: [C, ctx - P, width] the rest of each prompt; tokenized: [C, ctx] the ids. Causal
    attention makes the prefix positions identical across prompts, so the result equals
    ``encode_text_embeddings(text_module, cat(prefix, rows), tokenized)`` at a fraction of the cost.
    """
    eot = tokenized.argmax(dim=-1)  # [C]
    n_prefix = prefix.shape[0]
    if int(eot.min()) < n_prefix:
        raise ValueError(f"Every prompt must end after the {n_prefix} shared prefix tokens")
    length = int(eot.max()) + 1
    dtype = text_module.dtype
    pos = text_module.positional_embedding.type(dtype)
    x_prefix = (prefix.type(dtype) + pos[:n_prefix]).unsqueeze(0)  # [1, P, width]
    x_rows = rows[:, : length - n_prefix].type(dtype) + pos[n_prefix:length]  # [C, S, width]
    transformer = text_module.transformer
    for block, prompt in zip(transformer.resblocks, transformer.block_prompts(deep_prompts)):
        x_prefix, x_rows = block.forward_shared_prefix(x_prefix, x_rows, prompt, start=1)
    x_rows = text_module.ln_final(x_rows).type(dtype)
    return x_rows[torch.arange(x_rows.shape[0], device=x_rows.device), eot - n_prefix] @ text_module.text_projection


class CLIP(nn.Module):
    """OpenAI's CLIP. Beyond OpenAI's arguments, the ones other weights need: ``vision_heads``
    (default width // 64, ResNet: width * 32 // 64), MLP widths (default 4 * width) and the MLP
    ``activation`` ("quick_gelu", OpenAI's, or "gelu"). Module and parameter names stay OpenAI's."""

    def __init__(
        self,
        embed_dim,
        image_resolution,
        vision_layers,
        vision_width,
        vision_patch_size,
        context_length,
        vocab_size,
        transformer_width,
        transformer_heads,
        transformer_layers,
        vision_heads=None,
        vision_mlp_width=None,
        transformer_mlp_width=None,
        activation="quick_gelu",
    ):
        super().__init__()
        self.context_length = context_length
        self.activation = activation
        if isinstance(vision_layers, (tuple, list)):
            self.visual = ModifiedResNet(
                layers=vision_layers,
                output_dim=embed_dim,
                heads=vision_heads or vision_width * 32 // 64,
                input_resolution=image_resolution,
                width=vision_width,
            )
        else:
            self.visual = VisionTransformer(
                input_resolution=image_resolution,
                patch_size=vision_patch_size,
                width=vision_width,
                layers=vision_layers,
                heads=vision_heads or vision_width // 64,
                output_dim=embed_dim,
                mlp_width=vision_mlp_width,
                activation=activation,
            )
        self.transformer = Transformer(
            transformer_width,
            transformer_layers,
            transformer_heads,
            causal=True,
            mlp_width=transformer_mlp_width,
            activation=activation,
        )
        self.vocab_size = vocab_size
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, transformer_width))
        self.ln_final = LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(torch.empty(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.initialize_parameters()

    def initialize_parameters(self):
        """OpenAI's initialisation (what random-weight models for tests and benchmarks get)."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        if isinstance(self.visual, ModifiedResNet):
            pool = self.visual.attnpool
            std = pool.c_proj.in_features**-0.5
            for linear in (pool.q_proj, pool.k_proj, pool.v_proj, pool.c_proj):
                nn.init.normal_(linear.weight, std=std)
            for stage in (self.visual.layer1, self.visual.layer2, self.visual.layer3, self.visual.layer4):
                for name, param in stage.named_parameters():
                    if name.endswith("bn3.weight"):
                        nn.init.zeros_(param)  # each residual block starts as the identity
        width, layers = self.transformer.width, self.transformer.layers
        proj_std = (width**-0.5) * ((2 * layers) ** -0.5)
        attn_std = width**-0.5
        fc_std = (2 * width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=width**-0.5)

    @property
    def dtype(self):
        return self.visual.conv1.weight.dtype

    def encode_image(self, image, return_local=False):
        """[B, 3, H, W] -> [B, D]; see VisionTransformer.forward for ``return_local``."""
        return self.visual(image.type(self.dtype), return_local=return_local)

    def encode_text(self, text):
        """Token ids [N, ctx] (clip.tokenize) -> [N, D]."""
        return encode_text_embeddings(self, self.token_embedding(text), text)

    def forward(self, image, text):
        image_features = self.encode_image(image)
        text_features = self.encode_text(text)
        image_features = image_features / image_features.norm(dim=1, keepdim=True)
        text_features = text_features / text_features.norm(dim=1, keepdim=True)
        logits_per_image = self.logit_scale.exp() * image_features @ text_features.t()  # [B, N]
        return logits_per_image, logits_per_image.t()


def add_ivlp_prompts(model, vision_ctx, vision_depth, text_ctx, text_depth):
    """Independent vision-language deep prompts (IVLP) added to a CLIP, in place.

    Vision: ``visual.VPT`` [vision_ctx, width] appended after the patches and a
    ``VPT_shallow`` per block 1 .. vision_depth-1 (see VisionTransformer.add_prompts). Text: a
    ``VPT_shallow`` [text_ctx, width] per text block 1 .. text_depth-1 replacing positions
    1 .. text_ctx (the first block's text prompts are the prompt learner's context, in the input).
    Prompts are fp32 parameters cast to the activations' dtype in forward.
    """
    if text_depth < 1:
        raise ValueError(
            f"IVLP needs a text prompt depth of at least 1 (the learned context), got {text_depth}"
        )
    model.visual.add_prompts(vision_ctx, vision_depth)
    model.transformer.add_deep_prompts(text_ctx, text_depth)
    return model


def convert_weights(model):
    """Cast conv, linear and attention weights and the two projections to fp16, in place.

    LayerNorm, BatchNorm, embeddings and logit_scale stay fp32, as in OpenAI's fp16 models.
    """

    def _convert(layer):
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            layer.weight.data = layer.weight.data.half()
            if layer.bias is not None:
                layer.bias.data = layer.bias.data.half()
        if isinstance(layer, nn.MultiheadAttention):
            for name in MHA_TENSORS:
                tensor = getattr(layer, name)
                if tensor is not None:
                    tensor.data = tensor.data.half()
        for name in ("text_projection", "proj"):
            tensor = getattr(layer, name, None)
            if isinstance(tensor, torch.Tensor):
                tensor.data = tensor.data.half()

    model.apply(_convert)
    return model


def _count_blocks(state_dict, prefix):
    """Number of distinct block indices under ``prefix.`` (e.g. visual.layer1.0., visual.layer1.1.)."""
    depth = prefix.count(".") + 1
    return len({k.split(".")[depth] for k in state_dict if k.startswith(prefix + ".")})


def _grid(positions, key):
    """Side of the square token grid behind a positional embedding with one extra (class) row."""
    side = round((positions - 1) ** 0.5)
    if side * side + 1 != positions:
        raise ValueError(f"{key} has {positions} rows, which is not a square grid plus one: not a CLIP state dict")
    return side


def _mlp_width(state_dict, transformer):
    weight = state_dict.get(f"{transformer}.resblocks.0.mlp.c_fc.weight")  # [mlp width, width]
    return None if weight is None else weight.shape[0]


def infer_architecture(state_dict):
    """CLIP's constructor arguments read off an OpenAI state dict (the rules of OpenAI's build_model)."""
    missing = [k for k in TEXT_KEYS if k not in state_dict]
    if "visual.proj" not in state_dict and "visual.attnpool.positional_embedding" not in state_dict:
        missing.append("visual.proj (ViT) or visual.attnpool.positional_embedding (ResNet)")
    if missing:
        raise ValueError(f"Not a CLIP state dict with OpenAI's keys: missing {', '.join(missing)}")

    if "visual.proj" in state_dict:  # ViT
        conv1 = state_dict["visual.conv1.weight"]  # [width, 3, patch, patch]
        vision_width, vision_patch_size = conv1.shape[0], conv1.shape[-1]
        vision_layers = sum(1 for k in state_dict if k.startswith("visual.") and k.endswith(".attn.in_proj_weight"))
        grid = _grid(state_dict["visual.positional_embedding"].shape[0], "visual.positional_embedding")
        image_resolution = vision_patch_size * grid
    else:  # ModifiedResNet: the attention pool sees the image downsampled 32 times
        vision_layers = tuple(_count_blocks(state_dict, f"visual.layer{i}") for i in (1, 2, 3, 4))
        vision_width = state_dict["visual.layer1.0.conv1.weight"].shape[0]
        vision_patch_size = None
        key = "visual.attnpool.positional_embedding"
        image_resolution = _grid(state_dict[key].shape[0], key) * 32

    transformer_width = state_dict["ln_final.weight"].shape[0]
    return dict(
        embed_dim=state_dict["text_projection"].shape[1],
        image_resolution=image_resolution,
        vision_layers=vision_layers,
        vision_width=vision_width,
        vision_patch_size=vision_patch_size,
        context_length=state_dict["positional_embedding"].shape[0],
        vocab_size=state_dict["token_embedding.weight"].shape[0],
        transformer_width=transformer_width,
        transformer_heads=transformer_width // 64,
        transformer_layers=_count_blocks(state_dict, "transformer.resblocks"),
        vision_mlp_width=_mlp_width(state_dict, "visual.transformer"),  # None for the ResNet (no MLPs)
        transformer_mlp_width=_mlp_width(state_dict, "transformer"),
    )


def build_model(state_dict, **settings):
    """A CLIP in fp32 and eval mode whose architecture is read off an OpenAI-layout state dict.

    ``settings``: what weights do not show and their model config gives (``vision_heads``,
    ``transformer_heads``, ``activation``); OpenAI's rules (heads = width // 64, QuickGELU) otherwise.
    """
    model = CLIP(**{**infer_architecture(state_dict), **settings})
    weights = {
        k: v.float() if v.is_floating_point() else v for k, v in state_dict.items() if k not in RELEASE_EXTRAS
    }
    model.load_state_dict(weights)
    return model.eval()
