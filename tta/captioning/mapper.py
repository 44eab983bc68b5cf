"""The ClipCap / CapDec mapper: one CLIP embedding -> a prefix of language-model input embeddings.

linear(D_clip -> L x W) gives L "clip tokens"; L learnable prefix tokens are appended; a pre-norm
transformer (self-attention over the 2L tokens, ReLU MLP of ratio 2) runs over them and the outputs
at the learnable tokens are the prefix. Parameter names are the reference's (``clip_project.*`` in
its checkpoints), so its released mappers load as they are.
"""
import torch
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention; queries and keys/values without bias, the output projection with."""

    def __init__(self, width, heads):
        super().__init__()
        if width % heads:
            raise ValueError(f"the mapper width {width} is not a multiple of its {heads} heads")
        self.heads = heads
        self.to_queries = nn.Linear(width, width, bias=False)
        self.to_keys_values = nn.Linear(width, 2 * width, bias=False)
        self.project = nn.Linear(width, width)

    def forward(self, x):  # x [B, N, W]
        b, n, w = x.shape
        q = self.to_queries(x).reshape(b, n, self.heads, -1).transpose(1, 2)  # [B, H, N, W/H]
        kv = self.to_keys_values(x).reshape(b, n, 2, self.heads, -1)
        k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
        out = nn.functional.scaled_dot_product_attention(q, k, v)  # [B, H, N, W/H]
        return self.project(out.transpose(1, 2).reshape(b, n, w))


class MLP(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class Layer(nn.Module):
    def __init__(self, width, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = MLP(width, int(width * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, width, heads, layers, mlp_ratio):
        super().__init__()
        self.layers = nn.ModuleList(Layer(width, heads, mlp_ratio) for _ in range(layers))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class TransformerMapper(nn.Module):
    """CLIP embeddings [B, D_clip] -> prefix embeddings [B, prefix_length, width]."""

    def __init__(self, clip_dim=512, width=768, prefix_length=40, clip_length=40, layers=8, heads=8, mlp_ratio=2.0):
        super().__init__()
        self.clip_length = clip_length
        self.linear = nn.Linear(clip_dim, clip_length * width)
        self.prefix_const = nn.Parameter(torch.randn(prefix_length, width))
        self.transformer = Transformer(width, heads, layers, mlp_ratio)

    @property
    def prefix_length(self):
        return self.prefix_const.shape[0]

    def forward(self, x):  # x [B, D_clip]
        clip_tokens = self.linear(x).view(x.shape[0], self.clip_length, -1)  # [B, L_clip, W]
        prefix = self.prefix_const.unsqueeze(0).expand(x.shape[0], -1, -1)  # [B, L, W]
        out = self.transformer(torch.cat([clip_tokens, prefix], dim=1))  # [B, L_clip + L, W]
        return out[:, self.clip_length:]
