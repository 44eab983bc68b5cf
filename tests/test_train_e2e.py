"""End to end through train.py on a generated OxfordPets copy and a tiny CLIP."""
import os
import re

import pytest
import torch

from engine import TrainerX
from tests import tiny_run


def _main(root, clip_path, out, *flags, trainer="CoOp"):
    return tiny_run.main(root, out, clip_path, trainer, "CoOp/vit_b16_ep50_ctxv1", "TRAIN.CHECKPOINT_FREQ", "1",
                         flags=flags)


def _read(path):
    with open(path) as f:
        return f.read()


def test_coop_trains_checkpoints_and_eval_reproduces(tmp_path, pets_root, tiny_vit_path):
    out = str(tmp_path / "coop")
    _main(pets_root, tiny_vit_path, out)
    log = _read(os.path.join(out, "log.txt"))
    assert "epoch [1/2] batch [5/6]" in log and "Finish training" in log and "Deploy the last-epoch model" in log
    assert re.search(r"loss \d+\.\d{4} \(\d+\.\d{4}\) acc [\d.]+ \([\d.]+\) lr 1\.0000e-05 eta", log)
    assert "=> result\n* total: " in log
    ckpt_dir = os.path.join(out, "prompt_learner")
    assert {"model.pth.tar-1", "model.pth.tar-2", "checkpoint"} <= set(os.listdir(ckpt_dir))
    assert _read(os.path.join(ckpt_dir, "checkpoint")) == "model.pth.tar-2\n"
    ckpt = torch.load(os.path.join(ckpt_dir, "model.pth.tar-2"), weights_only=True)
    assert ckpt["epoch"] == 2 and set(ckpt["state_dict"]) == {"ctx", "token_prefix", "token_suffix"}
    assert ckpt["state_dict"]["ctx"].shape[0] == 4  # "a photo of a" gives 4 context tokens

    ev = str(tmp_path / "coop_eval")
    _main(pets_root, tiny_vit_path, ev, "--eval-only", "--model-dir", out, "--load-epoch", "2")
    ev_log = _read(os.path.join(ev, "log.txt"))
    assert 'Loading weights to prompt_learner from "' in ev_log
    assert tiny_run.accuracy(ev_log) == tiny_run.accuracy(log)


def test_zeroshot_clip_evaluates(tmp_path, pets_root, tiny_vit_path):
    out = str(tmp_path / "zs")
    _main(pets_root, tiny_vit_path, out, "--eval-only", trainer="ZeroshotCLIP")
    log = _read(os.path.join(out, "log.txt"))
    assert "Prompts: ['a photo of a " in log and ", a type of pet.'" in log
    assert "Note that load_model() is skipped" in log and "* accuracy: " in log
    assert "compatibility keys left out" in log and "FIXMATCH" not in log  # Dassl's trainer nodes are not printed


def test_interrupted_run_resumes_from_last_checkpoint(tmp_path, pets_root, tiny_vit_path, monkeypatch):
    out = str(tmp_path / "resume")
    original = TrainerX.after_epoch

    def crash_after_first_epoch(self):
        original(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(TrainerX, "after_epoch", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        _main(pets_root, tiny_vit_path, out)
    monkeypatch.setattr(TrainerX, "after_epoch", original)
    assert os.listdir(os.path.join(out, "prompt_learner")) != []

    _main(pets_root, tiny_vit_path, out)
    logs = sorted(f for f in os.listdir(out) if f.startswith("log.txt"))
    assert len(logs) == 2  # the first run's log is kept
    second = _read(os.path.join(out, logs[1]))
    assert "Found checkpoint at" in second and "Previous epoch: 1" in second
    assert "epoch [2/2]" in second and "epoch [1/2]" not in second and "Finish training" in second


@pytest.mark.slow
def test_cli_errors_are_clear(tmp_path, pets_root, tiny_vit_path):
    res = tiny_run.train_py(pets_root, str(tmp_path / "x"), tiny_vit_path, "Coop", flags=["--eval-only"])
    assert res.returncode != 0 and "do you mean [CoOp]" in res.stderr
    res = tiny_run.train_py(pets_root, str(tmp_path / "y"), tiny_vit_path, "CoOp", "CoOp/vit_b16_ep50_ctxv1",
                            "OPTIM.NAMEE", "sgd")
    assert res.returncode != 0 and 'Unknown config key "OPTIM.NAMEE"' in res.stderr


def test_eval_of_another_trainers_checkpoint_fails_clearly(tmp_path, pets_root, tiny_vit_path):
    fake = tmp_path / "other" / "prompt_learner"
    fake.mkdir(parents=True)
    torch.save({"state_dict": {"prompt_learner.ctx": torch.zeros(4, 32)}, "epoch": 1}, fake / "model-best.pth.tar")
    with pytest.raises(KeyError, match="lacks the trainable parameters"):
        _main(pets_root, tiny_vit_path, str(tmp_path / "e"), "--eval-only", "--model-dir", str(tmp_path / "other"))
    with pytest.raises(FileNotFoundError, match="Model not found"):
        _main(pets_root, tiny_vit_path, str(tmp_path / "f"), "--eval-only", "--model-dir", str(tmp_path / "nothing"))
