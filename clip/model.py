"""OpenAI CLIP (ModifiedResNet or ViT image tower + text transformer) built from a state dict.

Module and parameter names are OpenAI's, so release weights load strictly. Attention runs
through ``F.scaled_dot_product_attention`` (fused) on the weights of ``nn.MultiheadAttention``
modules; the ViT can also return its last block's tokens and the CLS attention row for
TextRefiner, computing that row alone explicitly.
"""
import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back (fp16 weights stay usable)."""

    def forward(self, x):
        orig_type = x.dtype
        return super().forward(x.type(torch.float32)).type(orig_type)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


def _split_heads(x, heads):
    b, n, w = x.shape  # [B, N, W] -> [B, heads, N, W/heads]
    return x.view(b, n, heads, w // heads).transpose(1, 2)


def fused_attention(attn, x, causal=False, return_cls_attn=False):
    """Self-attention with an nn.MultiheadAttention's weights on batch-first x [B, N, W].

    With ``return_cls_attn`` also returns the CLS query's attention probabilities over all keys,
    averaged over heads ([B, N]), which is what need_weights=True would give for row 0.
    """
    heads = attn.num_heads
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (_split_heads(t, heads) for t in (q, k, v))  # [B, h, N, d]
    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    out = attn.out_proj(out.transpose(1, 2).reshape(x.shape))
    if not return_cls_attn:
        return out
    scale = 1.0 / math.sqrt(q.shape[-1])
    cls_scores = (q[:, :, :1] * scale) @ k.transpose(-2, -1)  # [B, h, 1, N]
    cls_attn = cls_scores.softmax(dim=-1).mean(dim=1)[:, 0]  # [B, N]
    return out, cls_attn


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model, n_head):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential(
            OrderedDict(
                [("c_fc", nn.Linear(d_model, d_model * 4)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(d_model * 4, d_model))]
            )
        )
        self.ln_2 = LayerNorm(d_model)

    def forward(self, x, causal=False, return_cls_attn=False):
        # x: [B, N, W]
        attn_out = fused_attention(self.attn, self.ln_1(x), causal=causal, return_cls_attn=return_cls_attn)
        cls_attn = None
        if return_cls_attn:
            attn_out, cls_attn = attn_out
        x = x + attn_out
        x = x + self.mlp(self.ln_2(x))
        return (x, cls_attn) if return_cls_attn else x


class Transformer(nn.Module):
    """A stack of residual attention blocks on batch-first tokens [B, N, W]."""

    def __init__(self, width, layers, heads):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x, causal=False, return_cls_attn=False):
        # the loop is explicit so per-block inputs (e.g. deep prompts) can be added here later
        blocks = list(self.resblocks)
        for block in blocks[:-1]:
            x = block(x, causal=causal)
        return blocks[-1](x, causal=causal, return_cls_attn=return_cls_attn)


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim):
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def embed(self, x):
        """Patch + class embeddings, positions and ln_pre: [B, 3, H, W] -> [B, 1 + g*g, width]."""
        x = self.conv1(x)  # [B, width, g, g]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        return self.ln_pre(x)

    def forward(self, x, return_local=False):
        x = self.embed(x)
        if not return_local:
            x = self.transformer(x)
            return self.ln_post(x[:, 0, :]) @ self.proj  # [B, D]
        x, cls_attn = self.transformer(x, return_cls_attn=True)
        tokens = self.ln_post(x) @ self.proj  # [B, L, D]: every token of the last block
        return tokens[:, 0, :], tokens, cls_attn[:, 1:]  # global [B, D], tokens, CLS->patch [B, L-1]


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        # all convs have stride 1; an avgpool does the downsampling (anti-aliased)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu3 = nn.ReLU(inplace=True)
        self.downsample = None
        if stride > 1 or inplanes != planes * self.expansion:
            self.downsample = nn.Sequential(
                OrderedDict(
                    [
                        ("-1", nn.AvgPool2d(stride)),
                        ("0", nn.Conv2d(inplanes, planes * self.expansion, 1, stride=1, bias=False)),
                        ("1", nn.BatchNorm2d(planes * self.expansion)),
                    ]
                )
            )

    def forward(self, x):
        identity = x
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu3(out + identity)


class AttentionPool2d(nn.Module):
    def __init__(self, spacial_dim, embed_dim, num_heads, output_dim=None):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spacial_dim**2 + 1, embed_dim) / embed_dim**0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim or embed_dim)
        self.num_heads = num_heads

    def forward(self, x):
        x = x.flatten(start_dim=2).permute(0, 2, 1)  # [B, HW, C]
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)  # [B, HW+1, C]
        x = x + self.positional_embedding.to(x.dtype)
        q = _split_heads(self.q_proj(x[:, :1]), self.num_heads)  # the mean token queries
        k = _split_heads(self.k_proj(x), self.num_heads)
        v = _split_heads(self.v_proj(x), self.num_heads)
        out = F.scaled_dot_product_attention(q, k, v)  # [B, h, 1, d]
        out = out.transpose(1, 2).reshape(x.shape[0], -1)
        return self.c_proj(out)  # [B, output_dim]


class ModifiedResNet(nn.Module):
    """ResNet with a 3-conv stem, anti-aliased strided convs and an attention pool (OpenAI's)."""

    def __init__(self, layers, output_dim, heads, input_resolution=224, width=64):
        super().__init__()
        self.output_dim = output_dim
        self.input_resolution = input_resolution
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(2)
        self._inplanes = width
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        embed_dim = width * 32
        self.attnpool = AttentionPool2d(input_resolution // 32, embed_dim, heads, output_dim)

    def _make_layer(self, planes, blocks, stride=1):
        layers = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x, return_local=False):
        if return_local:
            raise ValueError(
                "TextRefiner's local tokens need a ViT backbone (e.g. MODEL.BACKBONE.NAME ViT-B/16), not a ResNet"
            )
        x = x.type(self.conv1.weight.dtype)
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.avgpool(self.relu3(self.bn3(self.conv3(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


def encode_text_embeddings(text_module, embeddings, tokenized):
    """Text features [C, D] from token embeddings [C, ctx, width] and their ids [C, ctx].

    ``text_module`` is a CLIP model or anything holding its transformer, positional_embedding,
    ln_final, text_projection and dtype. The sequence is cut after the last EOT position of the
    batch: with the causal mask, no position up to an EOT attends to anything later, so the
    features are exactly those of the full-length run.
    """
    eot = tokenized.argmax(dim=-1)  # EOT has the largest id
    length = int(eot.max()) + 1
    dtype = text_module.dtype
    x = embeddings[:, :length] + text_module.positional_embedding[:length].type(dtype)
    x = text_module.transformer(x, causal=True)
    x = text_module.ln_final(x).type(dtype)
    return x[torch.arange(x.shape[0], device=x.device), eot] @ text_module.text_projection


class CLIP(nn.Module):
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
    ):
        super().__init__()
        self.context_length = context_length
        if isinstance(vision_layers, (tuple, list)):
            self.visual = ModifiedResNet(
                layers=vision_layers,
                output_dim=embed_dim,
                heads=vision_width * 32 // 64,
                input_resolution=image_resolution,
                width=vision_width,
            )
        else:
            self.visual = VisionTransformer(
                input_resolution=image_resolution,
                patch_size=vision_patch_size,
                width=vision_width,
                layers=vision_layers,
                heads=vision_width // 64,
                output_dim=embed_dim,
            )
        self.transformer = Transformer(transformer_width, transformer_layers, transformer_heads)
        self.vocab_size = vocab_size
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, transformer_width))
        self.ln_final = LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(torch.empty(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))
        self.initialize_parameters()

    def initialize_parameters(self):
        """OpenAI's initialisation (used for random-weight models: tests, benchmarks)."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        if isinstance(self.visual, ModifiedResNet):
            pool = self.visual.attnpool
            std = pool.c_proj.in_features**-0.5
            for lin in (pool.q_proj, pool.k_proj, pool.v_proj, pool.c_proj):
                nn.init.normal_(lin.weight, std=std)
            for name, param in self.visual.named_parameters():
                if name.endswith("bn3.weight"):
                    nn.init.zeros_(param)
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
        return self.visual(image.type(self.dtype), return_local=return_local)

    def encode_text(self, text):
        return encode_text_embeddings(self, self.token_embedding(text).type(self.dtype), text)

    def forward(self, image, text):
        image_features = self.encode_image(image)
        text_features = self.encode_text(text)
        image_features = image_features / image_features.norm(dim=1, keepdim=True)
        text_features = text_features / text_features.norm(dim=1, keepdim=True)
        logits_per_image = self.logit_scale.exp() * image_features @ text_features.t()
        return logits_per_image, logits_per_image.t()


def convert_weights(model):
    """Convert conv/linear/attention weights and the projections to fp16 (norms stay fp32)."""

    def _convert(layer):
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            layer.weight.data = layer.weight.data.half()
            if layer.bias is not None:
                layer.bias.data = layer.bias.data.half()
        if isinstance(layer, nn.MultiheadAttention):
            for attr in ["in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                         "bias_k", "bias_v"]:
                tensor = getattr(layer, attr)
                if tensor is not None:
                    tensor.data = tensor.data.half()
        for name in ["text_projection", "proj"]:
            attr = getattr(layer, name, None)
            if isinstance(attr, torch.Tensor):
                attr.data = attr.data.half()

    model.apply(_convert)
    return model


def _count_blocks(state_dict, prefix):
    return len({k.split(".")[len(prefix.split("."))] for k in state_dict if k.startswith(prefix + ".")})


def build_model(state_dict):
    """A CLIP (fp32, eval mode) whose architecture is read off an OpenAI state dict."""
    state_dict = dict(state_dict)
    vit = "visual.proj" in state_dict
    if vit:
        vision_width = state_dict["visual.conv1.weight"].shape[0]
        vision_layers = len(
            [k for k in state_dict if k.startswith("visual.") and k.endswith(".attn.in_proj_weight")]
        )
        vision_patch_size = state_dict["visual.conv1.weight"].shape[-1]
        grid_size = round((state_dict["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        image_resolution = vision_patch_size * grid_size
    else:
        vision_layers = tuple(_count_blocks(state_dict, f"visual.layer{b}") for b in [1, 2, 3, 4])
        vision_width = state_dict["visual.layer1.0.conv1.weight"].shape[0]
        output_width = round((state_dict["visual.attnpool.positional_embedding"].shape[0] - 1) ** 0.5)
        vision_patch_size = None
        image_resolution = output_width * 32

    embed_dim = state_dict["text_projection"].shape[1]
    context_length = state_dict["positional_embedding"].shape[0]
    vocab_size = state_dict["token_embedding.weight"].shape[0]
    transformer_width = state_dict["ln_final.weight"].shape[0]
    transformer_heads = transformer_width // 64
    transformer_layers = _count_blocks(state_dict, "transformer.resblocks")

    model = CLIP(
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
    )
    for key in ["input_resolution", "context_length", "vocab_size"]:
        state_dict.pop(key, None)  # extra entries of the TorchScript release archives
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()})
    return model.eval()
