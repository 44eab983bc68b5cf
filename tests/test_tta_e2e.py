"""tta.py through the scripts/rlcf/ scripts on generated data with tiny CLIPs, and CoOp initialisation."""
import json
import os
import re
import subprocess
import sys

import pytest
import torch

import train
from tools.synthetic_data import make_dataset
from tta.classification.policy import PromptPolicy, load_coop_context
from tta.classification.runner import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEW = ["--batch_size", "8", "--selection_p", "0.25", "--workers", "0"]  # 8 views, 2 selected


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tta_data"))
    make_dataset("ImageNetA", root, num_classes=3, images_per_class=4, seed=0)
    make_dataset("DescribableTextures", root, num_classes=3, images_per_class=4, seed=0)
    return root


@pytest.fixture(scope="module")
def coop_dir(tmp_path_factory, pets_root, tiny_vit_path):
    """A CoOp prompt ("a photo of a" init, 4 tokens) trained for one epoch through train.py."""
    out = str(tmp_path_factory.mktemp("coop"))
    train.main(train.build_parser().parse_args([
        "--root", pets_root, "--seed", "1", "--trainer", "CoOp", "--output-dir", out,
        "--dataset-config-file", os.path.join(REPO, "configs/datasets/oxford_pets.yaml"),
        "--config-file", os.path.join(REPO, "configs/trainers/CoOp/vit_b16_ep50_ctxv1.yaml"),
        "MODEL.BACKBONE.PATH", tiny_vit_path, "INPUT.SIZE", "(32, 32)", "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "DATASET.NUM_SHOTS", "1", "OPTIM.MAX_EPOCH", "1",
    ]))
    return out


def _script(name, env, *args):
    res = subprocess.run(["bash", f"scripts/rlcf/{name}", *args], cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "still referenced after destroy_process_group" not in res.stderr, res.stderr[-3000:]  # NPROC runs
    return res.stdout


def _table(path):
    with open(path) as f:
        lines = f.read().splitlines()
    heads = [h.strip() for h in lines[0].strip("|").split("|")]
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    return dict(zip(heads, cells))


def test_coop_checkpoint_initialises_the_prompt(coop_dir, tiny_vit_path):
    import clip

    ckpt = torch.load(os.path.join(coop_dir, "prompt_learner", "model.pth.tar-1"), weights_only=True)
    ctx = load_coop_context(coop_dir, 4, 64)  # the output folder: the file named in prompt_learner/checkpoint
    assert torch.equal(ctx, ckpt["state_dict"]["ctx"])
    policy = PromptPolicy(clip.load("tiny", path=tiny_vit_path), 4, "a photo of a", init_ctx=ctx)
    policy.start_dataset(["cat", "dog"])
    assert torch.equal(policy.learner.ctx.detach(), ctx)
    with torch.no_grad():
        policy.learner.ctx.add_(1.0)
    policy.reset()
    assert torch.equal(policy.learner.ctx.detach(), ctx)
    with pytest.raises(ValueError, match=r"context of shape \(4, 64\), but the student needs \(2, 64\)"):
        load_coop_context(coop_dir, 2, 64)


@pytest.mark.slow
def test_scripts_write_results_tables(tmp_path, data, coop_dir, tiny_vit_path, tiny_teacher_path):
    # one thread: tiny models gain nothing from more, and a busy machine loses much
    env = dict(os.environ, OMP_NUM_THREADS="1", DATA=data, OUTPUT=str(tmp_path), ARCH=tiny_vit_path,
               REWARD_ARCH=tiny_teacher_path)
    out = _script("tpt.sh", dict(env, COOP_WEIGHT=coop_dir), "A", *FEW)
    assert "Use pre-trained soft prompt (CoOp) as initialization" in out
    assert re.search(r"=> Acc\. on testset \[A\]: @1 [\d.]+ / @5 100\.0", out)  # 3 classes: top-5 is certain
    table = _table(os.path.join(tmp_path, "tpt_prompt", "results_table.md"))
    assert set(table) == {"method", "A", "OOD avg"} and table["method"] == "tpt" and table["A"] == table["OOD avg"]

    _script("rlcf_prompt.sh", env, *FEW, "--test_sets", "A")
    with open(os.path.join(tmp_path, "rlcf_prompt_01", "results.json")) as f:
        assert list(json.load(f)) == ["A"]
    with open(os.path.join(tmp_path, "rlcf_prompt_01", "hparams_train.json")) as f:
        hp = json.load(f)
    assert (hp["tta_steps"], hp["lr"], hp["weight_decay"], hp["sample_k"]) == (3, 7e-3, 5e-4, 3)

    out = _script("rlcf_prompt_fine.sh", dict(env, TESTSETS="DTD", COOP_WEIGHT=coop_dir), *FEW)
    assert "Use pre-trained soft prompt (CoOp) as initialization" in out  # RLCF + CoOp
    assert "views per image: 8 (AugMix: True)" in out and "(DescribableTextures, 3 classes, 5 steps)" in out
    table = _table(os.path.join(tmp_path, "rlcf_prompt_fine_01", "results_table.md"))
    assert list(table) == ["method", "DTD", "fine-grained avg"]

    out = _script("rlcf_tune.sh", dict(env, MOMENTUM="1"), *FEW, "--test_sets", "A", "--update_freq", "2")
    assert "views per image: 8 (AugMix: False)" in out
    assert float(_table(os.path.join(tmp_path, "finetune_cls_rl_01", "results_table.md"))["A"]) >= 0


@pytest.mark.slow
def test_two_processes_adapt_to_each_image_once_with_the_results_of_one(tmp_path, data, tiny_vit_path):
    # each image's views are seeded by its index: the rank that adapts to it does not matter
    env = dict(os.environ, OMP_NUM_THREADS="1", DATA=data, ARCH=tiny_vit_path, PYTHONPATH=REPO)
    _script("tpt.sh", dict(env, OUTPUT=str(tmp_path / "one")), "A", *FEW)
    out = _script("tpt.sh", dict(env, OUTPUT=str(tmp_path / "two"), NPROC="2"), "A", *FEW)
    assert "torchrun: 2 processes, each adapting to 1/2 of the images" in out
    results = [json.load(open(os.path.join(tmp_path, run, "tpt_prompt", "results.json"))) for run in ("one", "two")]
    assert results[0] == results[1] and list(results[0]) == ["A"]


def test_momentum_needs_one_process(monkeypatch, tmp_path):
    from engine import distributed
    from tta.classification import runner

    monkeypatch.setattr(distributed, "is_main_process", lambda: False)  # nothing written
    parser = runner.build_parser()
    args = runner.check_args(parser, parser.parse_args(
        ["DATA", "--method", "rlcf-tune", "--momentum_update", "1", "--output", str(tmp_path / "out")]))
    with pytest.raises(ValueError, match="--momentum_update 1 carries the adapted image encoder .* run tta.py without torchrun"):
        runner.run(args, [("A", "ImageNetA")], ranks=2)
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("argv, message", [
    (["--method", "tpt"], "give the data root: --root DATA"),
    (["DATA", "--method", "tpt", "--batch_size", "4"], "--batch_size 4 x --selection_p 0.1 selects no view"),
    (["DATA", "--method", "tpt", "--test_sets", "A/Q"], 'Unknown test set id "Q" in --test_sets "A/Q"'),
    (["DATA", "--root", "OTHER", "--method", "tpt"], "two data roots given"),
])
def test_bad_arguments_fail_clearly(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_too_many_candidates_fail_clearly(tmp_path, data, tiny_vit_path, tiny_teacher_path):
    message = r"--sample_k 5 is more than the 3 classes of A \(ImageNetA\): use --sample_k 3"
    with pytest.raises(ValueError, match=message):
        main([data, "--method", "rlcf-prompt", "--test_sets", "A", "-a", tiny_vit_path, "--reward_arch",
              tiny_teacher_path, "--sample_k", "5", "--output", str(tmp_path), *FEW])


def test_rlcf_s_builds_weighted_reward_models(data, tiny_vit_path, tiny_teacher_path):
    from tta.classification.cli import build_parser, check_args
    from tta.classification.runner import build_reward

    parser = build_parser()
    argv = [data, "--method", "rlcf-tune", "--multiple_reward_models", "1",
            "--reward_archs", tiny_teacher_path, tiny_vit_path, "--reward_weights", "10", "5"]
    reward = build_reward(check_args(parser, parser.parse_args(argv)), torch.device("cpu"))
    assert reward.weights == [0.67, 0.33] and len(reward.models) == 2
    assert [m.visual.output_dim for m in reward.models] == [48, 32]  # the teacher, then the tiny student CLIP
    with pytest.raises(ValueError, match="No reference weight for reward model"):
        build_reward(check_args(parser, parser.parse_args(argv[:-3])), torch.device("cpu"))


def test_imagenet_needs_only_its_val_folder(tmp_path):
    import shutil

    from tta.classification.data import load_test_set

    info = make_dataset("ImageNet", str(tmp_path), num_classes=3, images_per_class=4, seed=0)
    shutil.rmtree(os.path.join(info["dataset_dir"], "images", "train"))
    items, classnames = load_test_set("ImageNet", str(tmp_path))
    assert classnames == info["classnames"] and len(items) == sum(info["counts"]["test"])
    assert sorted({item.label for item in items}) == [0, 1, 2]


# Runs tta.py as `python tta.py ...` would, with a Ctrl-C (KeyboardInterrupt in the main thread) after
# two images of the set number STOP_AT_SET.
CTRL_C_RUNNER = """
import os, runpy, sys
sys.path.insert(0, os.getcwd())
from tta.classification import runner
original, calls, stop = runner.evaluate_set, [0], int(os.environ["STOP_AT_SET"])
def evaluate_set(adapter, loader, device, print_freq=500):
    calls[0] += 1
    if calls[0] == stop:
        for i, (views, _) in enumerate(loader):
            adapter.predict(views[0].to(device))
            if i == 1:
                raise KeyboardInterrupt
    return original(adapter, loader, device, print_freq)
runner.evaluate_set = evaluate_set
sys.argv = ["tta.py"] + sys.argv[1:]
runpy.run_path("tta.py", run_name="__main__")
"""


@pytest.mark.slow
def test_ctrl_c_keeps_finished_sets_and_the_same_command_runs_the_rest(tmp_path, data, tiny_vit_path, capsys):
    def argv(out, *extra):
        return [data, "--method", "tpt", "--test_sets", "A/DTD", "-a", tiny_vit_path, "--output", str(out), *FEW, *extra]

    out = tmp_path / "stopped"
    env = dict(os.environ, STOP_AT_SET="2", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", CTRL_C_RUNNER, *argv(out)], cwd=REPO, env=env, capture_output=True,
                         text=True)
    assert res.returncode == 130 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert (f"Interrupted during set DTD: the finished sets (A) are kept in {out}/results.json; rerun the same "
            "command to run the others") in res.stdout
    with open(out / "results.json") as f:
        assert list(json.load(f)) == ["A"]

    capsys.readouterr()
    resumed = main(argv(out))
    assert "=> A: finished by an earlier run of this command" in capsys.readouterr().out
    assert resumed == main(argv(tmp_path / "whole"))  # what one uninterrupted run gives
    with pytest.raises(ValueError, match=r'"{}" holds a tta.py run made from other inputs \(selection_p: 0.25 there, '
                                         r"0.5 now\)".format(out)):
        main(argv(out, "--selection_p", "0.5"))


def test_every_set_and_model_is_checked_before_the_first_image(tmp_path, data, tiny_vit_path):
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match=r'StanfordCars expects a folder named "stanford_cars"'):
        main([data, "--method", "tpt", "--test_sets", "A/Cars", "-a", tiny_vit_path, "--output", str(out), *FEW])
    assert "evaluating: A" not in (out / "log.txt").read_text() and not (out / "results.json").exists()
    earlier = tmp_path / "earlier"  # the results.json of an earlier version, without run.json
    earlier.mkdir()
    (earlier / "results.json").write_text('{"A": [50.0, 100.0]}')
    with pytest.raises(ValueError, match=r"holds the results.json of a tta.py run without run.json"):
        main([data, "--method", "tpt", "--test_sets", "A", "-a", tiny_vit_path, "--output", str(earlier), *FEW])
    missing = tmp_path / "missing.pt"
    with pytest.raises(FileNotFoundError, match=rf'--reward_arch "{missing}" is neither a weights file or folder nor a CLIP '
                                                r"release name \(RN50, .*\): check the path"):
        main([data, "--method", "rlcf-prompt", "--test_sets", "A", "-a", tiny_vit_path, "--reward_arch", str(missing),
              "--output", str(tmp_path / "other"), *FEW])
