"""The text feature cache (TEST.FEATURE_CACHE): the hand-made template text features of ZeroshotCLIP /
ZeroshotCLIP2, KgCoOp, TaskRes and PromptSRC bit-identical with and without it (through the trainers
and a train.py run), invalidation on each key entry, a corrupt file named and rebuilt, the opt-out
and weights without a content fingerprint."""
import glob
import os
from types import SimpleNamespace

import pytest
import torch

import clip
import train
from clip.model import convert_weights
from engine.feature_cache import cached_text_features
from tools.tiny_clip import save_tiny_clip
from trainers.kgcoop import hand_crafted_text_features

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["INPUT.SIZE", "(32, 32)", "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
         "DATALOADER.TEST.BATCH_SIZE", "8", "DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "1",
         "DATASET.SUBSAMPLE_CLASSES", "base"]
# trainer -> (config, its opts, the attribute holding its text features, the cache file's name part)
TRAINERS = {
    "ZeroshotCLIP": ("ZeroshotCLIP/vit_b16", [], "text_features", "zeroshot-weights"),
    "ZeroshotCLIP2": ("ZeroshotCLIP/vit_b16", [], "text_features", "zeroshot-weights"),
    "KgCoOp": ("KgCoOp/vit_b16_ep100_ctxv1", [], "clip_text", "kgcoop-anchors"),
    "TaskRes": ("TaskRes/adam_lr2e-4_B256_ep200_ViT16", [], "model.prompt_learner.base_text_features", "taskres-eot"),
    "PromptSRC": ("PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx",
                  ["TRAINER.PROMPTSRC.PROMPT_DEPTH_VISION", "2", "TRAINER.PROMPTSRC.PROMPT_DEPTH_TEXT", "2"],
                  "fixed_embeddings", "promptsrc-frozen-text"),
}


def _main(root, out, clip_path, name, cache_dir, *opts, flags=()):
    config, trainer_opts = TRAINERS[name][:2]
    argv = ["--root", root, "--seed", "1", "--output-dir", out, "--trainer", name, *flags,
            "--dataset-config-file", os.path.join(REPO, "configs/datasets/oxford_pets.yaml"),
            "--config-file", os.path.join(REPO, f"configs/trainers/{config}.yaml"), *SMALL,
            "MODEL.BACKBONE.PATH", clip_path, "TEST.FEATURE_CACHE_DIR", cache_dir, *trainer_opts, *opts]
    return train.main(train.build_parser().parse_args(argv))


def _attr(obj, path):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _log(out):
    with open(os.path.join(out, "log.txt")) as f:
        return f.read()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_trainers_text_features_bit_identical(tmp_path, pets_root, tiny_vit_path, name):
    cache_dir = str(tmp_path / "cache")
    attr, part = TRAINERS[name][2:]
    build = lambda out, on: _main(pets_root, str(tmp_path / out), tiny_vit_path, name, cache_dir,
                                  "TEST.FEATURE_CACHE", on, flags=["--no-train"])
    plain = _attr(build("off", "False"), attr)
    assert not os.path.exists(cache_dir)
    cold = _attr(build("cold", "True"), attr)
    files = glob.glob(os.path.join(cache_dir, f"OxfordPets-text-{part}-*.safetensors"))
    assert len(files) == 1 and f"to {files[0]}" in _log(tmp_path / "cold")
    warm = _attr(build("warm", "True"), attr)
    assert f"from {files[0]}" in _log(tmp_path / "warm") and "Loaded cached text features" in _log(tmp_path / "warm")
    for got in (cold, warm):
        assert got.dtype == plain.dtype and got.device == plain.device and torch.equal(got, plain)


@pytest.mark.slow
def test_kgcoop_training_run_same_checkpoint_with_cache(tmp_path, pets_root, tiny_vit_path):
    cache_dir = str(tmp_path / "cache")
    ctx = {}
    for out, on in (("off", "False"), ("cold", "True"), ("warm", "True")):
        trainer = _main(pets_root, str(tmp_path / out), tiny_vit_path, "KgCoOp", cache_dir, "TEST.FEATURE_CACHE", on)
        ctx[out] = trainer.model.prompt_learner.ctx.detach().clone()
    assert "Loaded cached text features" in _log(tmp_path / "warm")
    assert "Loaded cached text features" not in _log(tmp_path / "cold")
    assert torch.equal(ctx["off"], ctx["cold"]) and torch.equal(ctx["off"], ctx["warm"])
    saved = [torch.load(glob.glob(str(tmp_path / out / "prompt_learner" / "model.pth.tar-*"))[0], weights_only=True)
             for out in ("off", "warm")]
    assert torch.equal(saved[0]["state_dict"]["ctx"], saved[1]["state_dict"]["ctx"])


class _Counting:
    """compute() for cached_text_features that counts its calls."""

    def __init__(self, clip_model, classnames, template):
        self.calls = 0
        self.args = clip_model, classnames, template

    def __call__(self):
        self.calls += 1
        return hand_crafted_text_features(*self.args)


def _stub(weights, folder, on=True):
    """What cached_text_features reads of a trainer: cfg, weights_files, weights_digests."""
    cfg = SimpleNamespace(TEST=SimpleNamespace(FEATURE_CACHE=on, FEATURE_CACHE_DIR=folder),
                          DATASET=SimpleNamespace(NAME="OxfordPets"))
    return SimpleNamespace(cfg=cfg, weights_files=lambda cfg: {"MODEL.BACKBONE": weights}, weights_digests={})


def _features(stub, clip_model, classnames, template, name="kgcoop-anchors"):
    compute = _Counting(clip_model, classnames, template)
    prompts = [template.format(c) for c in classnames]
    return cached_text_features(stub, clip_model, name, prompts, compute), compute.calls


@pytest.mark.slow
def test_every_key_entry_invalidates(tmp_path, tiny_vit_path, monkeypatch):
    folder = str(tmp_path / "cache")
    model = clip.load("", path=tiny_vit_path, device="cpu")
    names, template = ["cat", "dog"], "a photo of a {}."
    stub = _stub(tiny_vit_path, folder)
    base, calls = _features(stub, model, names, template)
    assert calls == 1
    again, calls = _features(stub, model, names, template)
    assert calls == 0 and torch.equal(again, base)
    other_path = save_tiny_clip(str(tmp_path / "other.pt"), kind="vit", fmt="state_dict", seed=5)
    other_model = clip.load("", path=str(other_path), device="cpu")
    half_model = clip.load("", path=tiny_vit_path, device="cpu")
    convert_weights(half_model)  # what PREC fp16 gives
    variants = {
        "another template": lambda: _features(stub, model, names, "art of the {}."),
        "other class names": lambda: _features(stub, model, ["cat", "bird"], template),
        "other class order": lambda: _features(stub, model, names[::-1], template),
        "other weights": lambda: _features(_stub(str(other_path), folder), other_model, names, template),
        "other precision": lambda: _features(stub, half_model, names, template),
        "another computation": lambda: _features(stub, model, names, template, name="other-anchors"),
    }
    for what, make in variants.items():
        features, calls = make()
        assert calls == 1, what
        features, calls = make()  # each variant has its own file
        assert calls == 0, what
    assert len(glob.glob(os.path.join(folder, "*.safetensors"))) == 1 + len(variants)
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    assert _features(stub, model, names, template)[1] == 1  # another torch
    monkeypatch.undo()


def test_corrupt_file_is_named_and_rebuilt(tmp_path, tiny_vit_path, capsys):
    folder = str(tmp_path / "cache")
    model = clip.load("", path=tiny_vit_path, device="cpu")
    stub = _stub(tiny_vit_path, folder)
    base, _ = _features(stub, model, ["cat", "dog"], "a photo of a {}.")
    (path,) = glob.glob(os.path.join(folder, "OxfordPets-text-kgcoop-anchors-*.safetensors"))
    with open(path, "r+b") as f:  # a truncated copy
        f.truncate(40)
    capsys.readouterr()
    features, calls = _features(stub, model, ["cat", "dog"], "a photo of a {}.")
    out = capsys.readouterr().out
    assert calls == 1 and torch.equal(features, base)
    assert f'The cached features "{path}" cannot be read (' in out and "computing them again" in out
    assert f"Saved 2 text feature rows to {path}" in out
    assert _features(stub, model, ["cat", "dog"], "a photo of a {}.")[1] == 0


def test_opt_out_and_hub_weights_compute(tmp_path, tiny_vit_path, capsys):
    folder = str(tmp_path / "cache")
    model = clip.load("", path=tiny_vit_path, device="cpu")
    for stub in (_stub(tiny_vit_path, folder, on=False), _stub("openclip:ViT-B-16/laion2b_s34b_b88k", folder)):
        for _ in range(2):
            assert _features(stub, model, ["cat"], "a {}.")[1] == 1
    assert not os.path.exists(folder)
    assert 'the weights "openclip:ViT-B-16/laion2b_s34b_b88k" have no content fingerprint here' in capsys.readouterr().out
