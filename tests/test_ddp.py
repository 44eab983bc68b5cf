"""Multi-process training through torchrun (gloo, CPU, 2 processes) against one process.

With deterministic transforms, 2 processes x 4 images give the same losses, prompts, cache and
BatchNorm statistics as 1 process x 8 images; evaluation counts every test image once; a rank
killed mid-run stops the run without a half-written file, and the same command resumes.
"""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from engine.distributed import ShardedSampler
from tests import tiny_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {
    "CoOp": "CoOp/vit_b16_ep50_ctxv1",
    "TextRefiner": "TextRefiner/vit_b16_ep10_ctxv1",
}


def _command(nproc, out, root, clip_path, trainer, *opts):
    launch = [sys.executable] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    return [*launch, "train.py", *tiny_run.argv(
        root, out, clip_path, trainer, CONFIGS[trainer],
        "INPUT.TRANSFORMS", "['center_crop', 'normalize']",  # no random augmentation: ranks == one process
        "OPTIM.LR", "0.05", *opts, batch=8, epochs=None)]


def _env():
    return tiny_run.env()


def _train(nproc, out, *args, **kwargs):
    res = subprocess.run(_command(nproc, out, *args, **kwargs), cwd=REPO, env=_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # a group that outlives destroy_process_group() is torn down at interpreter exit, where gloo
    # can abort a finished run (SIGABRT); nothing may hold it then
    assert "still referenced after destroy_process_group" not in res.stderr, res.stderr[-3000:]
    with open(os.path.join(out, "log.txt")) as f:
        return f.read()


def _losses(log):
    return re.findall(r"batch \[\d+/\d+\] .*? loss ([\d.]+) ", log)


def _load(out, folder, name="model.pth.tar-1"):
    return torch.load(os.path.join(out, folder, name), weights_only=True)


# CoOp: 20 epochs with a checkpoint every epoch and every batch, shared by the parity test (epoch 1)
# and the killed-rank test (the uninterrupted 2-process run it must end equal to)
COOP_RUN = ("OPTIM.MAX_EPOCH", "20", "OPTIM.WARMUP_EPOCH", "0", "TRAIN.CHECKPOINT_FREQ", "1",
            "TRAIN.CHECKPOINT_ITER_FREQ", "1")


@pytest.fixture(scope="module")
def coop_runs(tmp_path_factory, pets_root, tiny_vit_path):
    tmp = tmp_path_factory.mktemp("ddp_coop")
    one, two = str(tmp / "one"), str(tmp / "two")
    args = (pets_root, tiny_vit_path, "CoOp", *COOP_RUN)
    return {"one": one, "two": two, "log_one": _train(1, one, *args), "log_two": _train(2, two, *args)}


def _textrefiner_runs(tmp_path, pets_root, tiny_vit_path):
    # micro-batches: gradients synchronised once per step, the cache written per micro-batch
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    args = (pets_root, tiny_vit_path, "TextRefiner", "OPTIM.MAX_EPOCH", "1", "OPTIM.WARMUP_EPOCH", "0",
            "TRAIN.GRAD_ACCUM", "2")
    return {"one": one, "two": two, "log_one": _train(1, one, *args), "log_two": _train(2, two, *args)}


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["CoOp", "TextRefiner"])
def test_two_processes_equal_one_with_the_same_global_batch(request, tmp_path, pets_root, tiny_vit_path, trainer):
    # 4 shots x 6 classes = 24 images, global batch 8: 3 steps in epoch 1, compared after it
    runs = request.getfixturevalue("coop_runs") if trainer == "CoOp" else _textrefiner_runs(tmp_path, pets_root, tiny_vit_path)
    one, two, log_one, log_two = runs["one"], runs["two"], runs["log_one"], runs["log_two"]
    assert "DistributedDataParallel over 2 processes: 4 images per process and step" in log_two
    assert "epoch [1/" in log_two and "batch [3/3]" in log_two
    assert _losses(log_one)[:3] == _losses(log_two)[:3]  # the ranks' mean loss, 4 decimals

    a, b = _load(one, "prompt_learner"), _load(two, "prompt_learner")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    moved = [b["optimizer"]["state"][i]["momentum_buffer"].abs().max().item() * 0.05 for i in b["optimizer"]["state"]]
    assert max(moved) > 1e-3  # the updates are far larger than the tolerance
    for key in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], atol=1e-5, rtol=0, msg=key)
    assert len(b["rank_rng_states"]) == 2
    if trainer == "TextRefiner":  # cache written from both ranks' tokens; BatchNorm over the global batch
        assert any(k.startswith("mid_image_trans.conv1.1.running_") for k in a["state_dict"])
        ma, mb = _load(one, "Memory"), _load(two, "Memory")
        torch.testing.assert_close(ma["memory_item"], mb["memory_item"], atol=1e-5, rtol=0)
        torch.testing.assert_close(ma["state_dict"]["extractor.weight"], mb["state_dict"]["extractor.weight"], atol=1e-5, rtol=0)

    # evaluation sharded over the ranks and gathered: every test image once (and, after one
    # epoch, the same predictions)
    result = r"\* total: (\d+)\n\* correct: (\d+)"
    totals = [t for t, _ in re.findall(result, log_two)]
    assert totals == [t for t, _ in re.findall(result, log_one)] and totals[-1] == "18"  # 6 classes x 3 test images
    if trainer == "TextRefiner":
        assert re.findall(result, log_two) == re.findall(result, log_one)


@pytest.mark.parametrize("total, ranks", [(17, 2), (18, 4), (5, 3)])
def test_evaluation_shards_cover_every_index_once(total, ranks):
    shards = [list(ShardedSampler(range(total), ranks, r, from_rank0=False, even=False)) for r in range(ranks)]
    assert sorted(i for shard in shards for i in shard) == list(range(total))
    assert [len(ShardedSampler(range(total), ranks, r, from_rank0=False, even=False)) for r in range(ranks)] == [
        len(s) for s in shards]


def test_training_shards_are_the_global_batches():
    # global batch k of one process (8 images) == batch k of every rank (4 images) together
    order = list(range(100, 125))  # 25 images: the odd one is dropped so both ranks take 12
    shards = [list(ShardedSampler(order, 2, r, from_rank0=False)) for r in range(2)]
    assert [len(s) for s in shards] == [12, 12]
    for k in range(3):
        assert sorted(shards[0][4 * k:4 * k + 4] + shards[1][4 * k:4 * k + 4]) == order[8 * k:8 * k + 8]


def test_batch_size_must_divide_among_processes(monkeypatch):
    from engine import distributed
    from engine.config import get_cfg_default
    from engine.data.data_manager import _shard_for_ranks

    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    with pytest.raises(ValueError, match="The training batch size 8 is not divisible by the 3 processes"):
        _shard_for_ranks(get_cfg_default(), range(24), 8, is_train=True)


def test_ranks_that_would_resume_from_different_points_stop_with_an_error(monkeypatch, tmp_path):
    # e.g. a node that does not see rank 0's output folder: it would train from scratch
    from engine import distributed
    from engine.trainer import TrainerBase

    trainer = TrainerBase()
    trainer.register_model("prompt_learner", torch.nn.Linear(1, 1))
    monkeypatch.setattr(distributed, "all_gather_objects", lambda at: [at, (3, 0)])  # rank 1 found epoch 3
    message = r'found different checkpoints in ".*" \(rank 0: no checkpoint, rank 1: 3 epochs done\)\. Every node must see'
    with pytest.raises(RuntimeError, match=message):
        trainer.resume_model_if_exist(str(tmp_path))
    monkeypatch.setattr(distributed, "all_gather_objects", lambda at: [at, at])
    assert trainer.resume_model_if_exist(str(tmp_path)) == 0  # agreeing ranks: from scratch


def _children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def _local_rank(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
    return env.get(b"LOCAL_RANK")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="finds the rank's process through /proc (Linux)")
def test_a_rank_killed_mid_run_stops_all_and_the_same_command_resumes_exactly(tmp_path, pets_root, tiny_vit_path, coop_runs):
    out = str(tmp_path / "run")
    cmd = _command(2, out, pets_root, tiny_vit_path, "CoOp", *COOP_RUN)
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = os.path.join(out, "log.txt")
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for the second epoch (one checkpoint written)
        if os.path.exists(log) and "epoch [2/20]" in open(log).read():
            break
        time.sleep(0.02)
    rank1 = [c for c in _children(proc.pid) if _local_rank(c) == b"1"]
    assert len(rank1) == 1, "rank 1 not found"
    os.kill(rank1[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "SIGKILL" in stderr or "Signal 9" in stderr, stderr[-3000:]
    assert "Finish training" not in open(log).read()
    assert not os.path.exists(os.path.join(out, "results.json"))
    saved = sorted(os.listdir(os.path.join(out, "prompt_learner")))
    assert all(n == "checkpoint" or re.fullmatch(r"model\.pth\.tar-\d+(-iter\d+)?", n) for n in saved), saved  # no partial file
    for name in saved:
        if name != "checkpoint":
            _load(out, "prompt_learner", name)  # each loads

    res = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    newest = max((n for n in os.listdir(out) if n.startswith("log.txt")), key=lambda n: os.path.getmtime(os.path.join(out, n)))
    resumed = open(os.path.join(out, newest)).read()  # the first log is kept, the rerun's has a time suffix
    assert "Found checkpoint at" in resumed and "epoch [20/20]" in resumed
    # every rank's RNG states came back: the same final prompts as the run never stopped
    a, b = _load(out, "prompt_learner", "model.pth.tar-20"), _load(coop_runs["two"], "prompt_learner", "model.pth.tar-20")
    assert a["epoch"] == 20 and torch.equal(a["state_dict"]["ctx"], b["state_dict"]["ctx"])


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_of_one_process_each_equal_one_node_of_two(tmp_path, pets_root, tiny_vit_path, coop_runs):
    # two torchrun agents (--nnodes 2) on this machine: ranks 0 and 1 both have LOCAL_RANK 0, so
    # writing, sharding and seeding must follow the global rank
    out = str(tmp_path / "nodes")
    port = str(_free_port())
    one_epoch = ("OPTIM.MAX_EPOCH", "1", *COOP_RUN[2:])  # epoch 1's LR equals the 20-epoch run's
    base = _command(1, out, pets_root, tiny_vit_path, "CoOp", *one_epoch)[1:]
    nodes = [
        subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                          "--node_rank", str(node), "--master_addr", "127.0.0.1", "--master_port", port, *base],
                         cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for node in (0, 1)
    ]
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (stdout, stderr) in zip(nodes, outputs):
        assert node.returncode == 0, stdout[-2000:] + stderr[-3000:]
    assert "torchrun: 2 processes" in outputs[0][0] and outputs[1][0] == ""  # node 1's rank 0 is rank 1: silent
    assert [n for n in os.listdir(out) if n.startswith("log.txt")] == ["log.txt"]  # written once
    a, b = _load(out, "prompt_learner"), _load(coop_runs["two"], "prompt_learner")
    assert torch.equal(a["state_dict"]["ctx"], b["state_dict"]["ctx"])


def test_scripts_launch_nproc_processes_through_torchrun():
    # scripts/runs.sh's train_py with `python` stubbed to print its arguments (torchrun itself
    # is run by the tests above)
    cmd = ["bash", "-c", 'python() { echo "$@"; }; source scripts/runs.sh && train_py --seed 1']
    res = subprocess.run(cmd, cwd=REPO, env={**_env(), "NPROC": "2"}, capture_output=True, text=True)
    assert res.stdout.strip() == "-m torch.distributed.run --standalone --nproc_per_node 2 train.py --seed 1"
    res = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True)
    assert res.stdout.strip() == "train.py --seed 1"
