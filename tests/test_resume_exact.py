"""Exact resume: a run killed (SIGKILL) mid-epoch, then Ctrl-C'd, then rerun ends bit-identical to one uninterrupted run."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from tests import tiny_run
from tests.tiny_run import REPO

# Runs train.py as `python train.py ...` would, but stops just before the forward_backward call
# number `at` of this process, so the stop lands mid-epoch, deterministically: SIGKILL is raised
# as a signal; SIGINT as the KeyboardInterrupt its default handler raises in the main thread
# (a signal's Python handler runs at the next bytecode boundary, which can fall inside a finalizer
# run by the garbage collector, where the KeyboardInterrupt is swallowed: seen under heavy load).
RUNNER = """
import os, runpy, signal, sys
sys.path.insert(0, os.getcwd())
at, sig = int(os.environ["STOP_AT_CALL"]), getattr(signal, os.environ["STOP_SIGNAL"])
if at > 0:
    from trainers.coop import CoOp
    original, calls = CoOp.forward_backward, [0]
    def forward_backward(self, batch):
        calls[0] += 1
        if calls[0] == at:
            if sig == signal.SIGINT:
                raise KeyboardInterrupt
            signal.raise_signal(sig)
        return original(self, batch)
    CoOp.forward_backward = forward_backward
sys.argv = ["train.py"] + sys.argv[1:]
runpy.run_path("train.py", run_name="__main__")
"""


def _run(out, root, clip_path, stop_at=0, stop_signal="SIGKILL", extra=()):
    argv = tiny_run.argv(root, out, clip_path, "CoOp", "CoOp/vit_b16_ep50_ctxv1", "OPTIM.LR", "0.05",
                         "TRAIN.CHECKPOINT_FREQ", "1", "TEST.FINAL_MODEL", "best_val", *extra, workers=1)
    env = {**os.environ, "STOP_AT_CALL": str(stop_at), "STOP_SIGNAL": stop_signal, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", RUNNER, *argv], cwd=REPO, env=env, capture_output=True, text=True)


def _checkpoint(out, name):
    return torch.load(os.path.join(out, "prompt_learner", name), weights_only=True)


def _assert_same_tensors(a, b, where):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def whole(tmp_path_factory, pets_root, tiny_vit_path):
    """The uninterrupted run: 24 training images in batches of 4, 6 batches an epoch, 2 epochs."""
    out = str(tmp_path_factory.mktemp("resume") / "whole")
    res = _run(out, pets_root, tiny_vit_path)
    assert res.returncode == 0, res.stderr[-2000:]
    return out


@pytest.mark.slow
def test_killed_and_interrupted_run_ends_identical_to_uninterrupted(tmp_path, pets_root, tiny_vit_path, whole):

    broken = str(tmp_path / "broken")
    res = _run(broken, pets_root, tiny_vit_path, stop_at=9)  # SIGKILL at epoch 2, batch 3
    assert res.returncode == -signal.SIGKILL
    assert sorted(os.listdir(os.path.join(broken, "prompt_learner"))) == ["checkpoint", "model-best.pth.tar", "model.pth.tar-1"]
    assert not os.path.exists(os.path.join(broken, "results.json"))

    res = _run(broken, pets_root, tiny_vit_path, stop_at=2, stop_signal="SIGINT")  # Ctrl-C at epoch 2, batch 2
    assert res.returncode == 130 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "Previous epoch: 1" in res.stdout
    assert "Interrupted at epoch 2 batch 2: stopped. Rerun the same command to resume" in res.stdout

    res = _run(broken, pets_root, tiny_vit_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Previous epoch: 1" in res.stdout and "epoch [1/2]" not in res.stdout

    for name in ("model.pth.tar-1", "model.pth.tar-2", "model-best.pth.tar"):
        a, b = _checkpoint(whole, name), _checkpoint(broken, name)
        for key in ("state_dict", "optimizer", "scheduler", "epoch", "val_result", "rng_state", "best_result", "run_record", "skipped_updates"):
            _assert_same_tensors(a[key], b[key], f"{name}:{key}")

    with open(os.path.join(whole, "results.json")) as f:
        first = json.load(f)
    with open(os.path.join(broken, "results.json")) as f:
        second = json.load(f)
    for key in ("accuracy", "error", "macro_f1", "val_per_epoch", "best_epoch", "config_digest", "split", "skipped_updates"):
        assert first[key] == second[key], key
    assert [v["epoch"] for v in first["val_per_epoch"]] == [1, 2] and first["split"] == "test"
    assert 0 <= first["accuracy"] <= 100 and abs(first["accuracy"] + first["error"] - 100) < 1e-9


@pytest.mark.slow
def test_killed_after_a_mid_epoch_checkpoint_resumes_inside_the_epoch_exactly(tmp_path, pets_root, tiny_vit_path, whole):
    # TRAIN.CHECKPOINT_ITER_FREQ 2: checkpoints after batches 2 and 4 of each 6-batch epoch;
    # random crops and flips in a worker process, so the replayed data must match draw for draw
    # (writing checkpoints draws nothing: the uninterrupted run without them is the reference)
    every2 = ("TRAIN.CHECKPOINT_ITER_FREQ", "2")
    broken = str(tmp_path / "broken")
    res = _run(broken, pets_root, tiny_vit_path, stop_at=11, extra=every2)  # SIGKILL at epoch 2, batch 5
    assert res.returncode == -signal.SIGKILL
    assert "model.pth.tar-1-iter4" in os.listdir(os.path.join(broken, "prompt_learner"))
    res = _run(broken, pets_root, tiny_vit_path, extra=every2)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Resuming epoch 2 after batch 4: reading its first 4 batches again (data only)" in res.stdout
    assert "epoch [2/2] batch [4/6]" not in res.stdout and "epoch [2/2] batch [5/6]" in res.stdout
    assert sorted(os.listdir(os.path.join(broken, "prompt_learner"))) == [
        "checkpoint", "model-best.pth.tar", "model.pth.tar-1", "model.pth.tar-2"]  # mid-epoch files removed

    for name in ("model.pth.tar-2", "model-best.pth.tar"):
        a, b = _checkpoint(whole, name), _checkpoint(broken, name)
        for key in ("state_dict", "optimizer", "scheduler", "epoch", "rng_state"):
            _assert_same_tensors(a[key], b[key], f"{name}:{key}")
