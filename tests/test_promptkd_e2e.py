"""PromptSRC -> PromptKD -> TextRefiner(PromptKD) through their scripts, on tiny CLIP models:
the teacher checkpoint our PromptSRC run writes is the one PromptKD and TextRefiner load."""
import os
import re
import subprocess
import sys

import pytest
import torch

from tests import tiny_run
from tests.tiny_run import REPO
from tools.synthetic_data import make_dataset

COMMON = tiny_run.tiny_opts(shots=None)
SRC_CFG = "vit_b16_c2_ep20_batch4_4+4ctx"
KD_CFG = "vit_b16_c2_ep20_batch8_4+4ctx"


def _run(cmd, env):
    return tiny_run.run(["bash", *cmd], env)


def _results(log):
    """[(split, total, accuracy)] of every evaluation in a log."""
    found = re.findall(r"Evaluate on the \*(\w+)\* set.*?\* total: (\d+).*?\* accuracy: ([\d.]+)%", log, re.S)
    return [(split, int(total), float(acc)) for split, total, acc in found]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_vit_path, tiny_teacher_path):
    """Data, and a teacher trained by scripts/promptsrc/base2new_train.sh (prompt depth 2)."""
    tmp = tmp_path_factory.mktemp("kd")
    info = make_dataset("OxfordPets", str(tmp / "data"), num_classes=6, images_per_class=10, seed=0)
    dtd = make_dataset("DescribableTextures", str(tmp / "data"), num_classes=4, images_per_class=8, seed=1)
    env = tiny_run.script_env(tmp / "data", tmp / "output", 4)
    opts = COMMON + ["MODEL.BACKBONE.PATH", tiny_teacher_path,
                     "TRAINER.PROMPTSRC.PROMPT_DEPTH_VISION", "2", "TRAINER.PROMPTSRC.PROMPT_DEPTH_TEXT", "2"]
    out = _run(["scripts/promptsrc/base2new_train.sh", "oxford_pets", "1", *opts], env)
    src_dir = tmp / "output/base2new/train_base/oxford_pets/shots_4/PromptSRC" / SRC_CFG / "seed1"
    teacher = src_dir / "VLPromptLearner" / "model.pth.tar-2"
    assert "Using GPA model for final inference..." in out and teacher.exists()
    kd_opts = COMMON + ["MODEL.BACKBONE.PATH", tiny_vit_path, "TRAINER.PROMPTKD.TEACHER_BACKBONE_PATH",
                        tiny_teacher_path, "TRAINER.PROMPTKD.PROMPT_DEPTH_VISION", "2"]
    return dict(tmp=tmp, info=info, dtd=dtd, env=env, opts=opts, teacher=teacher, src_dir=src_dir, kd_opts=kd_opts)


@pytest.mark.slow
def test_promptsrc_teacher_checkpoint_and_new_class_test(setup):
    ckpt = torch.load(setup["teacher"], weights_only=True)
    assert set(ckpt["state_dict"]) == {  # prompts only: the frozen CLIP is not stored
        "prompt_learner.ctx", "image_encoder.VPT", "image_encoder.transformer.resblocks.1.VPT_shallow",
        "text_encoder.transformer.resblocks.1.VPT_shallow"}
    assert ckpt["epoch"] == 2 and ckpt["gpa"]["epochs"] == [0, 1]
    log = (setup["src_dir"] / "log.txt").read_text()
    assert re.search(r"epoch \[2/2\] batch \[3/3\] .* loss [\d.]+ \([\d.]+\) lr", log)  # 4 shots x 3 base classes
    out = _run(["scripts/promptsrc/base2new_test.sh", "oxford_pets", "1", *setup["opts"]],
               dict(setup["env"], LOADEP="2"))
    assert "--load-epoch 2" in out
    test_log = setup["tmp"] / "output/base2new/test_new/oxford_pets/shots_4/PromptSRC" / SRC_CFG / "seed1/log.txt"
    assert [r[:2] for r in _results(test_log.read_text())] == [("test", sum(setup["info"]["counts"]["test"][3:]))]


@pytest.mark.parametrize("trainer, script_dir, shots", [("PromptKD", "promptkd", "0"),
                                                        ("TextRefiner", "textrefiner_promptkd", "4")])
@pytest.mark.slow
def test_base2novel_distillation(setup, trainer, script_dir, shots):
    env = dict(setup["env"], TEACHER=str(setup["teacher"]), SHOTS=shots)
    _run([f"scripts/{script_dir}/base2new_train.sh", "oxford_pets", "1", *setup["kd_opts"]], env)
    out_dir = setup["tmp"] / "output/base2new/train_base/oxford_pets" / f"shots_{shots}" / trainer / KD_CFG / "seed_1"
    log = (out_dir / "log.txt").read_text()
    counts = setup["info"]["counts"]
    base_test, new_test = sum(counts["test"][:3]), sum(counts["test"][3:])
    assert f'Loaded the teacher from "{setup["teacher"]}"' in log
    train_images = sum(counts["train"]) if shots == "0" else 4 * 6  # every class, labels unused
    assert f"batch [{train_images // 4}/{train_images // 4}]" in log
    results = _results(log)
    assert [r[:2] for r in results] == [("val", base_test), ("val", base_test), ("test", new_test)]
    names = ["VLPromptLearner", "results.json", "run.json"] + (["Memory"] if trainer == "TextRefiner" else [])
    assert sorted(n for n in os.listdir(out_dir) if not n.endswith(".txt") and n != "tensorboard") == sorted(names)
    state = torch.load(out_dir / "VLPromptLearner" / "model-best.pth.tar", weights_only=True)["state_dict"]
    assert "image_encoder.VPT" in state and "VPT_image_trans.conv1.1.running_mean" in state
    assert not any(k.startswith("image_encoder.conv1") for k in state)
    if trainer == "TextRefiner":
        assert re.search(r"loss [\d.]+ \([\d.]+\) L_ukd [\d.]+ \([\d.]+\) L_sem [\d.]+ \([\d.]+\) L_mem", log)
        assert "mid_image_trans.conv1.0.weight" in state
        memory = torch.load(out_dir / "Memory" / "model-best.pth.tar", weights_only=True)
        assert memory["memory_item"].shape == (25, 48)  # the teacher's width

    # the saved student evaluates again on the novel classes with the same accuracy
    _run([f"scripts/{script_dir}/base2new_test.sh", "oxford_pets", "1", *setup["kd_opts"]], env)
    test_log = (setup["tmp"] / "output/base2new/test_new/oxford_pets" / f"shots_{shots}" / trainer / KD_CFG
                / "seed_1/log.txt").read_text()
    assert _results(test_log) == [results[-1]]

    # the table takes the base accuracy from the best val (base test) result, not the final test
    res = subprocess.run([sys.executable, "parse_test_res.py", "--base2new", str(setup["tmp"] / "output/base2new"),
                          "--trainer", trainer], cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    base, new = max(r[2] for r in results if r[0] == "val"), results[-1][2]
    row = next(line for line in res.stdout.splitlines() if line.startswith("oxford_pets"))
    assert row.split()[1:3] == [f"{base:.2f}", f"{new:.2f}"]


@pytest.mark.slow
@pytest.mark.parametrize("trainer, script_dir", [("PromptKD", "promptkd"), ("TextRefiner", "textrefiner_promptkd")])
def test_cross_dataset_distillation_uses_all_classes(setup, trainer, script_dir):
    env = dict(setup["env"], TEACHER=str(setup["teacher"]), SHOTS="0")
    _run([f"scripts/{script_dir}/xd_train.sh", "dtd", "1", *setup["kd_opts"]], env)
    log = (setup["tmp"] / "output/dtd" / trainer / f"{KD_CFG}_cross_datasets_0shots/seed1/log.txt").read_text()
    assert "TRAINER.MODAL" in log and "batch [" in log
    all_test = sum(setup["dtd"]["counts"]["test"])  # every class: val = test = the target's test split
    assert [r[:2] for r in _results(log)] == [("val", all_test), ("val", all_test), ("test", all_test)]


@pytest.mark.slow
def test_missing_teacher_is_one_clear_error(setup):
    env = dict(setup["env"], OUTPUT=str(setup["tmp"] / "output_missing"))
    res = subprocess.run(["bash", "scripts/promptkd/base2new_train.sh", "oxford_pets", "1", *setup["kd_opts"]],
                         cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode != 0
    assert re.search(r'PromptKD teacher checkpoint ".*teacher_model/OxfordPets/VLPromptLearner/model-best.pth.tar" '
                     r"not found.*TRAINER.PROMPTKD.TEACHER_CKPT", res.stderr)
