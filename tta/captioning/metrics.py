"""Caption metrics as the reference reports them (all x 100).

BLEU-1..4, METEOR, ROUGE-L and CIDEr: pycocoevalcap's scorers on its PTB tokenizer's output (the
tokenizer and METEOR run java). The reference tokenizes once per scorer; the tokenization is
deterministic, so it runs once here. SPICE is off, as in the reference.
CLIPScore (Hessel et al.): w * max(cos(image, "A photo depicts " + caption), 0), w = 2.5, under
CLIP ViT-B/32; RefCLIPScore: the harmonic mean of it and the highest cosine between the caption and
its references (prefixed alike; that half neither clamped nor scaled, as the reference).
"""
import shutil

import torch

import clip
from engine.utils.faults import UserError

CLIPSCORE_PREFIX = "A photo depicts"
CLIPSCORE_WEIGHT = 2.5
CLIPSCORE_ARCH = "ViT-B/32"


def _scorers():
    if shutil.which("java") is None:
        raise UserError(
            "The caption metrics need java (pycocoevalcap's PTB tokenizer and METEOR run it) and none is on the PATH: "
            "install a Java runtime (Debian / Ubuntu: apt-get install default-jre-headless; conda: conda install "
            "-c conda-forge openjdk), or give --no_coco_metrics to report the CLIPScores only"
        )
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    except ImportError:
        raise UserError("The caption metrics need pycocoevalcap: pip install pycocoevalcap") from None
    return PTBTokenizer(), [(Bleu(4), "BLEU"), (Meteor(), "METEOR"), (Rouge(), "ROUGE-L"), (Cider(), "CIDEr")]


def coco_metrics(references, candidates):
    """references: per image a list of strings; candidates: one string per image -> {metric: value x 100}."""
    if len(references) != len(candidates):
        raise ValueError(f"{len(candidates)} candidate captions for {len(references)} images with references")
    tokenizer, scorers = _scorers()
    refs = tokenizer.tokenize({i: [{"caption": r} for r in rs] for i, rs in enumerate(references)})
    cands = tokenizer.tokenize({i: [{"caption": c}] for i, c in enumerate(candidates)})
    results = {}
    for scorer, name in scorers:
        score, _ = scorer.compute_score(refs, cands)
        if name == "BLEU":
            results.update({f"BLEU-{n + 1}": 100 * s for n, s in enumerate(score)})
        else:
            results[name] = 100 * float(score)
    return results


@torch.no_grad()
def _text_features(model, texts, batch=256):
    device = model.text_projection.device
    prompts = [f"{CLIPSCORE_PREFIX} {t}" for t in texts]
    feats = [model.encode_text(clip.tokenize(prompts[i : i + batch], truncate=True).to(device)).float()
             for i in range(0, len(prompts), batch)]
    feats = torch.cat(feats)
    return feats / feats.norm(dim=-1, keepdim=True)


@torch.no_grad()
def clip_scores(model, image_features, candidates, references=None):
    """Per-image CLIPScore [N] (and RefCLIPScore [N] with references), not yet x 100.

    image_features [N, D]: the CLIP's image features of the N images (normalised here)."""
    images = image_features.float() / image_features.float().norm(dim=-1, keepdim=True)
    cands = _text_features(model, candidates)
    clip_score = CLIPSCORE_WEIGHT * (images.to(cands.device) * cands).sum(dim=-1).clamp(min=0)
    if references is None:
        return clip_score, None
    flat = [r for rs in references for r in rs]
    owner = torch.tensor([i for i, rs in enumerate(references) for _ in rs], device=cands.device)
    sims = (cands[owner] * _text_features(model, flat)).sum(dim=-1)  # [R]
    best = torch.full((len(candidates),), -float("inf"), device=cands.device).scatter_reduce(0, owner, sims, "amax")
    return clip_score, 2 * clip_score * best / (clip_score + best)


def all_metrics(references, candidates, model=None, image_features=None, coco=True):
    """The reference's table: the COCO metrics (when ``coco``) and, with a CLIP, CLIPScore / RefCLIPScore (x 100)."""
    results = coco_metrics(references, candidates) if coco else {}
    if model is not None:
        score, ref_score = clip_scores(model, image_features, candidates, references)
        results["CLIPScore"] = 100 * float(score.mean())
        results["RefCLIPScore"] = 100 * float(ref_score.mean())
    return results
