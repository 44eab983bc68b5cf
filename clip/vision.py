"""CLIP's image towers: the VisionTransformer and OpenAI's ModifiedResNet with attention pooling.

Parameter names are OpenAI's. The ViT can also return what TextRefiner reads: every token of
the last block after ln_post and proj, and that block's CLS attention over the patches.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LayerNorm, Transformer, split_heads


def check_image_size(x, resolution):
    if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != (resolution, resolution):
        raise ValueError(
            f"The CLIP image encoder takes images of shape [B, 3, {resolution}, {resolution}], "
            f"got {list(x.shape)}: resize the images to {resolution}x{resolution} (INPUT.SIZE)"
        )


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim, mlp_width=None,
                 activation="quick_gelu"):
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, mlp_width=mlp_width, activation=activation)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def embed(self, x):
        """[B, 3, H, W] -> [B, 1 + g*g, width]: class and patch embeddings plus positions (before ln_pre)."""
        check_image_size(x, self.input_resolution)
        x = self.conv1(x.type(self.conv1.weight.dtype))  # [B, width, g, g]
        x = x.flatten(2).transpose(1, 2)  # [B, g*g, width]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)  # [B, 1, width]
        return torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)

    def add_prompts(self, n_ctx, depth):
        """IVLP vision prompts: ``VPT`` [n_ctx, width] appended after the patches (no positional
        embedding) and replaced at the input of blocks 1 .. depth-1 by their ``VPT_shallow``.
        Depth 0 adds nothing. Names are the reference's (``VPT``, ``resblocks.{i}.VPT_shallow``)."""
        if depth == 0:
            return
        if n_ctx < 1:
            raise ValueError(f"The number of vision prompt tokens must be positive, got {n_ctx}")
        width = self.conv1.weight.shape[0]
        self.VPT = nn.Parameter(torch.empty(n_ctx, width).normal_(std=0.02))
        self.transformer.add_deep_prompts(n_ctx, depth)

    def forward(self, x, return_local=False, use_prompts=True, shallow_prompt=None, deep_prompts=None):
        """Global image features [B, D]; with ``return_local`` (global, tokens [B, L, D], cls_attn [B, L-1]).

        Prompts: ``shallow_prompt`` [n, width] appended after the patches and ``deep_prompts``
        for blocks 1, 2, ... when given at call time (MaPLe), else the encoder's own (IVLP's VPT
        and VPT_shallow). Prompt tokens take part in attention but are left out of the returned
        tokens and of the CLS attention row (it covers the L-1 patches) at every depth.
        ``use_prompts=False`` runs the pre-trained encoder, as if no prompt had been added.
        """
        x = self.embed(x)  # [B, L, width]
        if shallow_prompt is None:
            shallow_prompt = getattr(self, "VPT", None)
        if not use_prompts:
            shallow_prompt = None
        n_prompts = 0 if shallow_prompt is None else shallow_prompt.shape[0]
        if n_prompts:
            x = torch.cat([x, shallow_prompt.to(x.dtype).expand(x.shape[0], -1, -1)], dim=1)  # [B, L + n, width]
        x = self.ln_pre(x)
        kwargs = dict(use_prompts=use_prompts, deep_prompts=deep_prompts)
        if not return_local:
            x = self.transformer(x, **kwargs)
            return self.ln_post(x[:, 0, :]) @ self.proj  # [B, D]
        x, cls_attn = self.transformer(x, return_cls_attn=True, **kwargs)
        length = x.shape[1] - n_prompts
        tokens = self.ln_post(x[:, :length]) @ self.proj  # [B, L, D]: every image token of the last block
        return tokens[:, 0, :], tokens, cls_attn[:, 1:length]  # global [B, D], tokens, CLS->patches [B, L-1]


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        # every conv has stride 1; an avgpool after conv2 downsamples (anti-aliased striding)
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
            # the shortcut downsamples with an avgpool too, then a stride-1 conv
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
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        return self.relu3(out + identity)


class AttentionPool2d(nn.Module):
    """Attention pooling: the mean token (plus positions) queries all spatial tokens."""

    def __init__(self, spacial_dim, embed_dim, num_heads, output_dim=None):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spacial_dim**2 + 1, embed_dim) / embed_dim**0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim or embed_dim)
        self.num_heads = num_heads

    def forward(self, x):
        x = x.flatten(start_dim=2).transpose(1, 2)  # [B, C, H, W] -> [B, HW, C]
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)  # [B, 1 + HW, C]
        x = x + self.positional_embedding.to(x.dtype)
        q = split_heads(self.q_proj(x[:, :1]), self.num_heads)  # [B, h, 1, d]: only the mean token queries
        k = split_heads(self.k_proj(x), self.num_heads)  # [B, h, 1 + HW, d]
        v = split_heads(self.v_proj(x), self.num_heads)
        out = F.scaled_dot_product_attention(q, k, v)  # [B, h, 1, d]
        return self.c_proj(out.transpose(1, 2).reshape(x.shape[0], -1))  # [B, output_dim]


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
        self._inplanes = width  # grows while the stages are built
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        embed_dim = width * 32  # channels out of layer4
        self.attnpool = AttentionPool2d(input_resolution // 32, embed_dim, heads, output_dim)

    def _make_layer(self, planes, blocks, stride=1):
        layers = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x, return_local=False):
        """Global image features [B, D]."""
        if return_local:
            raise ValueError(
                "TextRefiner local tokens need a ViT backbone (e.g. MODEL.BACKBONE.NAME ViT-B/16): "
                "the ResNet image encoder has no patch tokens or CLS attention"
            )
        check_image_size(x, self.input_resolution)
        x = x.type(self.conv1.weight.dtype)
        x = self.relu1(self.bn1(self.conv1(x)))  # [B, width/2, H/2, W/2]
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.avgpool(self.relu3(self.bn3(self.conv3(x))))  # [B, width, H/4, W/4]
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # [B, 32 * width, H/32, W/32]
        return self.attnpool(x)
