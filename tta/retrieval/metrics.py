"""Recall@1/5/10 of a retrieval run both ways, under LAVIS's result names.

Rank of a gallery item in a query's score row: the number of items ranked before it. LAVIS sorts
with ``np.argsort(score)[::-1]``, whose order among equal scores is the sort algorithm's; we fix it
as that expression does with a stable sort: a tied item with a higher index comes first. So

    rank(i) = #{j : s_j > s_i} + #{j > i : s_j == s_i}

Image -> text: the rank of an image is the best rank of its captions; text -> image: the rank of
the caption's image. R@K = 100 x the fraction of queries of rank < K.
"""
import torch

KS = (1, 5, 10)


def gallery_ranks(scores, targets):
    """scores [Q, G], targets [Q] (gallery index per query) -> rank [Q] of each target (int64)."""
    target_scores = scores.gather(1, targets[:, None])  # [Q, 1]
    index = torch.arange(scores.shape[1], device=scores.device)[None]  # [1, G]
    before = (scores > target_scores) | ((scores == target_scores) & (index > targets[:, None]))
    return before.sum(dim=1)


def recalls(ranks):
    return [100.0 * (ranks < k).double().mean().item() for k in KS]


def i2t_ranks(scores_i2t, img2txt):
    """scores_i2t [N_img, N_txt] -> best rank [N_img] over each image's captions."""
    best = torch.full((scores_i2t.shape[0],), scores_i2t.shape[1], dtype=torch.long)
    n_caps = max(len(t) for t in img2txt)
    for c in range(n_caps):  # the c-th caption of each image that has one
        rows = torch.tensor([i for i, t in enumerate(img2txt) if len(t) > c])
        targets = torch.tensor([img2txt[i][c] for i in rows.tolist()])
        best[rows] = torch.minimum(best[rows], gallery_ranks(scores_i2t[rows], targets))
    return best


def report_metrics(scores_i2t, scores_t2i, txt2img, img2txt):
    """LAVIS's dict: txt_r1/5/10 and txt_r_mean (image -> text), img_r1/5/10 and img_r_mean
    (text -> image), r_mean (their mean) and agg_metrics (= txt_r_mean, as LAVIS names it)."""
    tr1, tr5, tr10 = recalls(i2t_ranks(scores_i2t.float().cpu(), img2txt))
    ir1, ir5, ir10 = recalls(gallery_ranks(scores_t2i.float().cpu(), torch.tensor(txt2img)))
    tr_mean, ir_mean = (tr1 + tr5 + tr10) / 3, (ir1 + ir5 + ir10) / 3
    return {
        "txt_r1": tr1, "txt_r5": tr5, "txt_r10": tr10, "txt_r_mean": tr_mean,
        "img_r1": ir1, "img_r5": ir5, "img_r10": ir10, "img_r_mean": ir_mean,
        "r_mean": (tr_mean + ir_mean) / 2, "agg_metrics": tr_mean,
    }


def direction_metrics(scores, direction, txt2img, img2txt):
    """The three recalls and their mean of one direction ("image2text" [N_img, N_txt] scores, or
    "text2image" [N_txt, N_img]): a run of one direction reports only what it computed."""
    if direction == "image2text":
        r = recalls(i2t_ranks(scores.float().cpu(), img2txt))
        prefix = "txt"
    else:
        r = recalls(gallery_ranks(scores.float().cpu(), torch.tensor(txt2img)))
        prefix = "img"
    out = {f"{prefix}_r{k}": v for k, v in zip(KS, r)}
    out[f"{prefix}_r_mean"] = sum(r) / 3
    return out
