"""Local features for the semantic loss: CLS token, the most attended patches and the mean token."""
import torch

LOCAL_PARTS = ("cls", "topk", "mean")


def num_local_features(topk=5, parts=LOCAL_PARTS):
    _check_parts(parts)
    return ("cls" in parts) + (topk if "topk" in parts else 0) + ("mean" in parts)


def _check_parts(parts):
    unknown = [p for p in parts if p not in LOCAL_PARTS]
    if unknown or not parts:
        raise ValueError(f"TRAINER.TF.LOCAL_FEATURES {tuple(parts)} must be a non-empty subset of {LOCAL_PARTS}")


def select_local_features(aligned, cls_attn, topk=5, parts=LOCAL_PARTS):
    """[B * n, D] local features, the n rows of one image contiguous, in the order CLS, top-k, mean.

    aligned: [B, L, D] aligned tokens (CLS at 0); cls_attn: [B, L-1] CLS->patch attention.
    The top-k patches are those the CLS token attends to most (sorted descending). Not normalised.
    """
    _check_parts(parts)
    batch, _, dim = aligned.shape
    rows = []
    if "cls" in parts:
        rows.append(aligned[:, :1])
    if "topk" in parts:
        _, idx = torch.topk(cls_attn, k=topk, dim=-1)  # [B, k], patch indices
        rows.append(torch.gather(aligned, 1, (idx + 1).unsqueeze(-1).expand(batch, topk, dim)))
    if "mean" in parts:
        rows.append(aligned.mean(dim=1, keepdim=True))  # over all tokens, CLS included
    return torch.cat(rows, dim=1).reshape(-1, dim)
