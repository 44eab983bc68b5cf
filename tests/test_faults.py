"""Bad inputs and faults: each gives one clear error and keeps the last good checkpoint."""
import errno
import json
import os

import pytest
import torch

import parse_test_res
import train
from engine.step import Precision
from engine.utils import latest_checkpoint, save_checkpoint
from engine.checkpoint import files as checkpoint_files
from engine.utils.faults import nonfinite_loss_message
from tests import tiny_run
from trainers.coop import CoOp


def _args(root, clip_path, out, *flags):
    return tiny_run.parse(root, out, clip_path, "CoOp", "CoOp/vit_b16_ep50_ctxv1", flags=flags)


def _state(epoch):
    return {"state_dict": {"ctx": torch.full((2, 3), float(epoch))}, "epoch": epoch, "optimizer": None}


# ----- checkpoints on disk ------------------------------------------------------------------
def test_truncated_latest_checkpoint_is_named_kept_and_the_previous_one_used(tmp_path, capsys):
    save_checkpoint(_state(1), str(tmp_path))
    save_checkpoint(_state(2), str(tmp_path))
    latest = tmp_path / "model.pth.tar-2"
    latest.write_bytes(latest.read_bytes()[:100])  # cut short, as a copy that stopped half way

    fpath, checkpoint = latest_checkpoint(str(tmp_path))
    assert fpath == str(tmp_path / "model.pth.tar-1") and checkpoint["epoch"] == 1
    assert torch.equal(checkpoint["state_dict"]["ctx"], torch.ones(2, 3))
    assert f'cannot read the checkpoint "{latest}"' in capsys.readouterr().out
    assert latest.exists()  # left for the user to inspect

    (tmp_path / "model.pth.tar-1").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match=r"No readable checkpoint in .*model\.pth\.tar-2.*model\.pth\.tar-1"):
        latest_checkpoint(str(tmp_path))


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos")])
def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch, failure):
    save_checkpoint(_state(1), str(tmp_path))
    real_save = torch.save

    def save_until_full(obj, f):
        real_save(obj, f)
        with open(f, "r+b") as fh:  # the part that fit on the disk
            fh.truncate(50)
        raise failure

    monkeypatch.setattr(checkpoint_files.torch, "save", save_until_full)
    with pytest.raises(OSError, match=r'Could not write the checkpoint ".*model\.pth\.tar-2": .*'
                                      r'the previous checkpoint ".*model\.pth\.tar-1" is kept'):
        save_checkpoint(_state(2), str(tmp_path))
    monkeypatch.setattr(checkpoint_files.torch, "save", real_save)

    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.pth.tar-1"]  # no partial or temporary file
    fpath, checkpoint = latest_checkpoint(str(tmp_path))
    assert fpath.endswith("model.pth.tar-1") and checkpoint["epoch"] == 1


def test_resume_refuses_another_trainers_checkpoint(tmp_path, pets_root, tiny_vit_path):
    out = tmp_path / "run"
    state = {**_state(1), "trainer": "IVLP"}
    save_checkpoint(state, str(out / "prompt_learner"))
    with pytest.raises(ValueError, match=r'"prompt_learner" was written by the trainer IVLP, this run is CoOp\. '
                                         r"Use another --output-dir"):
        train.main(_args(pets_root, tiny_vit_path, str(out)))


# ----- output folder ------------------------------------------------------------------------
def test_output_folder_that_cannot_be_written_is_named(tmp_path, pets_root, tiny_vit_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = str(blocker / "run")
    with pytest.raises(PermissionError, match=rf'The output folder "{out}" cannot be written .* Choose another --output-dir'):
        train.main(_args(pets_root, tiny_vit_path, out))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root")
def test_read_only_output_folder_is_named(tmp_path, pets_root, tiny_vit_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="cannot be written"):
            train.main(_args(pets_root, tiny_vit_path, str(out)))
    finally:
        out.chmod(0o700)


# ----- NaN loss -----------------------------------------------------------------------------
def test_nan_loss_stops_naming_step_parts_and_precision(tmp_path, pets_root, tiny_vit_path, monkeypatch):
    original, calls, seen = CoOp.losses, [0], {}

    def losses(self, image, label):
        calls[0] += 1
        loss, parts = original(self, image, label)
        if calls[0] != 3:
            return loss, parts
        seen.update(trainer=self, ctx=self.model.prompt_learner.ctx.detach().clone())
        return loss * float("nan"), parts

    monkeypatch.setattr(CoOp, "losses", losses)
    out = tmp_path / "nan"
    with pytest.raises(FloatingPointError) as info:
        train.main(_args(pets_root, tiny_vit_path, str(out)))
    message = str(info.value)
    assert "The loss is NaN or infinite at epoch 1/2, batch 3/6 (loss parts: loss=nan, acc=" in message
    assert "PREC fp32" in message and "smaller OPTIM.LR" in message
    assert not os.path.exists(out / "prompt_learner") and not os.path.exists(out / "results.json")
    assert torch.equal(seen["trainer"].model.prompt_learner.ctx, seen["ctx"])  # stopped before the update


def test_nan_message_gives_fp16_and_adamw_advice():
    message = nonfinite_loss_message("epoch 3/10, batch 7/50", {"loss": float("nan"), "loss_ce": 2.0}, "fp16", "adamw")
    assert "at epoch 3/10, batch 7/50 (loss parts: loss=nan, loss_ce=2.0)" in message
    assert "PREC fp16" in message and "PREC amp" in message and "OPTIM.NAME adamw" in message


# ----- results.json -------------------------------------------------------------------------
def test_eval_only_run_writes_results_json_that_parse_test_res_reads(tmp_path, pets_root, tiny_vit_path, capsys):
    out = tmp_path / "zs" / "seed1"
    args = _args(pets_root, tiny_vit_path, str(out), "--eval-only")
    args.trainer = "ZeroshotCLIP"
    train.main(args)
    with open(out / "results.json") as f:
        results = json.load(f)
    assert results["eval_only"] is True and results["split"] == "test" and results["trainer"] == "ZeroshotCLIP"
    assert abs(results["accuracy"] + results["error"] - 100) < 1e-9 and 0 <= results["macro_f1"] <= 100
    assert len(results["config_digest"]) == 64 and results["versions"]["torch"] == torch.__version__
    assert results["skipped_updates"] == 0
    log_accuracy = parse_test_res.read_metric(str(out / "log.txt"), "accuracy", parse_test_res.END_TEST)
    assert round(results["accuracy"], 1) == log_accuracy

    # the file wins over the log (here made to differ on purpose)
    results["accuracy"] = 12.345
    (out / "results.json").write_text(json.dumps(results))
    capsys.readouterr()
    parse_test_res.main([str(tmp_path / "zs"), "--test-log"])
    assert "accuracy: 12.30%" in capsys.readouterr().out  # to 0.1, as the log prints it


# ----- state carried by checkpoints (unit level) ---------------------------------------------
def test_run_state_round_trips_the_grad_scaler_and_rng_states(tmp_path):
    from engine.trainer import TrainerBase

    def trainer_with_scaler(steps):
        trainer = TrainerBase()
        w = torch.nn.Parameter(torch.ones(2))
        trainer.register_model("prompt_learner", torch.nn.Linear(1, 1), torch.optim.SGD([w], lr=0.1), None)
        trainer.set_precision(Precision("amp", torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1), "cpu"))
        for _ in range(steps):
            trainer.model_backward_and_update((w * w).sum())
        return trainer

    saved = trainer_with_scaler(steps=2)  # the scale grew twice: 4096
    torch.manual_seed(0)
    torch.save(saved.run_state(), tmp_path / "state.pt")
    expected = torch.rand(3)

    resumed = trainer_with_scaler(steps=0)
    torch.manual_seed(123)
    resumed.restore_run_state(torch.load(tmp_path / "state.pt", weights_only=True))
    assert resumed.scaler.get_scale() == saved.scaler.get_scale() == 4096.0
    assert torch.equal(torch.rand(3), expected)


def test_run_killed_between_two_models_saves_resumes_both_from_the_earlier_epoch(tmp_path, capsys):
    from engine.trainer import TrainerBase

    def trainer():
        t = TrainerBase()
        t.register_model("prompt_learner", torch.nn.Linear(2, 2))
        t.register_model("Memory", torch.nn.Linear(2, 2))
        return t

    def save(name, epoch, value):
        weights = {"weight": torch.full((2, 2), value), "bias": torch.full((2,), value)}
        save_checkpoint({"state_dict": weights, "epoch": epoch}, str(tmp_path / name))

    for epoch in (1, 2):
        save("prompt_learner", epoch, float(epoch))
    save("Memory", 1, 1.0)  # killed before Memory's epoch-2 file was written
    resumed = trainer()
    assert resumed.resume_model_if_exist(str(tmp_path)) == 1
    assert "model.pth.tar-2\" is newer than the other models' checkpoints" in capsys.readouterr().out
    for name in ("prompt_learner", "Memory"):
        assert torch.equal(resumed._models[name].weight, torch.ones(2, 2))

    (tmp_path / "prompt_learner" / "model.pth.tar-1").unlink()
    with pytest.raises(RuntimeError, match=r"disagree on where training stood \(\{'prompt_learner': '2 epochs done', 'Memory': '1 epochs done'\}\) .* is missing"):
        trainer().resume_model_if_exist(str(tmp_path))
