"""caption.py train resumes exactly: a run stopped (Ctrl-C, SIGKILL) and rerun ends bit-identical to one uninterrupted run."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from engine.rerun import RunConflict
from tta.captioning.cli import main
from tta.captioning.features import save_features
from tta.captioning.train import MapperTraining
from tests.captioning_fixtures import tiny_opt_folder  # noqa: F401
from tests.test_captioning_train import world_features
from tests.tiny_run import REPO

TINY = ["--prefix_length", "4", "--prefix_length_clip", "4", "--num_layers", "2"]
# 32 captions in batches of 8: 4 updates an epoch, 3 epochs; CapDec noise drawn every batch
SCHEDULE = ["--lr", "1e-3", "--bs", "8", "--epochs", "3", "--warmup_steps", "5", "--cap_model", "CapDec"]

# caption.py train as `python caption.py train ...`, killed by SIGKILL just before update number STOP_AT_CALL
RUNNER = """
import os, signal, sys
sys.path.insert(0, os.getcwd())
from tta.captioning.train import MapperTraining
original, calls = MapperTraining.step, [0]
def step(self, index):
    calls[0] += 1
    if calls[0] == int(os.environ["STOP_AT_CALL"]):
        signal.raise_signal(signal.SIGKILL)
    return original(self, index)
MapperTraining.step = step
from tta.captioning.cli import main
main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("features") / "features.safetensors")
    save_features(path, world_features(32))
    return path


def train(features, opt, out, *extra):
    main(["train", "--data", features, "--out_dir", str(out), "--llm_config_dir", opt, *TINY, *SCHEDULE, *extra])


@pytest.fixture(scope="module")
def whole(features, tiny_opt_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    train(features, tiny_opt_folder, out)
    return out


def stop_at(monkeypatch, call):
    """Ctrl-C just before update number ``call`` of this process."""
    original, calls = MapperTraining.step, [0]

    def step(self, index):
        calls[0] += 1
        if calls[0] == call:
            raise KeyboardInterrupt
        return original(self, index)

    monkeypatch.setattr(MapperTraining, "step", step)


def assert_same_run(a, b):
    mapper_a, mapper_b = load_file(str(a / "ckpt-latest.safetensors")), load_file(str(b / "ckpt-latest.safetensors"))
    assert mapper_a.keys() == mapper_b.keys() and all(torch.equal(mapper_a[k], mapper_b[k]) for k in mapper_a)
    assert json.loads((a / "loss_per_epoch.json").read_text()) == json.loads((b / "loss_per_epoch.json").read_text())
    final_a = torch.load(a / "clip_project" / "model.pth.tar-3", weights_only=True)
    final_b = torch.load(b / "clip_project" / "model.pth.tar-3", weights_only=True)
    for k, v in final_a["optimizer"]["state"].items():
        assert all(torch.equal(v[n], final_b["optimizer"]["state"][k][n]) for n in v)
    assert final_a["scheduler"] == final_b["scheduler"] and torch.equal(final_a["generator"], final_b["generator"])
    assert torch.equal(final_a["rng_state"]["torch"], final_b["rng_state"]["torch"])
    assert json.loads((b / "run.json").read_text())["status"] == "finished"


def test_interrupted_mid_epoch_resumes_bit_identical(features, tiny_opt_folder, whole, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    stop_at(monkeypatch, 7)  # epoch 2, batch 3: its batch-2 checkpoint stands
    with pytest.raises(KeyboardInterrupt):
        train(features, tiny_opt_folder, out, "--checkpoint_iter_freq", "2")
    assert "Interrupted at epoch 2 batch 2: stopped. Rerun the same command" in capsys.readouterr().out
    assert sorted(os.listdir(out / "clip_project")) == ["checkpoint", "model.pth.tar-1-iter2"]
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    monkeypatch.undo()
    train(features, tiny_opt_folder, out, "--checkpoint_iter_freq", "2")
    printed = capsys.readouterr().out
    assert "Resuming the training after 1 epochs and 2 batches done" in printed and ">>> epoch 1/3" not in printed
    assert sorted(os.listdir(out / "clip_project")) == ["checkpoint", "model.pth.tar-3"]
    assert_same_run(whole, out)
    losses = json.loads((out / "loss_per_epoch.json").read_text())["train"]
    assert len(losses) == 3 and losses[2] < losses[0]

    train(features, tiny_opt_folder, out)  # finished: kept
    assert "is finished (ckpt-latest.safetensors); nothing to do" in capsys.readouterr().out
    with pytest.raises(RunConflict, match=r"other inputs \(lr: 0.001 there, 0.002 now\)"):
        train(features, tiny_opt_folder, out, "--lr", "2e-3")


def test_unfinished_run_with_other_settings_and_old_folders_are_refused(features, tiny_opt_folder, tmp_path, monkeypatch):
    out = tmp_path / "run"
    stop_at(monkeypatch, 6)
    with pytest.raises(KeyboardInterrupt):
        train(features, tiny_opt_folder, out)
    assert sorted(os.listdir(out / "clip_project")) == ["checkpoint", "model.pth.tar-1"]
    monkeypatch.undo()
    with pytest.raises(RunConflict, match="noise_variance"):
        train(features, tiny_opt_folder, out, "--noise_variance", "0.02")
    old = tmp_path / "old"
    old.mkdir()
    (old / "ckpt-latest.safetensors").write_bytes(b"")
    with pytest.raises(RunConflict, match="holds a ckpt-latest.safetensors without run.json"):
        train(features, tiny_opt_folder, old)


@pytest.mark.slow
def test_killed_run_resumes_bit_identical(features, tiny_opt_folder, whole, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--data", features, "--out_dir", str(out), "--llm_config_dir", tiny_opt_folder, *TINY, *SCHEDULE]
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1", "STOP_AT_CALL": "10"}  # epoch 3, batch 2
    done = subprocess.run([sys.executable, "-c", RUNNER, *argv], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert sorted(os.listdir(out / "clip_project")) == ["checkpoint", "model.pth.tar-2"]
    env["STOP_AT_CALL"] = "0"
    done = subprocess.run([sys.executable, "caption.py", *argv], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Previous epoch: 2" in done.stdout and ">>> epoch 3/3" in done.stdout and ">>> epoch 2/3" not in done.stdout
    assert_same_run(whole, out)
