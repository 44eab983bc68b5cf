"""Building blocks shared by CLIP's towers: fp16-safe LayerNorm, QuickGELU and the transformer.

Attention runs through ``F.scaled_dot_product_attention`` (fused kernels) on the weights of an
``nn.MultiheadAttention`` module, so OpenAI's parameter names (``attn.in_proj_weight`` ...) are
kept and release weights load strictly. Tokens are batch first, [B, N, W], everywhere.
"""
import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back, so it works on fp16 activations."""

    def forward(self, x):
        orig_type = x.dtype
        return super().forward(x.type(torch.float32)).type(orig_type)


def quick_gelu(x):
    """OpenAI's GELU approximation x * sigmoid(1.702 x): the reference expression."""
    return x * torch.sigmoid(1.702 * x)


def quick_gelu_(x):
    """``quick_gelu(x)`` written into ``x`` (returned): the same operations on the same tensors, so
    the result is bit-identical, with one hidden-size allocation instead of the expression's three
    (fewer fresh pages to fault in and zero on CPU). Only for tensors autograd does not need (see
    QuickGELU). Chunking the rows to keep them in cache was no faster at one
    thread and far slower at two on a busy CPU (one thread barrier per chunk and operation).
    """
    s = x * 1.702
    return x.mul_(s.sigmoid_())


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x). With ``inplace`` (the MLPs' own, whose input is the fresh c_fc output)
    it overwrites its input when no gradient flows through it (evaluation, frozen towers), with
    bit-identical values; where autograd needs the input (deep prompts, fine-tuning) it computes
    the reference expression out of place, so backward is autograd's own."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        needs_graph = torch.is_grad_enabled() and x.requires_grad
        if not self.inplace or needs_graph or torch.compiler.is_compiling():
            return quick_gelu(x)  # under torch.compile: the expression, which the compiler fuses
        return quick_gelu_(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


def split_heads(x, heads):
    """[B, N, W] -> [B, heads, N, W / heads]."""
    b, n, w = x.shape
    return x.view(b, n, heads, w // heads).transpose(1, 2)


def fused_attention(attn, x, causal=False, return_cls_attn=False):
    """Self-attention of x [B, N, W] with the weights of ``attn`` (an nn.MultiheadAttention).

    With ``return_cls_attn`` it also returns the attention probabilities of the first (CLS)
    query over all N keys, averaged over heads, [B, N]: what ``attn(..., need_weights=True)``
    gives as row 0 (for non-causal attention, i.e. the image tower). Only that row is computed
    explicitly; the output stays fused.
    """
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (split_heads(t, attn.num_heads) for t in (q, k, v))  # [B, h, N, d]
    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # [B, h, N, d]
    out = attn.out_proj(out.transpose(1, 2).reshape(x.shape))  # [B, N, W]
    if not return_cls_attn:
        return out
    # softmax in fp32: the row feeds a top-k selection and must not saturate in fp16
    scores = (q[:, :, :1].float() @ k.float().transpose(-2, -1)) / math.sqrt(q.shape[-1])  # [B, h, 1, N]
    cls_attn = scores.softmax(dim=-1).mean(dim=1)[:, 0]  # [B, N]
    return out, cls_attn.to(x.dtype)


def _merge_heads(out):
    """[B, h, N, d] -> [B, N, h*d]."""
    b, h, n, d = out.shape
    return out.transpose(1, 2).reshape(b, n, h * d)


def shared_prefix_attention(attn, prefix, rows):
    """Causal self-attention of sequences that all start with the same ``prefix`` tokens.

    prefix: [1, P, W] (shared), rows: [C, S, W] (each row's tokens after the prefix). Equals
    causal attention over the C full sequences [prefix, row] while computing the prefix once:
    its queries only see the prefix; each row's queries see the whole prefix and the row causally.
    """
    def qkv(x):
        q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        return [split_heads(t, attn.num_heads) for t in (q, k, v)]  # [B, h, N, d]

    qp, kp, vp = qkv(prefix)
    qs, ks, vs = qkv(rows)
    n_rows, n_prefix, n_suffix = rows.shape[0], prefix.shape[1], rows.shape[1]
    out_prefix = F.scaled_dot_product_attention(qp, kp, vp, is_causal=True)
    keys = torch.cat([kp.expand(n_rows, -1, -1, -1), ks], dim=2)  # [C, h, P+S, d]
    values = torch.cat([vp.expand(n_rows, -1, -1, -1), vs], dim=2)
    mask = torch.ones(n_suffix, n_prefix + n_suffix, dtype=torch.bool, device=rows.device)
    mask[:, n_prefix:] = torch.ones(n_suffix, n_suffix, dtype=torch.bool, device=rows.device).tril()
    out_rows = F.scaled_dot_product_attention(qs, keys, values, attn_mask=mask)
    return attn.out_proj(_merge_heads(out_prefix)), attn.out_proj(_merge_heads(out_rows))


ACTIVATIONS = ("quick_gelu", "gelu")


def mlp_activation(name):
    """The MLP activation a CLIP was trained with: OpenAI's QuickGELU, or the exact (erf) GELU of
    OpenCLIP's non-quickgelu models and of Hugging Face configs with hidden_act "gelu"."""
    if name == "quick_gelu":
        return QuickGELU(inplace=True)  # its input is the c_fc output alone
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f'Unknown CLIP MLP activation "{name}": use one of {", ".join(ACTIVATIONS)}')


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model, n_head, mlp_width=None, activation="quick_gelu"):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"A width of {d_model} does not split into {n_head} attention heads")
        mlp_width = mlp_width or d_model * 4
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(d_model, mlp_width)),
                    ("gelu", mlp_activation(activation)),
                    ("c_proj", nn.Linear(mlp_width, d_model)),
                ]
            )
        )
        self.ln_2 = LayerNorm(d_model)

    def add_prompt(self, n_ctx):
        """A deep prompt (IVLP) kept in the block: ``VPT_shallow`` [n_ctx, W], N(0, 0.02), the
        reference's name. The transformer writes it over n_ctx input tokens at every forward."""
        self.VPT_shallow = nn.Parameter(torch.empty(n_ctx, self.ln_1.normalized_shape[0]).normal_(std=0.02))

    @property
    def own_prompt(self):
        return getattr(self, "VPT_shallow", None)

    @staticmethod
    def insert_prompt(x, prompt, start):
        """x [B, N, W] with ``prompt`` [n, W] written over its tokens start .. start+n (or x unchanged)."""
        if prompt is None:
            return x
        n_ctx = prompt.shape[0]
        if not 0 <= start <= x.shape[1] - n_ctx:
            raise ValueError(f"A deep prompt of {n_ctx} tokens at position {start} does not fit {x.shape[1]} tokens")
        prompt = prompt.to(x.dtype).expand(x.shape[0], -1, -1)  # [B, n_ctx, W]
        return torch.cat([x[:, :start], prompt, x[:, start + n_ctx :]], dim=1)

    def forward(self, x, causal=False, return_cls_attn=False, use_prompts=True, prompt=None, start=0):
        # x: [B, N, W]; prompt: None or [n, W], the deep prompt written at ``start`` first
        if use_prompts:
            x = self.insert_prompt(x, prompt, start)
        attn_out = fused_attention(self.attn, self.ln_1(x), causal, return_cls_attn)
        if return_cls_attn:
            attn_out, cls_attn = attn_out
        x = x + attn_out
        x = x + self.mlp(self.ln_2(x))
        return (x, cls_attn) if return_cls_attn else x

    def forward_shared_prefix(self, prefix, rows, prompt=None, start=1):
        """The block on causal sequences sharing a prefix: prefix [1, P, W], rows [C, S, W].

        A deep prompt must lie inside the prefix (text prompts replace positions 1..n_ctx).
        """
        if prompt is not None:
            if start + prompt.shape[0] > prefix.shape[1]:
                raise ValueError("forward_shared_prefix needs the deep prompt inside the shared prefix")
            prefix = self.insert_prompt(prefix, prompt, start)
        attn_prefix, attn_rows = shared_prefix_attention(self.attn, self.ln_1(prefix), self.ln_1(rows))
        prefix, rows = prefix + attn_prefix, rows + attn_rows
        return prefix + self.mlp(self.ln_2(prefix)), rows + self.mlp(self.ln_2(rows))


class Transformer(nn.Module):
    """A stack of residual attention blocks on tokens [B, N, W]; causal for the text tower.
    ``mlp_width`` (default 4 * width) and ``activation`` follow the weights (OpenCLIP's bigG: 8192)."""

    def __init__(self, width, layers, heads, causal=False, mlp_width=None, activation="quick_gelu"):
        super().__init__()
        self.width = width
        self.layers = layers
        self.causal = causal
        self.resblocks = nn.Sequential(
            *[ResidualAttentionBlock(width, heads, mlp_width, activation) for _ in range(layers)]
        )

    def add_deep_prompts(self, n_ctx, depth):
        """IVLP deep prompts kept in the blocks: blocks 1 .. depth-1 each get n_ctx learnable tokens
        (block 0 sees the prompts its caller put in the input)."""
        if not 0 <= depth <= self.layers:
            raise ValueError(f"Prompt depth {depth} must lie in [0, {self.layers}] (the number of blocks)")
        for block in list(self.resblocks)[1:depth]:
            block.add_prompt(n_ctx)

    def prompt_start(self, n_ctx, length):
        """Where a block's deep prompt of n_ctx tokens goes in a sequence of ``length`` tokens:
        text prompts follow SOS (position 1), vision prompts are the last n_ctx tokens."""
        return 1 if self.causal else length - n_ctx

    def block_prompts(self, deep_prompts=None, use_prompts=True):
        """The deep prompt each block writes into its input (None: none).

        ``deep_prompts`` (MaPLe: computed at call time) go to blocks 1, 2, ... in order; without
        them each block uses the prompt it holds (IVLP's VPT_shallow), if any.
        """
        blocks = list(self.resblocks)
        if not use_prompts:
            return [None] * len(blocks)
        if deep_prompts is None:
            return [block.own_prompt for block in blocks]
        deep_prompts = list(deep_prompts)
        if len(deep_prompts) > len(blocks) - 1:
            raise ValueError(f"{len(deep_prompts)} deep prompts do not fit blocks 1 .. {len(blocks) - 1}")
        return [None] + deep_prompts + [None] * (len(blocks) - 1 - len(deep_prompts))

    def forward(self, x, return_cls_attn=False, use_prompts=True, deep_prompts=None):
        """x [B, N, W] -> [B, N, W] (and the last block's CLS attention [B, N] if asked).

        ``deep_prompts``: prompts for blocks 1, 2, ... passed at call time (see block_prompts);
        ``use_prompts=False`` runs the pre-trained transformer, ignoring every deep prompt.
        """
        cls_attn = None
        prompts = self.block_prompts(deep_prompts, use_prompts)
        last = len(prompts) - 1
        for i, (block, prompt) in enumerate(zip(self.resblocks, prompts)):
            start = 0 if prompt is None else self.prompt_start(prompt.shape[0], x.shape[1])
            if return_cls_attn and i == last:
                x, cls_attn = block(x, self.causal, return_cls_attn=True, prompt=prompt, start=start)
            else:
                x = block(x, self.causal, prompt=prompt, start=start)
        return (x, cls_attn) if return_cls_attn else x
