"""TextRefiner's losses and the CoOp-variant weighting."""
import torch.nn.functional as F


def semantic_loss(local, text, labels, logit_scale, n_local):
    """CE of the local features [n*B, D] against the unrefined text [C, D]; each image's label n times."""
    logits = logit_scale * local @ text.t()
    return F.cross_entropy(logits, labels.repeat_interleave(n_local))


def regularisation_loss(refined, text):
    """Mean L1 distance between the normalised refined text and the text [C, D]."""
    return F.l1_loss(F.normalize(refined, dim=-1), text)


def coop_total(global_ce, semantic, regularisation, balance=50.0, distill=20.0):
    """L = L_g + L_sem / BALANCE + DISTILL * L_reg, with the components the reference logs."""
    local = semantic / balance
    feature = regularisation * distill
    parts = {"global": global_ce.item(), "local": local.item(), "feature": feature.item()}
    return global_ce + local + feature, parts
