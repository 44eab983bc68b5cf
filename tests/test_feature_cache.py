"""The evaluation feature cache (TEST.FEATURE_CACHE): logits bit-identical to computing the features,
through train.py (--eval-only and a short training run), invalidation on each key entry, a corrupt
file named and rebuilt, the opt-out, and no cache for trainers whose image tower is prompted."""
import glob
import json
import os
import re

import pytest
import torch

import train
from engine.data import DataManager
from engine.feature_cache import EvalFeatureCache, cache_key, cached_outputs, evaluation_feature_cache
from tools.tiny_clip import save_tiny_clip
from trainers.ivlp import IVLP
from trainers.maple import MaPLe
from trainers.promptkd import PromptKD
from trainers.promptsrc import PromptSRC
from trainers.textrefiner.trainer import HOSTS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["INPUT.SIZE", "(32, 32)", "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
         "DATALOADER.TEST.BATCH_SIZE", "8", "DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "1",
         "DATASET.SUBSAMPLE_CLASSES", "base"]
# trainer name -> (config, opts): every trainer with a frozen, unprompted image tower
TRAINERS = {
    "ZeroshotCLIP": ("ZeroshotCLIP/vit_b16", []),
    "CoOp": ("CoOp/vit_b16_ep50_ctxv1", []),
    "CoCoOp": ("CoCoOp/vit_b16_c4_ep10_batch1_ctxv1", ["TRAINER.COCOOP.PREC", "fp32"]),
    "KgCoOp": ("KgCoOp/vit_b16_ep100_ctxv1", []),
    "TaskRes": ("TaskRes/adam_lr2e-4_B256_ep200_ViT16", []),
    "TextRefiner": ("TextRefiner/vit_b16_ep10_ctxv1", []),
    "TextRefiner:CoCoOp": ("TextRefiner/cocoop_vit_b16_c4_ep10_batch1_ctxv1", []),
    "TextRefiner:KgCoOp": ("TextRefiner/kgcoop_vit_b16_ep100_ctxv1", []),
}


def _argv(root, out, clip_path, name, *extra):
    config, opts = TRAINERS[name]
    trainer = name.split(":")[0]
    return ["--root", root, "--seed", "1", "--output-dir", out, "--trainer", trainer, *extra,
            "--dataset-config-file", os.path.join(REPO, "configs/datasets/oxford_pets.yaml"),
            "--config-file", os.path.join(REPO, f"configs/trainers/{config}.yaml"), *SMALL,
            "MODEL.BACKBONE.PATH", clip_path, *opts]


def _main(argv, *opts):
    return train.main(train.build_parser().parse_args([*argv, *opts]))


def _outputs(batches):
    logits, labels = zip(*batches)
    return torch.cat(logits), torch.cat(labels)


def _results(out):
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


def _log(out):
    with open(os.path.join(out, "log.txt")) as f:
        return f.read()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_cached_logits_are_bit_identical(tmp_path, pets_root, tiny_vit_path, name, capsys):
    trainer = _main(_argv(pets_root, str(tmp_path / "run"), tiny_vit_path, name, "--no-train"),
                    "TEST.FEATURE_CACHE_DIR", str(tmp_path / "cache"))
    loader = trainer.test_loader
    trainer.set_model_mode("eval")
    with torch.no_grad():
        trainer.before_evaluation("test")
        plain = _outputs(trainer.batch_outputs(loader))
        cache = evaluation_feature_cache(trainer, "test", loader)
        computed = _outputs(cached_outputs(trainer, cache, loader))  # computed, then written
        read = _outputs(cached_outputs(trainer, cache, loader))  # read back
    assert f"Loaded {len(loader.dataset)} cached image features from {cache.path}" in capsys.readouterr().out
    for outputs in (computed, read):
        assert torch.equal(outputs[0], plain[0]) and torch.equal(outputs[1], plain[1])


def test_prompted_image_towers_are_not_cached():
    for cls in (IVLP, MaPLe, PromptSRC, PromptKD, *(HOSTS[h] for h in ("IVLP", "MaPLe", "PromptSRC", "PromptKD"))):
        assert cls.frozen_image_encoder is False, cls.__name__
    assert all(HOSTS[h].frozen_image_encoder for h in ("CoOp", "CoCoOp", "KgCoOp"))


@pytest.mark.slow
def test_eval_only_same_results_with_cache_corrupt_file_and_opt_out(tmp_path, pets_root, tiny_vit_path):
    cache_dir = str(tmp_path / "cache")
    argv = lambda out: _argv(pets_root, str(tmp_path / out), tiny_vit_path, "ZeroshotCLIP", "--eval-only")
    _main(argv("off"), "TEST.FEATURE_CACHE", "False", "TEST.FEATURE_CACHE_DIR", cache_dir)
    assert not os.path.exists(cache_dir) and "cached image features" not in _log(tmp_path / "off")
    _main(argv("first"), "TEST.FEATURE_CACHE_DIR", cache_dir)
    files = glob.glob(os.path.join(cache_dir, "OxfordPets-test-*.safetensors"))
    assert len(files) == 1 and f"image features to {files[0]}" in _log(tmp_path / "first")
    _main(argv("second"), "TEST.FEATURE_CACHE_DIR", cache_dir)
    assert f"cached image features from {files[0]}" in _log(tmp_path / "second")
    with open(files[0], "r+b") as f:  # a truncated copy
        f.truncate(40)
    _main(argv("repaired"), "TEST.FEATURE_CACHE_DIR", cache_dir)
    log = _log(tmp_path / "repaired")
    assert f'The cached features "{files[0]}" cannot be read (' in log and "computing them again" in log
    assert f"image features to {files[0]}" in log
    _main(argv("again"), "TEST.FEATURE_CACHE_DIR", cache_dir)
    assert f"cached image features from {files[0]}" in _log(tmp_path / "again")
    want = _results(tmp_path / "off")
    for out in ("first", "second", "repaired", "again"):
        got = _results(tmp_path / out)
        assert {k: got[k] for k in ("accuracy", "error", "macro_f1")} == {k: want[k] for k in ("accuracy", "error", "macro_f1")}


@pytest.mark.slow
def test_training_run_same_results_with_cache(tmp_path, pets_root, tiny_vit_path):
    cache_dir = str(tmp_path / "cache")
    for out, on in (("off", "False"), ("on", "True"), ("warm", "True")):
        _main(_argv(pets_root, str(tmp_path / out), tiny_vit_path, "TextRefiner"),
              "TEST.FEATURE_CACHE", on, "TEST.FEATURE_CACHE_DIR", cache_dir)
    assert "cached image features from" in _log(tmp_path / "warm")
    finals = [re.findall(r"\* accuracy: ([\d.]+)%", _log(tmp_path / out)) for out in ("off", "on", "warm")]
    assert finals[0] == finals[1] == finals[2]
    assert _results(tmp_path / "off")["accuracy"] == _results(tmp_path / "on")["accuracy"] == _results(tmp_path / "warm")["accuracy"]


def test_reading_cached_features_leaves_the_rng_where_iterating_does(tmp_path, pets_root, tiny_vit_path):
    trainer = _main(_argv(pets_root, str(tmp_path / "run"), tiny_vit_path, "CoOp", "--no-train"),
                    "TEST.FEATURE_CACHE_DIR", str(tmp_path / "cache"))
    loader = trainer.test_loader
    trainer.set_model_mode("eval")
    states = []
    with torch.no_grad():
        trainer.before_evaluation("test")
        cache = evaluation_feature_cache(trainer, "test", loader)
        for outputs in (lambda: trainer.batch_outputs(loader), lambda: cached_outputs(trainer, cache, loader),
                        lambda: cached_outputs(trainer, cache, loader)):  # iterated, computed, read back
            torch.manual_seed(0)
            list(outputs())
            states.append(torch.get_rng_state())
    assert os.path.isfile(cache.path)
    assert torch.equal(states[0], states[1]) and torch.equal(states[0], states[2])


@pytest.mark.slow
def test_validation_each_epoch_same_checkpoints_with_cache(tmp_path, pets_root, tiny_vit_path):
    # TextRefiner on KgCoOp evaluates the val split after every epoch (TEST.FINAL_MODEL best_val):
    # the epochs after a cached validation see the same data order and augmentation
    cache_dir = str(tmp_path / "cache")
    for out, on in (("off", "False"), ("on", "True"), ("warm", "True")):
        _main(_argv(pets_root, str(tmp_path / out), tiny_vit_path, "TextRefiner:KgCoOp"),
              "OPTIM.MAX_EPOCH", "2", "TEST.FEATURE_CACHE", on, "TEST.FEATURE_CACHE_DIR", cache_dir)
    assert "cached image features from" in _log(tmp_path / "warm")
    for name in ("prompt_learner", "Memory"):
        files = [torch.load(tmp_path / out / name / "model.pth.tar-2", weights_only=False)
                 for out in ("off", "on", "warm")]
        for f in files[1:]:
            assert f["epoch"] == files[0]["epoch"]
            assert all(torch.equal(f["state_dict"][k], v) for k, v in files[0]["state_dict"].items())


def _key_inputs(tmp_path, pets_root, tiny_vit_path):
    cfg = train.setup_cfg(train.build_parser().parse_args(_argv(pets_root, str(tmp_path / "k"), tiny_vit_path, "CoOp")))
    items = DataManager(cfg).dataset.test
    return cfg, items


def test_every_key_entry_invalidates(tmp_path, pets_root, tiny_vit_path, monkeypatch, capsys):
    cfg, items = _key_inputs(tmp_path, pets_root, tiny_vit_path)
    extra = dict(dataset="OxfordPets", split="test", batch_size=8, device="cpu", compile=False, tower_buffers="0")
    base = cache_key(cfg, tiny_vit_path, items, torch.float32, **extra)
    folder = str(tmp_path / "cache")
    EvalFeatureCache(folder, "OxfordPets-test", base).write(torch.zeros(len(items), 4))
    other_clip = save_tiny_clip(str(tmp_path / "other.pt"), kind="vit", fmt="state_dict", seed=5)
    other_cfg = cfg.clone()
    other_cfg.defrost()
    other_cfg.INPUT.INTERPOLATION = "bilinear" if cfg.INPUT.INTERPOLATION != "bilinear" else "bicubic"
    touched = items[0].impath
    variants = {
        "weights": lambda: cache_key(cfg, str(other_clip), items, torch.float32, **extra),
        "images": lambda: cache_key(cfg, tiny_vit_path, items[1:], torch.float32, **extra),
        "transform": lambda: cache_key(other_cfg, tiny_vit_path, items, torch.float32, **extra),
        "precision": lambda: cache_key(cfg, tiny_vit_path, items, torch.float16, **extra),
        "split": lambda: cache_key(cfg, tiny_vit_path, items, torch.float32, **{**extra, "split": "val"}),
        "batch_size": lambda: cache_key(cfg, tiny_vit_path, items, torch.float32, **{**extra, "batch_size": 4}),
        "device": lambda: cache_key(cfg, tiny_vit_path, items, torch.float32, **{**extra, "device": "cuda X"}),
        "tower_buffers": lambda: cache_key(cfg, tiny_vit_path, items, torch.float32, **{**extra, "tower_buffers": "1"}),
    }
    for entry, make in variants.items():
        key = make()
        assert key[entry] != base[entry] and EvalFeatureCache(folder, "OxfordPets-test", key).read() is None, entry
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    assert cache_key(cfg, tiny_vit_path, items, torch.float32, **extra)["torch"] == "0.0.0"
    monkeypatch.undo()
    stat = os.stat(touched)
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # an edited image
    assert cache_key(cfg, tiny_vit_path, items, torch.float32, **extra)["image_files"] != base["image_files"]
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert EvalFeatureCache(folder, "OxfordPets-test", base).read().shape == (len(items), 4)
    # a file whose stored key differs (same name) is named with the entries that differ
    renamed = EvalFeatureCache(folder, "OxfordPets-test", {**base, "precision": "torch.float16"})
    os.replace(EvalFeatureCache(folder, "OxfordPets-test", base).path, renamed.path)
    capsys.readouterr()
    assert renamed.read() is None
    assert f'The cached features "{renamed.path}" were made from other inputs (precision): computing them again' in capsys.readouterr().out


def test_hub_weights_are_not_cached(tmp_path, pets_root, tiny_vit_path):
    cfg, items = _key_inputs(tmp_path, pets_root, tiny_vit_path)
    assert cache_key(cfg, "openclip:ViT-B-16/laion2b_s34b_b88k", items, torch.float32) is None
