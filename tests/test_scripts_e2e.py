"""The user path through the shell scripts: base2new train -> test -> parse_test_res, and xd train -> test."""
import os
import re
import subprocess
import sys

from tools.synthetic_data import make_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTS = ["INPUT.SIZE", "(32, 32)", "OPTIM.MAX_EPOCH", "2", "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TRAIN_X.BATCH_SIZE", "4"]


def _run(cmd, env):
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


def _env(tmp_path, data):
    env = dict(os.environ, DATA=str(data), OUTPUT=str(tmp_path / "output"), SHOTS="4")
    env["PYTHONPATH"] = REPO
    return env


def test_base2new_scripts_and_table(tmp_path, tiny_vit_path):
    data = tmp_path / "data"
    info = make_dataset("OxfordPets", str(data), num_classes=6, images_per_class=10, seed=0)
    new_test = sum(info["counts"]["test"][3:])  # labels 3..5 are the new half
    env = _env(tmp_path, data)
    opts = OPTS + ["MODEL.BACKBONE.PATH", tiny_vit_path]
    for seed in ("1", "2"):
        _run(["bash", "scripts/textrefiner/base2new_train.sh", "oxford_pets", seed, *opts], env)
        out = _run(["bash", "scripts/textrefiner/base2new_test.sh", "oxford_pets", seed, *opts], env)
        assert "model-best.pth.tar" in out
    common = "oxford_pets/TextRefiner/vit_b16_ep10_ctxv1_4shots/nctx4_cscFalse_ctpend/seed1"
    train_dir = tmp_path / "output/base2new/train_base" / common
    test_dir = tmp_path / "output/base2new/test_new" / common
    assert {"log.txt", "prompt_learner", "Memory", "tensorboard"} <= set(os.listdir(train_dir))
    log = (test_dir / "log.txt").read_text()
    assert f'from "{train_dir}/prompt_learner/model-best.pth.tar"' in log.replace(str(REPO) + "/", "")
    assert f"* total: {new_test}" in log  # the new classes' test images

    # a rerun never overwrites
    again = _run(["bash", "scripts/textrefiner/base2new_train.sh", "oxford_pets", "1", *opts], env)
    assert "Oops! The results exist" in again

    table = _run([sys.executable, "parse_test_res.py", "--base2new", str(tmp_path / "output/base2new")], env)
    base = [float(x) for x in re.findall(r"\* accuracy: ([\d.]+)%",
                                         (train_dir / "log.txt").read_text())[-1:]]
    assert "oxford_pets" in table and "TextRefiner" in table
    assert base and f"{base[0]:.1f}"[:2] in table


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
