"""What a retrieval query is adapted to: the loss of the policy's logits over the gallery [1, G].

Both take, per query, the reward CLIP's normalised query embedding (``set_queries``) against its
gallery embeddings, fixed for the set:
- ``RewardObjective`` (RLCF, the reference's clip_ret_policy.py): the reward of the policy's top-K
  candidates times their cross-entropy (tta.core.rewards.reward_loss);
- ``DistillationObjective`` (the reference's clip_ret_kd.py): the cross-entropy of the policy's
  softmax over the whole gallery against the reward CLIP's, both at temperature 1 (the KL divergence
  up to the teacher's entropy, which has no gradient).
"""
import torch
import torch.nn.functional as F

from tta.core.rewards import reward_loss


class RewardObjective:
    """RLCF: ``reward`` a CLIPReward whose candidates are the gallery and whose ``sample_k`` is K."""

    def __init__(self, reward):
        self.reward = reward

    def set_queries(self, features):
        self.reward.set_queries(features)

    def loss(self, logits):
        return reward_loss(logits, self.reward)


class DistillationObjective:
    """Knowledge distillation from one reward CLIP: ``gallery`` its normalised gallery embeddings
    [G, D_r], ``logit_scale`` its exp(logit_scale) (the teacher's logits carry it, as the student's do)."""

    def __init__(self, gallery, logit_scale):
        self.gallery = gallery
        self.logit_scale = float(logit_scale)
        self.target = None  # [1, G] the teacher's probabilities for the current query

    @torch.no_grad()
    def set_queries(self, features):
        """``features``: a one-element list (one reward CLIP) of the query's embedding [1, D_r]."""
        if len(features) != 1:
            raise ValueError(f"distillation takes one reward CLIP, got {len(features)}")
        teacher_logits = self.logit_scale * features[0].float() @ self.gallery.float().t()  # [1, G]
        self.target = teacher_logits.softmax(dim=-1)

    def loss(self, logits):
        """-sum_g p_teacher(g) log p_student(g), averaged over the query rows of ``logits`` [1, G]."""
        return -(self.target * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
