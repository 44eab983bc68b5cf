"""TextRefiner's losses and their weighting in the CoOp variant and the PromptKD variant.

Both variants share the regularisation loss; the semantic loss is a cross-entropy with labels
(CoOp) or a distillation from the teacher's global soft labels (PromptKD). The logged parts are
detached 0-d tensors named as the reference logs them; a trainer turns them into floats.
"""
import torch.nn.functional as F


def _check_local_rows(local, n_local, batch):
    if local.shape[0] != n_local * batch:
        raise ValueError(
            f"{local.shape[0]} local features do not make {n_local} per image for a batch of {batch}: "
            "pass the n_local the local features were selected with"
        )


def semantic_loss(local, text, labels, logit_scale, n_local):
    """CE of the local features [n*B, D] against the unrefined text [C, D]; each label n times."""
    _check_local_rows(local, n_local, labels.shape[0])
    logits = logit_scale * local @ text.t()  # [n*B, C]
    return F.cross_entropy(logits, labels.repeat_interleave(n_local))


def regularisation_loss(refined, text):
    """Mean L1 distance (over C x D) between the normalised refined text and the text [C, D]."""
    return F.l1_loss(F.normalize(refined, dim=-1), text)


def coop_total(global_ce, semantic, regularisation, balance=50.0, distill=20.0):
    """L = L_g + L_sem / BALANCE + DISTILL * L_reg, and the parts as the reference logs them.

    Parts: "global" = L_g, "local" = L_sem / BALANCE, "feature" = DISTILL * L_reg.
    """
    local = semantic / balance
    feature = regularisation * distill
    parts = {"global": global_ce.detach(), "local": local.detach(), "feature": feature.detach()}
    return global_ce + local + feature, parts


def semantic_kd_loss(local_logits, teacher_logits, temperature=1.0, n_local=7):
    """kd_loss of the local logits [n*B, C] against each image's global teacher logits [B, C].

    The teacher's soft labels are copied to the n local features of their image, so the
    temperature softmax is taken before the copy, as the reference.
    """
    _check_local_rows(local_logits, n_local, teacher_logits.shape[0])
    log_student = F.log_softmax(local_logits / temperature, dim=1)
    teacher = F.softmax(teacher_logits / temperature, dim=1).repeat_interleave(n_local, dim=0)
    kl = F.kl_div(log_student, teacher, reduction="sum")
    return kl * temperature * temperature / local_logits.numel()


def promptkd_total(ukd, semantic, regularisation, kd_weight=1000.0):
    """L = KD * L_ukd + KD / 100 * L_sem + KD / 50 * L_mem, and the parts as the reference logs
    them ("L_ukd", "L_sem", "L_mem", each with its weight)."""
    parts = {"L_ukd": kd_weight * ukd, "L_sem": kd_weight / 100 * semantic, "L_mem": kd_weight / 50 * regularisation}
    return sum(parts.values()), {name: value.detach() for name, value in parts.items()}
