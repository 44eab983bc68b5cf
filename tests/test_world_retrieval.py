"""RLCF retrieval in the generated world: scripts/world/retrieval.sh over seeds (tiny CLIPs in place of
the world CLIPs) and its table (python -m tools.world.retrieval --summarize)."""
import json
import os
import statistics
import subprocess
import sys

import pytest

from tools.world.retrieval import main, summarize

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_results(folder, metrics):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump(metrics, f)


def test_summarize_gives_mean_and_sample_std_over_seeds(tmp_path):
    for seed, base in ((0, 40.0), (1, 50.0), (2, 45.0)):
        run = tmp_path / f"seed{seed}"
        write_results(run / "zero_shot", {"txt_r1": base, "txt_r5": base + 30, "img_r1": base - 10,
                                          "img_r5": base + 20, "r_mean": 0.0})
        write_results(run / "tta_clip_world_ret_01" / "image2text", {"txt_r1": base + 1, "txt_r5": base + 31})
        write_results(run / "tta_clip_world_ret_01" / "text2image", {"img_r1": base - 9, "img_r5": base + 21})
    rows, table = summarize(str(tmp_path), [0, 1, 2])
    assert rows["zero-shot"]["txt_r1"] == [40.0, 50.0, 45.0] and rows["RLCF"]["img_r5"] == [61.0, 71.0, 66.0]
    std = statistics.stdev([40.0, 50.0, 45.0])  # 5.0
    assert f"| zero-shot | 45.0 ± {std:.1f} | 75.0 ± {std:.1f} | 35.0 ± {std:.1f} | 65.0 ± {std:.1f} |" in table
    assert f"| RLCF | 46.0 ± {std:.1f} | 76.0 ± {std:.1f} | 36.0 ± {std:.1f} | 66.0 ± {std:.1f} |" in table
    with open(tmp_path / "results.json") as f:
        assert json.load(f) == {"seeds": [0, 1, 2], "rows": rows}


def test_summarize_names_a_missing_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--summarize", str(tmp_path), "--seeds", "3"])
    err = capsys.readouterr().err
    assert f"{tmp_path / 'seed3' / 'zero_shot' / 'results.json'} does not exist" in err
    assert "scripts/world/retrieval.sh" in err


@pytest.mark.slow
def test_script_runs_zero_shot_and_rlcf(tmp_path, tiny_vit_path, tiny_teacher_path):
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), SEEDS="1", IMAGES="6", STUDENT=tiny_vit_path, REWARD=tiny_teacher_path,
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    res = subprocess.run(["bash", "scripts/world/retrieval.sh", "--tta_steps", "1", "--sample_k", "3"], cwd=REPO,
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "| RLCF |" in res.stdout and "| zero-shot |" in res.stdout
    with open(out / "results.json") as f:
        rows = json.load(f)["rows"]
    for row in ("zero-shot", "RLCF"):
        assert all(len(v) == 1 and all(0 <= x <= 100 for x in v) for v in rows[row].values())
    run = json.loads((out / "seed1" / "tta_clip_world_ret_01" / "image2text" / "run.json").read_text())["config"]
    assert run["lr"] == 1e-6 and run["weight_decay"] == 5e-4 and run["tta_steps"] == 1  # the recipe, then the extras
    assert (out / "seed1" / "data" / "world_retrieval" / "world_retrieval_test.json").is_file()
