"""tta_ret.py as a user runs it: zero-shot and RLCF on a miniature COCO-layout set and on the world
retrieval set, with tiny CLIPs; the embedding cache, reruns and the missing-file error."""
import json
import os
import subprocess
import sys

import pytest

from engine.utils.faults import run_command
from tests.retrieval_data import write_mini_coco
from tools.world.retrieval import write_retrieval_set
from tta.retrieval.runner import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = ["txt_r1", "txt_r5", "txt_r10", "txt_r_mean", "img_r1", "img_r5", "img_r10", "img_r_mean", "r_mean"]


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("ret_data"))
    write_mini_coco(root, n_images=6, captions_per_image=5)
    return root


def read(path):
    with open(path) as f:
        return json.load(f)


def common(tmp_path, root, student, teacher):
    return ["--dataset", "coco", "--root", root, "-a", student, "--reward_arch", teacher, "--workers", "0",
            "--feature_cache", str(tmp_path / "cache")]


def test_zero_shot_then_rlcf_reuses_cached_embeddings(tmp_path, coco_root, tiny_vit_path, tiny_teacher_path, capsys):
    args = common(tmp_path, coco_root, tiny_vit_path, tiny_teacher_path)
    zs = main(args + ["--method", "zeroshot", "--output", str(tmp_path / "zs")])
    assert read(tmp_path / "zs" / "results.json") == zs and set(KEYS) <= set(zs)
    assert "txt_r1" in (tmp_path / "zs" / "log.txt").read_text()
    assert len(os.listdir(tmp_path / "cache")) == 2  # the student's image and text embeddings
    capsys.readouterr()
    # text2image with 0 steps scores the captions as zero-shot does; the student's image embeddings are read
    steps0 = main(args + ["--retrieval_task", "text2image", "--tta_steps", "0", "--sample_k", "3",
                          "--output", str(tmp_path / "t0")])
    assert steps0 == {k: zs[k] for k in ("img_r1", "img_r5", "img_r10", "img_r_mean")}
    out = capsys.readouterr().out
    assert "policy: image embeddings of coco read from" in out
    rlcf = main(args + ["--retrieval_task", "image2text", "--tta_steps", "2", "--lr", "1e-3", "--sample_k", "4",
                        "--output", str(tmp_path / "i2t")])
    assert read(tmp_path / "i2t" / "results.json") == rlcf
    assert read(tmp_path / "i2t" / "results_image2text.json") == {k: round(v, 3) for k, v in rlcf.items()}
    assert list(rlcf) == ["txt_r1", "txt_r5", "txt_r10", "txt_r_mean"]
    assert len(os.listdir(tmp_path / "cache")) == 4  # + the reward CLIP's images and texts
    run = read(tmp_path / "i2t" / "run.json")
    assert run["status"] == "finished" and run["sets"]["coco/image2text"]["metrics"] == rlcf
    # the same command again: kept; another lr: refused
    assert main(args + ["--retrieval_task", "image2text", "--tta_steps", "2", "--lr", "1e-3", "--sample_k", "4",
                        "--output", str(tmp_path / "i2t")]) == rlcf
    with pytest.raises(Exception, match="lr: 0.001 there, 0.0001 now"):
        main(args + ["--retrieval_task", "image2text", "--tta_steps", "2", "--lr", "1e-4", "--sample_k", "4",
                     "--output", str(tmp_path / "i2t")])


def test_missing_annotation_file_is_one_error(tmp_path, tiny_vit_path, tiny_teacher_path, capsys):
    args = ["--dataset", "flickr30k", "--root", str(tmp_path), "-a", tiny_vit_path, "--reward_arch",
            tiny_teacher_path, "--output", str(tmp_path / "out")]
    assert run_command(main, args) == 1
    err = capsys.readouterr().err
    path = os.path.join(str(tmp_path), "flickr30k", "annotations", "flickr30k_test.json")
    assert f'annotation file "{path}" does not exist' in err and "annotations.zip" in err
    assert "Traceback" not in err and not os.path.exists(tmp_path / "out")


def test_sample_k_larger_than_the_gallery(tmp_path, coco_root, tiny_vit_path, tiny_teacher_path):
    args = common(tmp_path, coco_root, tiny_vit_path, tiny_teacher_path)
    with pytest.raises(ValueError, match="--sample_k 12 is more than the 6 gallery items"):
        main(args + ["--retrieval_task", "text2image", "--output", str(tmp_path / "o")])


def test_distillation_takes_one_reward_clip(tmp_path, coco_root, tiny_vit_path, tiny_teacher_path, capsys):
    args = common(tmp_path, coco_root, tiny_vit_path, tiny_teacher_path)
    with pytest.raises(SystemExit):
        main(args + ["--method", "kd", "--multiple_reward_models", "1", "--output", str(tmp_path / "o")])
    assert "--method kd distils from one reward CLIP (--reward_arch)" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o")


def run_script(name, env):
    res = subprocess.run(["bash", f"scripts/rlcf/{name}", "--workers", "0", "--tta_steps", "1", "--sample_k", "3",
                          "--reward_weights", "2", "1"], cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["coco", "world"])
def test_scripts_write_results(tmp_path, coco_root, tiny_vit_path, tiny_teacher_path, dataset):
    root = coco_root
    if dataset == "world":
        root = str(tmp_path / "world")
        write_retrieval_set(root, n_images=8, n_captions=3, seed=1)
    env = dict(os.environ, DATA=root, OUTPUT=str(tmp_path / "out"), ARCH=tiny_vit_path, REWARD_ARCH=tiny_teacher_path,
               REWARD_ARCHS=f"{tiny_teacher_path} {tiny_vit_path}", DATASET=dataset,
               TEXTREFINER_FEATURE_CACHE=str(tmp_path / "cache"), PYTHON=sys.executable)
    # the world set through one variant (its data path); the three variants through COCO's layout
    variants = ("01", "02", "03") if dataset == "coco" else ("01",)
    run_script("tta_coco_ret.sh", dict(env, VARIANTS=" ".join(variants)))
    for num in variants:
        for task, prefix in (("image2text", "txt"), ("text2image", "img")):
            result = read(tmp_path / "out" / f"tta_clip_{dataset}_ret_{num}" / task / "results.json")
            assert set(result) == {f"{prefix}_r1", f"{prefix}_r5", f"{prefix}_r10", f"{prefix}_r_mean"}
    if dataset == "world":  # distillation (tta_*_ret_kd.sh) through the world set
        run_script("tta_coco_ret_kd.sh", env)
        for task, prefix in (("image2text", "txt"), ("text2image", "img")):
            folder = tmp_path / "out" / "tta_clip_world_ret_kd_01" / task
            assert set(read(folder / "results.json")) == {f"{prefix}_r1", f"{prefix}_r5", f"{prefix}_r10",
                                                          f"{prefix}_r_mean"}
            config = read(folder / "run.json")["config"]
            assert config["method"] == "kd" and config["lr"] == 1e-6 and config["multiple_reward_models"] == 0
        assert "distillation from" in (folder / "log.txt").read_text()
    if dataset == "coco":
        multi = read(tmp_path / "out" / "tta_clip_coco_ret_03" / "image2text" / "run.json")["config"]
        assert multi["multiple_reward_models"] == 1 and multi["momentum_update"] == 1 and multi["update_freq"] == 64
        run_script("tta_coco_ret.sh", dict(env, NPROC="2", VARIANTS="01", OUTPUT=str(tmp_path / "two")))
        for task in ("image2text", "text2image"):  # queries shared out over two processes: the same ranks
            assert read(tmp_path / "two" / "tta_clip_coco_ret_01" / task / "results.json") == read(
                tmp_path / "out" / "tta_clip_coco_ret_01" / task / "results.json")
        env["DATASETS"] = "coco"
        subprocess.run(["bash", "scripts/rlcf/zero_shot_ret.sh", "--workers", "0"], cwd=REPO, env=env, check=True,
                       capture_output=True)
        assert set(KEYS) <= set(read(tmp_path / "out" / "zeroshot_clip_coco_ret_01" / "results.json"))
