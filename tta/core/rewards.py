"""The frozen reward CLIP(s) of RLCF: CLIPScore of (query, candidate) pairs, and RLCF's loss.

score = clipscore_weight * max(cos(reward image feature, reward text feature), 0), with
several reward models (RLCF-S) combined as a weighted sum. Classification: the candidates are
class texts (features once per data set), the queries the selected views of a test image (once
per image). Retrieval: the candidates are a gallery (images or captions) and the query the other
side, their features precomputed for the whole set (``set_candidates`` once, ``set_queries`` per query).
"""
import torch
import torch.nn.functional as F
from torch import nn

# the reference's weights of each reward model in RLCF-S (normalised, rounded to 2 decimals)
REFERENCE_WEIGHTS = {"ViT-L/14@336px": 10, "ViT-L/14": 5, "RN50x64": 3, "ViT-B/16": 1}
REFERENCE_MULTIPLE = ("ViT-L/14@336px", "RN50x64", "ViT-L/14")
TEXT_CHUNK = 256  # classes per text-encoder call: bounds the activations for 1000-class sets


def normalised_weights(names, weights=None):
    """Per-model weights: given ones, else the reference's table; normalised, rounded to 2 decimals."""
    if weights is None:
        unknown = [n for n in names if n not in REFERENCE_WEIGHTS]
        if unknown:
            raise ValueError(
                f"No reference weight for reward model(s) {unknown}: give one weight per model with --reward_weights"
            )
        weights = [REFERENCE_WEIGHTS[n] for n in names]
    if len(weights) != len(names):
        raise ValueError(f"--reward_weights has {len(weights)} values for {len(names)} reward models {list(names)}")
    total = float(sum(weights))
    return [round(w / total, 2) for w in weights]


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


class CLIPReward(nn.Module):
    """CLIPScore rewards from frozen CLIP models (one, or several with ``weights``)."""

    def __init__(self, models, weights=None, clipscore_weight=2.5, sample_k=3, reward_process=True,
                 process_batch=False, amplify_rewards=False):
        super().__init__()
        self.models = nn.ModuleList(models).eval().requires_grad_(False)
        self.weights = weights  # None: a single model, its score unweighted
        self.clipscore_weight = clipscore_weight
        self.sample_k = sample_k
        self.reward_process = reward_process
        self.process_batch = process_batch
        self.amplify_rewards = amplify_rewards
        self.class_features = None  # per model [C, D_m]
        self.image_features = None  # per model [S, D_m]

    @torch.no_grad()
    def set_class_features(self, tokenized):
        """Class prompts [C, 77] (the student's) -> normalised text features per model, once per data set."""
        self.class_features = [
            unit(torch.cat([m.encode_text(t).float() for t in tokenized.split(TEXT_CHUNK)])) for m in self.models
        ]

    @torch.no_grad()
    def set_image_features(self, views):
        """Selected views [S, 3, H, W] -> normalised image features per model (bicubic resize if needed)."""
        features = []
        for m in self.models:
            size = m.visual.input_resolution
            x = views
            if views.shape[-1] != size:
                x = F.interpolate(views, size=size, mode="bicubic", align_corners=True)
            features.append(unit(m.encode_image(x).float()))
        self.image_features = features

    def set_candidates(self, features):
        """Per model the normalised candidate features [C, D_m], computed elsewhere (a retrieval gallery)."""
        self.class_features = list(features)

    def set_queries(self, features):
        """Per model the normalised query features [S, D_m], computed elsewhere."""
        self.image_features = list(features)

    @torch.no_grad()
    def clip_score(self, class_index):
        """class_index [S * K] (K candidates per view, view-major) -> scores [S * K]."""
        scores = []
        for text, image in zip(self.class_features, self.image_features):
            image = image.repeat_interleave(self.sample_k, dim=0)  # [S * K, D]
            cos = (text[class_index] * image).sum(dim=-1)
            scores.append((self.clipscore_weight * cos).clamp(min=0))
        if self.weights is None:
            return scores[0]
        weights = torch.tensor(self.weights, dtype=scores[0].dtype, device=scores[0].device)
        return (weights[:, None] * torch.stack(scores)).sum(dim=0)

    @torch.no_grad()
    def rewards(self, class_index):
        """Scores minus their mean over each view's K candidates (over all S * K with process_batch)."""
        scores = self.clip_score(class_index)
        if not self.process_batch:
            scores = scores.reshape(-1, self.sample_k)  # [S, K]
        if self.reward_process and scores.shape[-1] > 1:
            centred = scores - scores.mean(dim=-1, keepdim=True)
            scores = centred / (scores.std(dim=-1, keepdim=True) + 1e-5) if self.amplify_rewards else centred
        return scores.flatten()


def reward_loss(logits, reward):
    """mean over (query, candidate) of reward x CE(query logits, candidate); the candidates of a
    query are its top-K (``reward.sample_k``) of the logits [S, C]: classes, or gallery items."""
    k = reward.sample_k
    candidates = logits.topk(k, dim=-1).indices.flatten()  # [S * K], query-major
    rewards = reward.rewards(candidates)  # [S * K], no graph
    ce = F.cross_entropy(logits.repeat_interleave(k, dim=0), candidates, reduction="none")
    return (rewards * ce).mean()
