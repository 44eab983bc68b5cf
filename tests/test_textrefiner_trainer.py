"""TextRefiner trainer: training through train.py, checkpoints (ours and the reference's layout), resume."""
import os
import re

import torch

import train
from engine import TrainerX
from tests import tiny_run


def _args(root, clip_path, out, *opts, flags=(), epochs=2):
    return tiny_run.parse(root, out, clip_path, "TextRefiner", "TextRefiner/vit_b16_ep10_ctxv1",
                          "DATASET.SUBSAMPLE_CLASSES", "base", *opts, flags=flags, epochs=epochs)


def _accuracy(path):
    with open(path) as f:
        return tiny_run.accuracy(f.read())


def _log(out):
    with open(os.path.join(out, "log.txt")) as f:
        return f.read()


def test_train_writes_reference_layout_and_eval_reproduces(tmp_path, pets_root, tiny_vit_path):
    out = str(tmp_path / "tr")
    trainer = train.main(_args(pets_root, tiny_vit_path, out))
    log = _log(out)
    assert re.search(r"loss [\d.]+ \([\d.]+\) global [\d.]+ \([\d.]+\) local [\d.]+ \([\d.]+\) "
                     r"feature [\d.]+ \([\d.]+\) acc", log)
    assert "Deploy the model with the best val performance" in log
    for name in ("prompt_learner", "Memory"):
        assert {"model-best.pth.tar", "model.pth.tar-2", "checkpoint"} <= set(os.listdir(os.path.join(out, name)))
    pl = torch.load(os.path.join(out, "prompt_learner", "model.pth.tar-2"), weights_only=True)
    keys = set(pl["state_dict"])
    assert "prompt_learner.ctx" in keys and "mid_image_trans.conv1.1.running_mean" in keys
    assert not any(k.startswith(("image_encoder.", "text_encoder.")) for k in keys)  # no frozen CLIP
    mem = torch.load(os.path.join(out, "Memory", "model.pth.tar-2"), weights_only=True)
    assert set(mem["state_dict"]) == {"extractor.weight"} and mem["memory_item"].shape == (25, 32)
    best = torch.load(os.path.join(out, "Memory", "model-best.pth.tar"), weights_only=True)
    assert torch.equal(best["memory_item"], trainer.memory.get_cache().cpu())  # deployed: the best-val cache

    ev = str(tmp_path / "ev")
    train.main(_args(pets_root, tiny_vit_path, ev, flags=["--eval-only", "--model-dir", out]))
    assert _accuracy(os.path.join(ev, "log.txt")) == _accuracy(os.path.join(out, "log.txt"))


def test_reference_checkpoint_folder_evaluates(tmp_path, pets_root, tiny_vit_path):
    """A folder as the reference writes it: whole CustomCLIP state, fp16 memory_item with grad."""
    out = str(tmp_path / "tr")
    trainer = train.main(_args(pets_root, tiny_vit_path, out, epochs=1))
    acc_ours = _accuracy(os.path.join(out, "log.txt"))

    ref = tmp_path / "reference"
    full = dict(trainer.model.state_dict())
    full["prompt_learner.tokenized_prompts"] = trainer.model.tokenized_prompts
    cache = trainer.memory.get_cache().half().requires_grad_()
    best = torch.load(os.path.join(out, "prompt_learner", "model-best.pth.tar"), weights_only=True)
    full.update(best["state_dict"])
    best_mem = torch.load(os.path.join(out, "Memory", "model-best.pth.tar"), weights_only=True)
    (ref / "prompt_learner").mkdir(parents=True)
    (ref / "Memory").mkdir()
    torch.save({"state_dict": full, "epoch": 1, "optimizer": None, "scheduler": None, "val_result": 50.0},
               ref / "prompt_learner" / "model-best.pth.tar")
    torch.save({"state_dict": {"extractor.weight": best_mem["state_dict"]["extractor.weight"].half()},
                "memory_item": best_mem["memory_item"].half().requires_grad_(), "epoch": 1, "optimizer": None,
                "scheduler": None, "val_result": 50.0}, ref / "Memory" / "model-best.pth.tar")
    del cache
    ev = str(tmp_path / "ev")
    trainer2 = train.main(_args(pets_root, tiny_vit_path, ev, flags=["--eval-only", "--model-dir", str(ref)]))
    assert torch.allclose(trainer2.model.prompt_learner.ctx, trainer.model.prompt_learner.ctx)
    assert abs(_accuracy(os.path.join(ev, "log.txt")) - acc_ours) <= 100.0 / 30  # fp16 rounding of the cache


def test_resume_restores_the_cache(tmp_path, pets_root, tiny_vit_path, monkeypatch):
    out = str(tmp_path / "res")
    original = TrainerX.after_epoch
    saved = {}

    def stop_after_first(self):
        original(self)
        saved["cache"] = self.memory.get_cache().clone()
        raise KeyboardInterrupt

    monkeypatch.setattr(TrainerX, "after_epoch", stop_after_first)
    try:
        train.main(_args(pets_root, tiny_vit_path, out, "TRAIN.CHECKPOINT_FREQ", "1"))
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(TrainerX, "after_epoch", original)
    captured = {}
    original_run_epoch = TrainerX.run_epoch

    def capture(self):
        captured.setdefault("cache", self.memory.get_cache().clone())
        original_run_epoch(self)

    monkeypatch.setattr(TrainerX, "run_epoch", capture)
    train.main(_args(pets_root, tiny_vit_path, out, "TRAIN.CHECKPOINT_FREQ", "1"))
    assert torch.equal(captured["cache"], saved["cache"])


def test_eval_refined_text_once_equals_per_batch(tmp_path, pets_root, tiny_vit_path):
    out = str(tmp_path / "once")
    trainer = train.main(_args(pets_root, tiny_vit_path, out, epochs=1))
    trainer.set_model_mode("eval")
    image = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        trainer.before_evaluation("test")
        cached = trainer.model_inference(image)
        trainer.after_evaluation("test")
        # the reference recomputes text and refinement for every batch, through the local path
        global_feat, _, _ = trainer.model.encode_image_local(image)
        v = global_feat / global_feat.norm(dim=-1, keepdim=True)
        t = trainer.model.text_features()
        per_batch = trainer.model.logit_scale.exp() * v @ trainer.memory.refine(t).t()
    assert torch.allclose(cached, per_batch, rtol=1e-5, atol=1e-5)
