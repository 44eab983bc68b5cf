"""Local features for the semantic loss: the CLS token, the most attended patches, the mean token.

The reference uses all three (1 + k + 1 = 7 rows per image with k = 5); TRAINER.TF.LOCAL_FEATURES
picks a subset and TRAINER.TF.TOPK sets k. Rows keep the order CLS, top-k, mean whatever order
the subset is given in.
"""
import torch

LOCAL_PARTS = ("cls", "topk", "mean")


def check_local_parts(parts, topk=5):
    """One clear error for a bad local feature set or k; returns the parts as a tuple."""
    if isinstance(parts, str):
        raise TypeError(f'TRAINER.TF.LOCAL_FEATURES must be a list such as ["cls", "topk", "mean"], got "{parts}"')
    parts = tuple(parts)
    unknown = [p for p in parts if p not in LOCAL_PARTS]
    if unknown or not parts or len(set(parts)) != len(parts):
        raise ValueError(
            f"TRAINER.TF.LOCAL_FEATURES {parts} must be a non-empty subset of {LOCAL_PARTS} without repeats"
        )
    if "topk" in parts and (not isinstance(topk, int) or isinstance(topk, bool) or topk < 1):
        raise ValueError(f"TRAINER.TF.TOPK must be a positive integer, got {topk!r}")
    return parts


def num_local_features(topk=5, parts=LOCAL_PARTS):
    """Local features per image: 7 for the reference's (cls, topk, mean) with k = 5."""
    parts = check_local_parts(parts, topk)
    return ("cls" in parts) + (topk if "topk" in parts else 0) + ("mean" in parts)


def select_local_features(aligned, cls_attn, topk=5, parts=LOCAL_PARTS):
    """Local features [B * n, D], the n rows of one image contiguous: CLS, top-k patches, mean.

    aligned: [B, L, D] aligned tokens (CLS at 0). cls_attn: [B, L-1] the CLS token's attention
    over the patches (head-averaged). The top-k patches are those the CLS token attends to most,
    in descending order; the mean runs over all L tokens, CLS included. Not normalised.
    """
    parts = check_local_parts(parts, topk)
    if aligned.dim() != 3:
        raise ValueError(f"aligned tokens must be [B, L, D], got shape {tuple(aligned.shape)}")
    batch, length, dim = aligned.shape
    if "topk" in parts:
        if tuple(cls_attn.shape) != (batch, length - 1):
            raise ValueError(
                f"cls_attn must be [B, L-1] = {(batch, length - 1)} for tokens of shape {tuple(aligned.shape)}, "
                f"got {tuple(cls_attn.shape)}"
            )
        if topk > length - 1:
            raise ValueError(f"TRAINER.TF.TOPK {topk} exceeds the {length - 1} patch tokens of the image encoder")
    rows = []
    if "cls" in parts:
        rows.append(aligned[:, :1])  # [B, 1, D]
    if "topk" in parts:
        _, patch_idx = torch.topk(cls_attn, k=topk, dim=-1)  # [B, k], sorted descending
        token_idx = (patch_idx + 1).unsqueeze(-1).expand(batch, topk, dim)  # skip CLS at 0
        rows.append(torch.gather(aligned, 1, token_idx))  # [B, k, D]
    if "mean" in parts:
        rows.append(aligned.mean(dim=1, keepdim=True))  # [B, 1, D]
    return torch.cat(rows, dim=1).reshape(-1, dim)  # [B * n, D]
