"""Caption metrics: pycocoevalcap's scorers called directly, CLIPScore / RefCLIPScore written out."""
import shutil

import numpy as np
import pytest
import torch

import clip
from engine.utils.faults import UserError
from tools.tiny_clip import tiny_clip_model
from tta.captioning import metrics

REFS = [
    ["a man riding a horse on a beach .", "a person rides a brown horse near the sea", "horse and rider on the sand"],
    ["two dogs play with a ball in the grass", "dogs playing in a park", "a pair of dogs chase a red ball"],
    ["a plate of food with broccoli and rice", "a dinner plate with vegetables", "rice, broccoli and chicken on a plate"],
]
CANDS = ["a man rides a horse on the beach", "two dogs playing with a ball", "a plate with rice and broccoli"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap's tokenizer and METEOR need java")
def test_coco_metrics_equal_pycocoevalcap():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    ours = metrics.coco_metrics(REFS, CANDS)
    expected = {}
    for scorer, name in [(Bleu(4), "BLEU"), (Meteor(), "METEOR"), (Rouge(), "ROUGE-L"), (Cider(), "CIDEr")]:
        tok = PTBTokenizer()  # as the reference: a tokenization per scorer
        refs = tok.tokenize({i: [{"caption": r} for r in rs] for i, rs in enumerate(REFS)})
        cands = tok.tokenize({i: [{"caption": c}] for i, c in enumerate(CANDS)})
        score, _ = scorer.compute_score(refs, cands)
        if name == "BLEU":
            expected.update({f"BLEU-{n + 1}": 100 * s for n, s in enumerate(score)})
        else:
            expected[name] = 100 * score
    assert set(ours) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"}
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-9), name
    assert 0 < ours["CIDEr"] and 0 < ours["BLEU-1"] <= 100


def test_missing_java_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(metrics.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="need java .*apt-get install default-jre-headless"):
        metrics.coco_metrics(REFS, CANDS)


def test_clipscore_and_refclipscore_written_out():
    model = tiny_clip_model("vit", seed=4).requires_grad_(False)
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        image_features = model.encode_image(images)

        def feats(texts):
            f = model.encode_text(clip.tokenize(["A photo depicts " + t for t in texts])).numpy()
            return f / np.sqrt((f**2).sum(axis=1, keepdims=True))

    img = image_features.numpy() / np.sqrt((image_features.numpy() ** 2).sum(axis=1, keepdims=True))
    cand = feats(CANDS)
    per = 2.5 * np.clip((img * cand).sum(axis=1), 0, None)
    text_text = np.array([max(cand[i] @ r for r in feats(REFS[i])) for i in range(3)])
    ref_per = 2 * per * text_text / (per + text_text)

    score, ref_score = metrics.clip_scores(model, image_features, CANDS, REFS)
    np.testing.assert_allclose(score.numpy(), per, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ref_score.numpy(), ref_per, rtol=1e-5, atol=1e-6)
    table = metrics.all_metrics(REFS, CANDS, model, image_features, coco=False)
    assert table == pytest.approx({"CLIPScore": 100 * per.mean(), "RefCLIPScore": 100 * ref_per.mean()}, rel=1e-5)
