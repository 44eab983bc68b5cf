"""Recall@1/5/10 of a retrieval run both ways, under LAVIS's result names.

Rank of a gallery item in a query's score row: the number of items ranked before it. LAVIS sorts
with ``np.argsort(score)[::-1]``, whose order among equal scores is the sort algorithm's; we fix it
as that expression does with a stable sort: a tied item with a higher index comes first. So

    rank(i) = #{j : s_j > s_i} + #{j > i : s_j == s_i}

Image -> text: the rank of an image is the best rank of its captions; text -> image: the rank of
the caption's image. R@K = 100 x the fraction of queries of rank < K. Ranks are computed per block
of queries, so no score matrix over the whole set is ever held.
"""
import torch

KS = (1, 5, 10)
PREFIX = {"image2text": "txt", "text2image": "img"}


def gallery_ranks(scores, targets):
    """scores [Q, G], targets [Q] (gallery index per query) -> rank [Q] of each target (int64)."""
    target_scores = scores.gather(1, targets[:, None])  # [Q, 1]
    index = torch.arange(scores.shape[1], device=scores.device)[None]  # [1, G]
    before = (scores > target_scores) | ((scores == target_scores) & (index > targets[:, None]))
    return before.sum(dim=1)


def best_ranks(scores, targets):
    """scores [Q, G], targets: per query a list of gallery indices -> best rank [Q] among them."""
    scores = scores.float()
    best = torch.full((scores.shape[0],), scores.shape[1], dtype=torch.long, device=scores.device)
    for c in range(max(len(t) for t in targets)):  # the c-th target of each query that has one
        rows = torch.tensor([q for q, t in enumerate(targets) if len(t) > c], device=scores.device)
        column = torch.tensor([targets[q][c] for q in rows.tolist()], device=scores.device)
        best[rows] = torch.minimum(best[rows], gallery_ranks(scores[rows], column))
    return best


def targets_of(direction, txt2img, img2txt):
    """Per query of ``direction`` its correct gallery items: an image's captions, a caption's image."""
    return img2txt if direction == "image2text" else [[i] for i in txt2img]


def direction_metrics(ranks, direction):
    """Ranks [Q] of one direction -> {txt|img}_r1/r5/r10 and _r_mean."""
    prefix = PREFIX[direction]
    r = [100.0 * (ranks < k).double().mean().item() for k in KS]
    out = {f"{prefix}_r{k}": v for k, v in zip(KS, r)}
    out[f"{prefix}_r_mean"] = sum(r) / 3
    return out


def both_metrics(i2t, t2i):
    """The two directions' metrics -> LAVIS's dict, with r_mean (their mean) and agg_metrics (=
    txt_r_mean, as LAVIS names it)."""
    out = {**i2t, **t2i}
    out["r_mean"] = (i2t["txt_r_mean"] + t2i["img_r_mean"]) / 2
    out["agg_metrics"] = i2t["txt_r_mean"]
    return out


def matrix_ranks(scores_fn, n_queries, targets, block=1024):
    """Ranks [n_queries] of ``scores_fn(rows)`` -> [len(rows), G], a block of queries at a time."""
    ranks = []
    for start in range(0, n_queries, block):
        rows = slice(start, min(start + block, n_queries))
        ranks.append(best_ranks(scores_fn(rows), targets[rows]).cpu())
    return torch.cat(ranks)


def report_metrics(scores_i2t, scores_t2i, txt2img, img2txt):
    """LAVIS's _report_metrics on two full score matrices [N_img, N_txt] and [N_txt, N_img]."""
    i2t = best_ranks(scores_i2t, targets_of("image2text", txt2img, img2txt))
    t2i = best_ranks(scores_t2i, targets_of("text2image", txt2img, img2txt))
    return both_metrics(direction_metrics(i2t, "image2text"), direction_metrics(t2i, "text2image"))
