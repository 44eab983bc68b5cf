"""Reruns through train.py: a finished run is skipped, one made from other inputs is refused with the
key that allows it, evaluations follow their model, --seed 0 seeds, untrained evaluations are named."""
import json
import os
import shutil

import pytest
import torch

import parse_test_res
import train
from engine.utils.faults import UserError
from tests import tiny_run
from tests.tiny_run import REPO


def _argv(root, clip_path, out, *flags, opts=()):
    return tiny_run.argv(root, out, clip_path, "CoOp", "CoOp/vit_b16_ep50_ctxv1", *opts, flags=flags, batch=8, shots=2)


def _main(argv):
    return train.main(train.build_parser().parse_args(argv))


def _read(path):
    with open(path) as f:
        return f.read()


@pytest.fixture(scope="module")
def finished(tmp_path_factory, pets_root, tiny_vit_path):
    """A finished CoOp run (2 epochs) and the command that made it."""
    out = str(tmp_path_factory.mktemp("reruns") / "coop")
    argv = _argv(pets_root, tiny_vit_path, out)
    _main(argv)
    return out, argv


def test_finished_run_is_skipped_and_other_inputs_are_refused(finished, pets_root, tiny_vit_path, tiny_teacher_path,
                                                              capsys):
    out, argv = finished
    manifest = json.loads(_read(os.path.join(out, "run.json")))
    assert manifest["status"] == "finished" and manifest["mode"] == "train"
    assert manifest["config"]["OPTIM.LR"] == 0.002 and "OUTPUT_DIR" not in manifest["config"]
    assert set(manifest["data"]) == {"train_x", "val", "test"} and manifest["data"]["train_x"]["images"] == 12
    assert manifest["weights"]["MODEL.BACKBONE"]["file"] == tiny_vit_path
    results = _read(os.path.join(out, "results.json"))

    capsys.readouterr()
    assert _main(argv) is None
    assert f"Oops! The results exist at {out} (so skip this job)" in capsys.readouterr().out
    assert sorted(f for f in os.listdir(out) if f.startswith("log.txt")) == ["log.txt"]  # nothing was run

    # another LR and fewer epochs: one error naming both and the key that continues anyway
    with pytest.raises(UserError) as info:
        _main(argv + ["OPTIM.LR", "0.01", "OPTIM.MAX_EPOCH", "1"])
    message = str(info.value)
    assert f'"{out}" holds a finished run made from other inputs' in message
    assert "OPTIM.LR: 0.002 there, 0.01 now" in message and "OPTIM.MAX_EPOCH: 2 there, 1 now" in message
    assert "add TRAIN.ALLOW_CHANGED OPTIM.LR,OPTIM.MAX_EPOCH to the command" in message
    # other weights under another path: compared by content
    with pytest.raises(UserError, match=r"weights:MODEL.BACKBONE: .*tiny_vit.pt\", content \w+ there, .*tiny_teacher.pt"):
        _main(_argv(pets_root, tiny_teacher_path, out))
    assert _read(os.path.join(out, "results.json")) == results  # nothing was replaced

    # a split file whose test list changed
    data = os.path.join(os.path.dirname(out), "data")
    shutil.copytree(pets_root, data)
    split_path = os.path.join(data, "oxford_pets", "split_zhou_OxfordPets.json")
    split = json.loads(_read(split_path))
    split["test"] = split["test"][1:]
    with open(split_path, "w") as f:
        json.dump(split, f)
    with pytest.raises(UserError, match=r"data:test: 18 images, content \w+ there, 17 images, content \w+ now"):
        _main(_argv(data, tiny_vit_path, out))


def test_allowed_change_continues_the_finished_run(finished, capsys):
    src, argv = finished
    out = src + "_longer"
    shutil.copytree(src, out)
    argv = [out if a == src else a for a in argv]
    capsys.readouterr()
    _main(argv + ["OPTIM.MAX_EPOCH", "3", "TRAIN.ALLOW_CHANGED", "OPTIM.MAX_EPOCH"])
    stdout = capsys.readouterr().out
    assert f"Continuing the run in {out} with changed OPTIM.MAX_EPOCH: 2 there, 3 now (TRAIN.ALLOW_CHANGED allows it)" in stdout
    assert "Previous epoch: 2" in stdout and "epoch [3/3]" in stdout and "epoch [2/3]" not in stdout
    manifest = json.loads(_read(os.path.join(out, "run.json")))
    assert manifest["status"] == "finished" and manifest["changes"] == [{"OPTIM.MAX_EPOCH": ["2", "3"]}]
    assert json.loads(_read(os.path.join(out, "results.json")))["epochs_trained"] == 3
    _main(argv + ["OPTIM.MAX_EPOCH", "3"])  # the same command again: the run is finished with 3 epochs
    assert "Oops! The results exist" in capsys.readouterr().out


def test_evaluation_follows_its_model_and_refuses_an_unfinished_one(finished, pets_root, tiny_vit_path, capsys):
    train_dir, _ = finished
    ev = os.path.join(os.path.dirname(train_dir), "eval")
    argv = _argv(pets_root, tiny_vit_path, ev, "--eval-only", "--model-dir", train_dir, "--load-epoch", "2")
    _main(argv)
    model = json.loads(_read(os.path.join(ev, "run.json")))["model"]
    assert model["dir"] == train_dir and list(model["files"]) == ["prompt_learner/model.pth.tar-2"]
    capsys.readouterr()
    _main(argv)
    assert "Oops! The results exist" in capsys.readouterr().out

    # the training ran again (here: its checkpoint replaced by another one): evaluated again
    moved = os.path.join(os.path.dirname(train_dir), "retrained")
    shutil.copytree(train_dir, moved)
    ckpt_path = os.path.join(moved, "prompt_learner", "model.pth.tar-2")
    ckpt = torch.load(ckpt_path, weights_only=True)
    ckpt["state_dict"]["ctx"] += 1.0
    torch.save(ckpt, ckpt_path)
    _main([moved if a == train_dir else a for a in argv])
    stdout = capsys.readouterr().out
    assert f'The model at "{moved}" (model.pth.tar-2) is not the one "{ev}" evaluated' in stdout
    assert "* accuracy:" in stdout

    # a training run that has not finished is not evaluated
    manifest_path = os.path.join(moved, "run.json")
    manifest = json.loads(_read(manifest_path))
    manifest["status"] = "running"  # as a killed run leaves it
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    unfinished = [moved if a == train_dir else a for a in argv]
    unfinished[unfinished.index(ev)] = ev + "2"
    with pytest.raises(UserError, match=r'The training run in ".*retrained" has not finished \(its newest checkpoint is '
                                        r"prompt_learner/model.pth.tar-2, of 2 epochs\).*Rerun its training command"):
        _main(unfinished)
    assert not os.path.exists(ev + "2")


def test_seed_0_seeds(tmp_path, pets_root, tiny_vit_path, capsys):
    def ctx(out):  # a random context (no CTX_INIT): what the seed decides before any training
        argv = _argv(pets_root, tiny_vit_path, str(tmp_path / out), "--no-train", opts=["TRAINER.COOP.CTX_INIT", ""])
        argv[argv.index("--seed") + 1] = "0"
        trainer = _main(argv)
        return trainer.model.prompt_learner.ctx.detach().clone()

    capsys.readouterr()
    first, second = ctx("a"), ctx("b")
    assert "Setting fixed seed: 0" in capsys.readouterr().out
    assert torch.equal(first, second)
    assert json.loads(_read(tmp_path / "a" / "results.json"))["seed"] == 0


def test_eval_only_without_model_dir_and_parse_test_res(tmp_path, finished, pets_root, tiny_vit_path, capsys):
    train_dir, _ = finished
    runs = tmp_path / "runs"
    with pytest.raises(UserError, match=r"--eval-only without --model-dir would evaluate CoOp's untrained parameters: "
                                        r"pass --model-dir .* add TEST.ALLOW_UNTRAINED True"):
        _main(_argv(pets_root, tiny_vit_path, str(runs / "seed1"), "--eval-only"))
    _main(_argv(pets_root, tiny_vit_path, str(runs / "seed1"), "--eval-only", opts=["TEST.ALLOW_UNTRAINED", "True"]))
    assert json.loads(_read(runs / "seed1" / "results.json"))["untrained"] is True
    assert "Note: evaluating CoOp's untrained parameters (no --model-dir; TEST.ALLOW_UNTRAINED)" in _read(
        runs / "seed1" / "log.txt")
    _main(_argv(pets_root, tiny_vit_path, str(runs / "seed2"), "--eval-only", "--model-dir", train_dir, "--load-epoch", "2"))
    trained = json.loads(_read(runs / "seed2" / "results.json"))
    assert trained["untrained"] is False

    capsys.readouterr()
    assert parse_test_res.main([str(runs), "--test-log"]) == 0
    out, err = capsys.readouterr()
    assert f"{runs}/seed1/log.txt evaluated untrained parameters (--eval-only without --model-dir); left out" in err
    assert f"* accuracy: {round(trained['accuracy'], 1):.2f}% +- 0.00%" in out  # the trained run alone


def test_parse_test_res_refuses_runs_of_other_experiments(tmp_path, finished, pets_root, tiny_vit_path, capsys):
    from tools.synthetic_data import make_dataset

    make_dataset("EuroSAT", str(tmp_path / "data"), num_classes=4, images_per_class=6, seed=0)
    train_dir, _ = finished
    runs = tmp_path / "runs"
    model = ["--eval-only", "--model-dir", train_dir, "--load-epoch", "2"]
    _main(_argv(pets_root, tiny_vit_path, str(runs / "seed1"), *model))
    _main(_argv(pets_root, tiny_vit_path, str(runs / "seed2"), *model, opts=["INPUT.INTERPOLATION", "bilinear"]))
    zeroshot = _argv(pets_root, tiny_vit_path, str(runs / "seed3"), "--eval-only")
    zeroshot[zeroshot.index("CoOp")] = "ZeroshotCLIP"
    _main(zeroshot)
    eurosat = [str(tmp_path / "data") if a == pets_root else a for a in zeroshot]
    eurosat[eurosat.index(os.path.join(REPO, "configs/datasets/oxford_pets.yaml"))] = os.path.join(
        REPO, "configs/datasets/eurosat.yaml")
    _main([str(runs / "seed4") if a == str(runs / "seed3") else a for a in eurosat])

    capsys.readouterr()
    assert parse_test_res.main([str(runs), "--test-log"]) == 1
    err = capsys.readouterr().err
    assert f"{runs} mixes runs of different experiments, which cannot be averaged" in err
    assert f'{runs}/seed2: another config (INPUT.INTERPOLATION "bilinear" vs "bicubic")' in err
    assert f"{runs}/seed3: trainer ZeroshotCLIP, the others CoOp" in err
    assert f"{runs}/seed4: data set EuroSAT, the others OxfordPets" in err


def test_a_model_folder_is_fingerprinted_by_its_files(tmp_path):
    from engine.run_manifest import file_fingerprint

    folder = tmp_path / "hf_clip"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights-1")
    first = file_fingerprint(str(folder))
    assert first["sha256"] is not None and first == file_fingerprint(str(folder))
    (folder / "model.safetensors").write_bytes(b"weights-2")
    assert file_fingerprint(str(folder))["sha256"] != first["sha256"]
    assert file_fingerprint("hf:org/repo") == {"file": "hf:org/repo", "sha256": None}
