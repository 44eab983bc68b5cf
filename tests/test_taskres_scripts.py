"""TaskRes user path on generated data: few-shot sweep script (regular), enhanced-base training, TaskRes*
on that base, and the parse_test_res --fewshot table."""
import os
import subprocess

import pytest
import torch

import parse_test_res
from tests import tiny_run
from tests.tiny_run import REPO, run as _run


def _final_accuracy(log):
    with open(log) as f:
        return tiny_run.accuracy(f.read())


@pytest.mark.slow
def test_fewshot_scripts_enhanced_base_and_table(tmp_path, pets_root, tiny_vit_path, capsys):
    out = tmp_path / "output"
    env = tiny_run.script_env(pets_root, out, DATASETS="oxford_pets", SHOTS_LIST="1",
                              STRONG_BASE=str(tmp_path / "strong_base"))
    opts = tiny_run.tiny_opts(tiny_vit_path, batch=None, shots=None, epochs=1)
    _run(["bash", "scripts/taskres/train_regular.sh", *opts], dict(env, SEEDS="1 2"))
    runs = out / "FINAL/debug/oxford_pets/adam_lr2e-3_B256_ep100_1shots"
    assert sorted(os.listdir(runs)) == ["seed1", "seed2"]
    log1 = (runs / "seed1/log.txt").read_text()
    assert "RESIDUAL_SCALE: 0.5" in log1 and "NUM_SHOTS: 1" in log1 and ">> Use regular base!" in log1
    assert (runs / "seed1/prompt_learner/model.pth.tar-1").exists()

    # TaskRes* reads its base where enhanced_base.sh writes it
    res = subprocess.run(["bash", "scripts/taskres/train_enhance.sh", *opts], cwd=REPO, env=env, capture_output=True,
                         text=True)
    base_file = tmp_path / "strong_base/OxfordPets/rn50_1shots/model.pth.tar"
    assert res.returncode == 1
    assert f"No enhanced base at {base_file}: train one with scripts/taskres/enhanced_base.sh oxford_pets 1" in res.stderr

    # the enhanced base: only the text projection trains; written in the released bases' format
    stdout = _run(["bash", "scripts/taskres/enhanced_base.sh", "oxford_pets", "1", *opts], env)
    assert f"Enhanced base written to {base_file}" in stdout
    state = torch.load(base_file, weights_only=True)["state_dict"]
    assert list(state) == ["weight"] and state["weight"].shape == (32, 64)

    enhanced_log = (out / "strong_base/oxford_pets/adam_lr1e-4_B256_ep100_1shots/seed1/log.txt").read_text()
    assert "Training an enhanced base" in enhanced_log and "  LR: 0.0001\n" in enhanced_log

    assert parse_test_res.main(["--fewshot", str(out / "FINAL/debug")]) == 0
    table = capsys.readouterr().out
    accs = [_final_accuracy(runs / f"seed{s}/log.txt") for s in (1, 2)]
    row = [line.split() for line in table.splitlines() if line.strip().startswith("1 ")]
    assert "oxford_pets" in table and row[0][:2] == ["1", f"{sum(accs) / 2:.2f}"]

    again = _run(["bash", "scripts/taskres/main.sh", "oxford_pets", "adam_lr2e-3_B256_ep100", "none", "1", "0.5",
                  *opts], dict(env, SEEDS="1"))
    assert "Oops! The results exist" in again
