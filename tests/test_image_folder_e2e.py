"""Your own image folder through the user paths: train.py (CoOp, TextRefiner, zero-shot CLIP with a
prompt template), the base-to-new scripts, tta.py --image_folder and the linear probe."""
import json
import os
import re

import pytest
from threadpoolctl import threadpool_limits

from lpclip import linear_probe
from tests import tiny_run
from tests.image_folder_data import make_image_folder
from tta.classification.runner import main as tta_main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs/datasets/imagefolder.yaml")
CLASSES = ("sea_lion", "tabby_cat", "tree_frog", "barn_owl")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("own") / "animals", CLASSES, images=8)


def _train(folder, out, clip_path, trainer, config, *opts, flags=()):
    tiny_run.main(folder, out, clip_path, trainer, config, *opts, dataset="imagefolder", flags=flags, shots=None,
                  epochs=None)
    with open(os.path.join(out, "log.txt")) as f:
        return f.read()


@pytest.mark.parametrize("trainer, config", [("CoOp", "CoOp/vit_b16_ep50_ctxv1.yaml"),
                                             ("TextRefiner", "TextRefiner/vit_b16_ep10_ctxv1.yaml")])
def test_train_py_on_an_image_folder(tmp_path, folder, tiny_vit_path, trainer, config):
    out = str(tmp_path / trainer)
    log = _train(folder, out, tiny_vit_path, trainer, config, "DATASET.NUM_SHOTS", "2", "OPTIM.MAX_EPOCH", "1",
                 "DATASET.SUBSAMPLE_CLASSES", "base")
    assert re.search(r"Dataset\s+ImageFolder\n# classes\s+2\n# train_x\s+4\n# val\s+4\n# test\s+4", log)
    assert "epoch [1/1] batch [1/1]" in log and "* total: 4" in log  # 2 base classes x 2 test images
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    assert results["dataset"] == "ImageFolder" and results["trainer"] == trainer and 0 <= results["accuracy"] <= 100
    if trainer == "TextRefiner":
        assert os.path.isdir(os.path.join(out, "Memory"))


def test_zero_shot_uses_the_prompt_template(tmp_path, folder, tiny_vit_path):
    log = _train(folder, str(tmp_path / "zs"), tiny_vit_path, "ZeroshotCLIP", "CoOp/vit_b16.yaml",
                 "DATASET.PROMPT_TEMPLATE", "a photo of a {}, a kind of animal.", flags=["--eval-only"])
    assert "Prompts: ['a photo of a barn owl, a kind of animal.', 'a photo of a sea lion, a kind of animal.'" in log
    assert "* total: 8" in log  # 4 classes x 2 test images


@pytest.mark.slow
def test_base2new_scripts_take_the_image_folder_config(tmp_path, folder, tiny_vit_path):
    env = tiny_run.script_env(folder, tmp_path / "output", 2)
    opts = tiny_run.tiny_opts(tiny_vit_path, shots=None, epochs=1)
    tiny_run.run(["bash", "scripts/coop/base2new_train.sh", "imagefolder", "1", *opts], env)
    tiny_run.run(["bash", "scripts/coop/base2new_test.sh", "imagefolder", "1", *opts], env)
    common = "imagefolder/CoOp/vit_b16_ctxv1_2shots/nctx4_cscFalse_ctpend/seed1"
    new_log = (tmp_path / "output/base2new/test_new" / common / "log.txt").read_text()
    assert "* total: 4" in new_log  # the 2 new classes' test images


def test_tta_adapts_on_an_image_folder(tmp_path, folder, tiny_vit_path):
    out = str(tmp_path / "tta")
    results = tta_main(["--method", "tpt", "--image_folder", folder, "-a", tiny_vit_path, "--batch_size", "8",
                        "--selection_p", "0.25", "--workers", "0", "--output", out])
    assert [r[:2] for r in results] == [("animals", "ImageFolder")]
    with open(os.path.join(out, "results.json")) as f:
        assert list(json.load(f)) == ["animals"]
    with open(os.path.join(out, "log.txt")) as f:
        assert "evaluating: animals (ImageFolder, 4 classes, 1 steps)" in f.read()


def test_linear_probe_on_an_image_folder(tmp_path, folder, tiny_vit_path):
    with threadpool_limits(limits=1):
        summary = linear_probe.main([
            "--root", folder, "--dataset-config-file", CONFIG,
            "--config-file", os.path.join(REPO, "configs/trainers/CoOp/rn50_val.yaml"), "--num-shots", "2",
            "--seeds", "1", "--num-step", "2", "--output-dir", str(tmp_path / "lp"), "MODEL.BACKBONE.PATH",
            tiny_vit_path, "INPUT.SIZE", "(32, 32)", "DATALOADER.NUM_WORKERS", "0"])
    assert summary["dataset"] == "ImageFolder" and 0 <= summary["seeds"][1]["test_accuracy"] <= 100
