"""The world's caption set, its OPT, and the ClipCap / CapDec experiment end to end in its smallest form."""
import json
import os

import pytest

from tools.world import captioning
from tta.captioning.data import read_test_set, read_train_set


def test_caption_set_is_in_the_karpathy_layout_and_seeded(tmp_path):
    a = captioning.write_caption_set(str(tmp_path / "a"), train_images=3, test_images=2, styles=("sketch",), log=lambda m: None)
    b = captioning.write_caption_set(str(tmp_path / "b"), train_images=3, test_images=2, styles=("sketch",), log=lambda m: None)
    images, caps, index = read_train_set(captioning.train_file(a), a)
    assert len(images) == 3 and len(caps) == 15 and index == [i for i in range(3) for _ in range(5)]
    test = read_test_set(captioning.test_file(a, "sketch"), a)
    assert len(test) == 2 and all(len(t.references) == 5 for t in test)
    assert open(captioning.test_file(a, "sketch")).read() == open(captioning.test_file(b, "sketch")).read()
    assert open(os.path.join(a, "images/train/00001.png"), "rb").read() == open(os.path.join(b, "images/train/00001.png"), "rb").read()
    with pytest.raises(ValueError, match="made with"):
        captioning.write_caption_set(a, train_images=4, test_images=2, styles=("sketch",))
    with pytest.raises(ValueError, match="not a shifted world style"):
        captioning.write_caption_set(str(tmp_path / "c"), styles=("photo",))


@pytest.mark.slow
def test_smallest_run_end_to_end(tmp_path, monkeypatch, tiny_vit_path, one_thread):  # noqa: F811
    monkeypatch.setenv("TEXTREFINER_WORLD_CACHE", str(tmp_path / "cache"))
    out = str(tmp_path / "run")
    summary = captioning.run(out, seeds=(1,), styles=("sketch",), train_images=8, test_images=2, tta_steps=1,
                             epochs=1, opt_steps=3, coco=False, clip_path=tiny_vit_path, log=lambda m: None)
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f) == summary
    runs = summary["runs"]
    assert [(r["model"], r["tta_steps"]) for r in runs] == [("CapDec", 0), ("CapDec", 1), ("ClipCap", 0), ("ClipCap", 1)]
    assert all(set(r["metrics"]) == {"CLIPScore", "RefCLIPScore"} for r in runs)
    opt = captioning.opt_cache_path({**captioning.OPT_DEFAULTS, "steps": 3})
    assert os.path.isfile(os.path.join(opt, "settings.json"))
    assert captioning.table(runs).splitlines()[0] == "| test style | model | TTA | seeds | CLIPScore |"
