"""The reference implementation's computation, written plainly, as the benchmark baseline.

It reproduces what the reference TextRefiner does per step (same numbers, the reference's
cost): attention weights returned by every block (no fused attention), ln_post + proj on all
12 layers, full 77-token text sequences, text features recomputed for every batch, and the
cache written by a Python loop over its entries with autograd on.
"""
import torch
import torch.nn.functional as F


def _block_with_weights(block, x, attn_mask=None):
    # x: [L, B, W] (sequence first, as nn.MultiheadAttention expects)
    h = block.ln_1(x)
    out, weights = block.attn(h, h, h, need_weights=True, attn_mask=attn_mask)  # weights [B, L, L]
    x = x + out
    x = x + block.mlp(block.ln_2(x))
    return x, weights


def visual_all_layers(visual, image):
    """(global [B, D], [(tokens_l [B, L, D], cls_attn_l [B, L-1]) for every block])."""
    x = visual.conv1(image.type(visual.conv1.weight.dtype))  # [B, W, g, g]
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B, g*g, W]
    cls = visual.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.ln_pre(x).permute(1, 0, 2)  # [L, B, W]
    outputs = []
    for block in visual.transformer.resblocks:
        x, weights = _block_with_weights(block, x)
        tokens = visual.ln_post(x.permute(1, 0, 2)) @ visual.proj  # every layer projected
        outputs.append((tokens, weights[:, 0, 1:]))
    return outputs[-1][0][:, 0, :], outputs


def text_full_length(clip_model, prompts, tokenized):
    """Text features over all 77 positions with attention weights computed."""
    x = prompts + clip_model.positional_embedding.type(prompts.dtype)
    x = x.permute(1, 0, 2)
    n = x.shape[0]
    mask = torch.full((n, n), float("-inf")).triu_(1)
    for block in clip_model.transformer.resblocks:
        x, _ = _block_with_weights(block, x, attn_mask=mask)
    x = clip_model.ln_final(x.permute(1, 0, 2))
    return x[torch.arange(x.shape[0]), tokenized.argmax(dim=-1)] @ clip_model.text_projection


def cache_write_loop(cache, aligned, momentum):
    """The reference's write: top-1 assignment, weighted sum per entry in a Python loop."""
    m, d = cache.shape
    y = F.normalize(aligned.reshape(-1, d), dim=-1)
    score = y @ cache.t()
    q, p = F.softmax(score, dim=0), F.softmax(score, dim=1)
    _, assign = torch.topk(p, 1, dim=1)
    updated = cache.clone().detach()
    for i in range(m):
        idx = torch.nonzero(assign.squeeze(1) == i)
        if idx.size(0) != 0:
            w = q[idx, i] / torch.max(q[:, i])
            updated[i] = momentum * cache[i] + (1 - momentum) * torch.sum(w * y[idx.squeeze(1)], dim=0)
    return F.normalize(updated, dim=-1)
