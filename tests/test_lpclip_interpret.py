"""Linear-probe CLIP end to end (feature cache reused), its C search, and interpret_prompt on CoOp and
reference-layout checkpoints."""
import json
import os
import re

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

import clip
import lpclip.features
from lpclip import linear_probe
from lpclip.search import C_GRID, search_c
from tests import tiny_run
from tools import interpret_prompt
from tools.tiny_clip import tiny_clip_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _probe(pets_root, clip_path, out):
    # tiny fits: BLAS threads only add overhead (10x on a busy machine)
    with threadpool_limits(limits=1):
        return _probe_run(pets_root, clip_path, out)


def _probe_run(pets_root, clip_path, out):
    return linear_probe.main([
        "--root", pets_root, "--dataset-config-file", os.path.join(REPO, "configs/datasets/oxford_pets.yaml"),
        "--config-file", os.path.join(REPO, "configs/trainers/CoOp/rn50_val.yaml"),
        "--num-shots", "2", "--seeds", "1", "2", "--num-step", "2", "--output-dir", out,
        "MODEL.BACKBONE.PATH", clip_path, "INPUT.SIZE", "(32, 32)", "DATALOADER.NUM_WORKERS", "0",
    ])


def test_linear_probe_end_to_end_and_cache(tmp_path, pets_root, tiny_vit_path, monkeypatch):
    out = str(tmp_path / "lp")
    first = _probe(pets_root, tiny_vit_path, out)
    run_dir = os.path.join(out, "tiny_vit_2shots")
    log = open(os.path.join(run_dir, "log.txt")).read()
    for seed in (1, 2):
        r = first["seeds"][seed]
        assert f"seed {seed}: C = {r['C']:.6g}, val accuracy {r['val_accuracy']:.2f}%, " \
               f"test accuracy {r['test_accuracy']:.2f}%" in log
    assert f"* accuracy: {first['mean']:.2f}% +- {first['std']:.2f}%" in log
    assert json.load(open(os.path.join(run_dir, "results.json")))["mean"] == pytest.approx(first["mean"])
    cache = os.path.join(out, "features", "tiny_vit")
    test = np.load(os.path.join(cache, "test.npz"))
    assert test["feature_list"].shape == (18, 32) and sorted(set(test["label_list"])) == list(range(6))
    train_set = np.load(os.path.join(cache, "shot_2-seed_1", "train.npz"))
    assert train_set["feature_list"].shape == (12, 32)  # 2 shots x 6 classes

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were extracted again")

    monkeypatch.setattr(lpclip.features, "extract_features", no_extraction)
    again = _probe(pets_root, tiny_vit_path, out)
    assert again["seeds"] == first["seeds"]  # same features, same fits
    newest = sorted(f for f in os.listdir(run_dir) if f.startswith("log.txt"))[-1]
    assert "Loaded cached features from" in open(os.path.join(run_dir, newest)).read()


def test_feature_cache_is_keyed_by_content(tmp_path, pets_root, tiny_vit_path, tiny_teacher_path, capsys):
    # two different models saved under the same file name: the second gets its own features
    first, second = tmp_path / "a" / "tiny.pt", tmp_path / "b" / "tiny.pt"
    for path, source in ((first, tiny_vit_path), (second, tiny_teacher_path)):
        path.parent.mkdir()
        path.write_bytes(open(source, "rb").read())
    out = str(tmp_path / "lp")
    _probe(pets_root, str(first), out)
    cache = os.path.join(out, "features", "tiny")
    assert np.load(os.path.join(cache, "test.npz"))["feature_list"].shape == (18, 32)
    capsys.readouterr()
    _probe(pets_root, str(second), out)
    stdout = capsys.readouterr().out
    assert f'The cached features "{cache}/test.npz" were made from other inputs (weights): extracting them again' in stdout
    assert np.load(os.path.join(cache, "test.npz"))["feature_list"].shape == (18, 48)  # the teacher's width

    with open(os.path.join(cache, "test.npz"), "r+b") as f:  # a truncated copy
        f.truncate(100)
    _probe(pets_root, str(second), out)
    stdout = capsys.readouterr().out
    assert f'The cached features "{cache}/test.npz" cannot be read (' in stdout and "extracting them again" in stdout
    assert f"Loaded cached features from {cache}/shot_2-seed_1/train.npz" in stdout
    assert np.load(os.path.join(cache, "test.npz"))["feature_list"].shape == (18, 48)


def test_c_search_follows_the_val_accuracy():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8)) * 3
    def sample(n):
        labels = np.repeat(np.arange(3), n)
        return centers[labels] + rng.normal(size=(3 * n, 8)), labels
    with threadpool_limits(limits=1):
        c, clf, val_acc = search_c(sample(4), sample(4), num_step=0)
        c8, _, _ = search_c(sample(4), sample(4), num_step=3)
    assert c in C_GRID and val_acc == 1.0 and clf.C == c
    assert 1e-7 <= c8 <= 1e7


def _coop_run(tmp_path, pets_root, clip_path):
    out = str(tmp_path / "coop")
    tiny_run.main(pets_root, out, clip_path, batch=8, shots=1, epochs=1)
    return os.path.join(out, "prompt_learner", "model.pth.tar-1")


def test_interpret_our_coop_checkpoint(tmp_path, pets_root, tiny_vit_path, capsys):
    ckpt = _coop_run(tmp_path, pets_root, tiny_vit_path)
    capsys.readouterr()
    assert interpret_prompt.main([ckpt, "--topk", "2"]) == 0
    out = capsys.readouterr().out
    assert "Backbone from the run's log" in out and "Size of context (ctx): (4, 64)" in out
    # initialised from "a photo of a" and trained one warm-up epoch: still next to those words
    assert 'nearest words: "a photo of a"' in out
    assert re.search(r"^2: \['photo', '[^']+'\] \['0\.0\d+', '\d+\.\d+'\]$", out, re.M)


def test_interpret_reference_layout_and_errors(tmp_path, tiny_vit_path, capsys):
    model = tiny_clip_model("vit")
    with torch.no_grad():
        ctx = model.token_embedding(clip.tokenize("a diagram of")[0, 1:4]).half()
    run = tmp_path / "seed1"
    (run / "VLPromptLearner").mkdir(parents=True)
    ckpt = run / "VLPromptLearner" / "model.pth.tar-20"
    state = {"prompt_learner.ctx": ctx, "prompt_learner.token_prefix": torch.zeros(2, 1, 64),
             "image_encoder.transformer.resblocks.1.VPT_shallow": torch.zeros(4, 128)}
    torch.save({"state_dict": state, "epoch": 20, "optimizer": None, "scheduler": None, "val_result": None}, ckpt)
    assert interpret_prompt.main([str(ckpt), "--backbone-path", tiny_vit_path]) == 0
    out = capsys.readouterr().out
    assert "Size of context (prompt_learner.ctx): (3, 64)" in out and 'nearest words: "a diagram of"' in out

    # no log.txt and no flag; a backbone of another width; no context in the file
    assert interpret_prompt.main([str(ckpt)]) == 1
    assert "pass --backbone (e.g. ViT-B/16) or --backbone-path" in capsys.readouterr().err
    torch.save({"state_dict": {"ctx": torch.zeros(4, 48)}}, tmp_path / "wide.pth.tar")
    assert interpret_prompt.main([str(tmp_path / "wide.pth.tar"), "--backbone-path", tiny_vit_path]) == 1
    assert "the context has width 48 but the token embedding" in capsys.readouterr().err
    torch.save({"state_dict": {"text_feature_residuals": torch.zeros(2, 32)}}, tmp_path / "taskres.pth.tar")
    assert interpret_prompt.main([str(tmp_path / "taskres.pth.tar"), "--backbone-path", tiny_vit_path]) == 1
    assert "pass one with --key" in capsys.readouterr().err
