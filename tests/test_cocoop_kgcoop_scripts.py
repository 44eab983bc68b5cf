"""CoCoOp, KgCoOp and TextRefiner on them through the shell scripts: base2new train -> test ->
parse_test_res, in the reference's output folders, on a tiny CLIP and a generated data set."""
import os
import re
import sys

import pytest
import torch

from tests import tiny_run
from tools.synthetic_data import make_dataset

CFG_COCOOP, CFG_KGCOOP = "vit_b16_c4_ep10_batch1_ctxv1", "vit_b16_ep100_ctxv1"


def _run(cmd, env, code=0):
    return tiny_run.run(cmd, env, code, stderr=True)


def _accuracy(path):
    return tiny_run.accuracy(path.read_text())


@pytest.mark.slow
def test_base2new_scripts_and_table(tmp_path, tiny_vit_path):
    info = make_dataset("OxfordPets", str(tmp_path / "data"), num_classes=4, images_per_class=5, seed=0)
    new_test = sum(info["counts"]["test"][2:])  # labels 2, 3: the new half
    env = tiny_run.script_env(tmp_path / "data", tmp_path / "output", 2, LOADEP="1")
    opts = tiny_run.tiny_opts(tiny_vit_path, batch=2, shots=None, epochs=1) + ["DATALOADER.TEST.BATCH_SIZE", "8"]
    runs = {  # script folder, extra environment -> the folder under train_base/ and test_new/
        ("cocoop", ""): f"oxford_pets/shots_2/CoCoOp/{CFG_COCOOP}/seed1",
        ("kgcoop", ""): f"oxford_pets/shots_2_8.0/KgCoOp/{CFG_KGCOOP}/seed1",
        ("textrefiner", "CoCoOp"): f"oxford_pets/shots_2/TextRefiner/cocoop_{CFG_COCOOP}/seed1",
    }
    for (method, host), folder in runs.items():
        run_env = dict(env, HOST=host) if host else env
        _run(["bash", f"scripts/{method}/base2new_train.sh", "oxford_pets", "1", *opts], run_env)
        out = _run(["bash", f"scripts/{method}/base2new_test.sh", "oxford_pets", "1", *opts], run_env)
        assert "--load-epoch 1" in out
        train_dir = tmp_path / "output/base2new/train_base" / folder
        log = (tmp_path / "output/base2new/test_new" / folder / "log.txt").read_text()
        assert f'from "{train_dir}/prompt_learner/model.pth.tar-1"' in log
        assert f"* total: {new_test}" in log
        saved = torch.load(train_dir / "prompt_learner" / "model.pth.tar-1", weights_only=True)["state_dict"]
        prefix = "prompt_learner." if host else ""  # TextRefiner saves the model with its alignment
        cocoop = method == "cocoop" or host == "CoCoOp"
        assert f"{prefix}ctx" in saved and (f"{prefix}meta_net.linear2.weight" in saved) == cocoop
        assert (train_dir / "Memory" / "model.pth.tar-1").exists() == bool(host)

    # TextRefiner on KgCoOp: TextRefiner's CoOp layout, deployed at the best val epoch
    _run(["bash", "scripts/textrefiner/base2new_train.sh", "oxford_pets", "1", *opts], dict(env, HOST="KgCoOp"))
    kg_dir = (tmp_path / "output/base2new/train_base/oxford_pets/TextRefiner"
              / f"kgcoop_{CFG_KGCOOP}_2shots/nctx4_cscFalse_ctpend/seed1")
    log = (kg_dir / "log.txt").read_text()
    assert "check hyper-parameter w: 8.0" in log and re.search(r"kg [\d.]+ \([\d.]+\)", log)
    assert {"model-best.pth.tar", "model.pth.tar-1"} <= set(os.listdir(kg_dir / "Memory"))

    table = _run([sys.executable, "parse_test_res.py", "--base2new", str(tmp_path / "output/base2new")], env)
    for folder in runs.values():
        base = _accuracy(tmp_path / "output/base2new/train_base" / folder / "log.txt")
        new = _accuracy(tmp_path / "output/base2new/test_new" / folder / "log.txt")
        method = folder.split("/", 1)[1].rsplit("/", 1)[0]
        block = table[table.index(method):]
        assert f"{base:.2f}" in block and f"{new:.2f}" in block, table


@pytest.mark.slow
def test_cocoop_xd_folders(tmp_path):
    """The cross-dataset scripts' folders are the reference's (checked without training)."""
    env = dict(os.environ, OUTPUT=str(tmp_path / "out"))
    out = _run(["bash", "scripts/cocoop/xd_test.sh", "imagenetv2", "1"], env, code=1)
    assert f"No trained model at {tmp_path}/out/imagenet/CoCoOp/{CFG_COCOOP}_16shots/seed1" in out
    assert "run scripts/cocoop/xd_train.sh 1 first" in out
    # no data: train.py stops at the data set, after naming the run's log in its folder
    out = _run(["bash", "scripts/cocoop/xd_train.sh", "1"], env, code=1)
    assert f"{tmp_path}/out/imagenet/CoCoOp/{CFG_COCOOP}_16shots/seed1/log.txt" in out
    out = _run(["bash", "scripts/cocoop/xd_test.sh", "imagenetv2", "1"], env, code=1)
    assert f"{tmp_path}/out/evaluation/CoCoOp/{CFG_COCOOP}_16shots/imagenetv2/seed1/log.txt" in out
    out = _run(["bash", "scripts/kgcoop/base2new_test.sh"], env, code=2)
    assert "usage: bash scripts/kgcoop/base2new_test.sh DATASET SEED" in out
