"""The user path through the shell scripts: base2new train -> test -> parse_test_res, and xd train -> test."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from tests import tiny_run
from tests.test_resume_exact import _assert_same_tensors
from tests.tiny_run import REPO, run as _run
from tools.synthetic_data import make_dataset

OPTS = tiny_run.tiny_opts(shots=None)


def _env(tmp_path, data):
    return tiny_run.script_env(data, tmp_path / "output", 4)


# sitecustomize for the killed run: SIGKILL at the STOP_AT_CALL-th training step of the process
# (deterministically mid-epoch; the scripts start python themselves)
STOP_HOOK = """
import os, signal
if os.environ.get("STOP_AT_CALL"):
    from trainers.prompt_trainer import PromptTrainer
    original, calls = PromptTrainer.forward_backward, [0]
    def forward_backward(self, batch):
        calls[0] += 1
        if calls[0] == int(os.environ["STOP_AT_CALL"]):
            signal.raise_signal(signal.SIGKILL)
        return original(self, batch)
    PromptTrainer.forward_backward = forward_backward
"""
FOLDER = "oxford_pets/TextRefiner/vit_b16_ep10_ctxv1_4shots/nctx4_cscFalse_ctpend/seed1"


def _results(run_dir):
    with open(os.path.join(run_dir, "results.json")) as f:
        return json.load(f)


@pytest.mark.slow
def test_base2new_scripts_and_table(tmp_path, tiny_vit_path):
    data = tmp_path / "data"
    info = make_dataset("OxfordPets", str(data), num_classes=6, images_per_class=10, seed=0)
    new_test = sum(info["counts"]["test"][3:])  # labels 3..5 are the new half
    env = _env(tmp_path, data)
    opts = OPTS + ["MODEL.BACKBONE.PATH", tiny_vit_path, "TRAIN.CHECKPOINT_FREQ", "1"]
    train = ["bash", "scripts/textrefiner/base2new_train.sh", "oxford_pets", "1", *opts]
    test = ["bash", "scripts/textrefiner/base2new_test.sh", "oxford_pets", "1", *opts]
    out = tmp_path / "output/base2new"

    _run(train, env)
    assert "model-best.pth.tar" in _run(test, env)
    train_dir, test_dir = out / "train_base" / FOLDER, out / "test_new" / FOLDER
    assert {"log.txt", "prompt_learner", "Memory", "tensorboard", "run.json"} <= set(os.listdir(train_dir))
    log = (test_dir / "log.txt").read_text()
    assert f'from "{train_dir}/prompt_learner/model-best.pth.tar"' in log.replace(str(REPO) + "/", "")
    assert f"* total: {new_test}" in log  # the new classes' test images
    assert "Oops! The results exist" in _run(train, env)  # a finished run is skipped

    table = _run([sys.executable, "parse_test_res.py", "--base2new", str(out)], env)
    row = next(line.split() for line in table.splitlines() if line.startswith("oxford_pets"))
    base, new = (round(_results(d)["accuracy"], 1) for d in (train_dir, test_dir))
    assert "TextRefiner" in table and row[1:3] == [f"{base:.2f}", f"{new:.2f}"]

    # the same command into another OUTPUT, killed mid-epoch 2 (3 steps an epoch): its test step refuses
    # it, the same command again resumes it and ends as the run never stopped, checkpoint for checkpoint
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(STOP_HOOK)
    other = dict(env, OUTPUT=str(tmp_path / "other"))
    killed = subprocess.run(train, cwd=REPO, capture_output=True, text=True,
                            env=dict(other, STOP_AT_CALL="5", PYTHONPATH=f"{hook}:{REPO}"))
    assert killed.returncode == 128 + signal.SIGKILL, killed.stderr[-2000:]
    refused = subprocess.run(test, cwd=REPO, env=other, capture_output=True, text=True)
    assert refused.returncode == 1 and "has not finished (its newest checkpoint is " in refused.stderr
    assert "Previous epoch: 1" in _run(train, other)
    resumed = tmp_path / "other/base2new/train_base" / FOLDER
    for model in ("prompt_learner", "Memory"):
        for name in ("model.pth.tar-1", "model.pth.tar-2", "model-best.pth.tar"):
            a, b = (torch.load(d / model / name, weights_only=True) for d in (train_dir, resumed))
            for key in ("state_dict", "optimizer", "scheduler", "epoch", "rng_state", "best_result", "run_record"):
                _assert_same_tensors(a[key], b[key], f"{model}/{name}:{key}")
    for key in ("accuracy", "val_per_epoch", "best_epoch", "config_digest"):
        assert _results(resumed)[key] == _results(train_dir)[key], key

    # a training run continued since its test: the test step evaluates again
    last = dict(other, LOADEP="last")
    assert "--load-epoch 2" in _run(test, last)
    _run([*train, "OPTIM.MAX_EPOCH", "3", "TRAIN.ALLOW_CHANGED", "OPTIM.MAX_EPOCH"], other)
    again = _run(test, last)
    assert "--load-epoch 3" in again and "is not the one" in again and "evaluating again" in again


@pytest.mark.slow
def test_xd_scripts(tmp_path, tiny_vit_path):
    data = tmp_path / "data"
    make_dataset("ImageNet", str(data), num_classes=4, images_per_class=6, seed=0)
    make_dataset("ImageNetV2", str(data), num_classes=4, images_per_class=4, seed=1)
    env = _env(tmp_path, data)
    opts = OPTS + ["MODEL.BACKBONE.PATH", tiny_vit_path]
    _run(["bash", "scripts/textrefiner/xd_train.sh", "1", *opts], env)
    model_dir = tmp_path / "output/xd/imagenet/TextRefiner/vit_b16_ep10_ctxv1_4shots/seed1"
    assert (model_dir / "Memory" / "model.pth.tar-2").exists()
    out = _run(["bash", "scripts/textrefiner/xd_test.sh", "imagenetv2", "1", *opts], dict(env, LOADEP="2"))
    assert "--load-epoch 2" in out
    log = (tmp_path / "output/evaluation/xd/TextRefiner/vit_b16_ep10_ctxv1_4shots/imagenetv2/seed1/log.txt")
    assert "* accuracy: " in log.read_text()


def test_script_usage_and_missing_model(tmp_path):
    res = subprocess.run(["bash", "scripts/textrefiner/base2new_test.sh"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 2 and "usage: bash scripts/textrefiner/base2new_test.sh DATASET SEED" in res.stderr
    env = dict(os.environ, OUTPUT=str(tmp_path / "out"))
    res = subprocess.run(["bash", "scripts/textrefiner/base2new_test.sh", "dtd", "1"], cwd=REPO, env=env,
                         capture_output=True, text=True)
    assert res.returncode == 1 and "run scripts/textrefiner/base2new_train.sh dtd 1 first" in res.stderr
