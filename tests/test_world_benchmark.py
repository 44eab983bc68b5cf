"""scripts/world/benchmark.sh and tools/world/benchmark.py: every method in the generated world, one command."""
import json
import os
import subprocess
import sys

import pytest

from scripts.world import benchmark_effects as effects
from scripts.world import benchmark_report as benchmark
from tools.world.tta_folders import write_tta_folders
from tools.world.data import DATASETS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "world", "benchmark.sh")


def script_env(tmp_path, **extra):
    env = dict(os.environ, OUT=str(tmp_path / "bench"), TEXTREFINER_WORLD_CACHE=str(tmp_path / "cache"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""), **extra)
    for key in ("WORLD_CLIP", "WORLD_CLIP_LARGE", "METHODS", "DATASETS", "SEEDS", "SHOTS", "EPOCHS"):
        if key not in extra:
            env.pop(key, None)  # the script's defaults, not the caller's environment
    return env


@pytest.mark.parametrize("path, name", [
    ("ZeroshotCLIP/world_ctxv1", "ZeroshotCLIP"),
    ("CoOp/world_ctxv1_16shots/nctx4_cscFalse_ctpend", "CoOp"),
    ("shots_16_8.0/KgCoOp/world_ctxv1", "KgCoOp"),
    ("TextRefiner/world_ctxv1_16shots/nctx4_cscFalse_ctpend", "TextRefiner"),
    ("TextRefiner/world_kgcoop_ctxv1_16shots/nctx4_cscFalse_ctpend", "TextRefiner-KgCoOp"),
    ("shots_16/TextRefiner/world_maple_2ctx", "TextRefiner-MaPLe"),
    ("shots_0/PromptKD/world_4+4ctx", "PromptKD"),
    ("shots_16/TextRefiner/world_promptkd_4+4ctx", "TextRefiner-PromptKD"),
])
def test_method_names_of_the_run_folders(path, name):
    assert benchmark.method_name(path) == name


def test_tta_folders_hold_the_first_test_images_of_each_class(tmp_path):
    root = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "tools.world.data", "--root", str(root), "--names", "world_objects_noisy"],
                   cwd=REPO, check=True, capture_output=True)
    write_tta_folders(str(root), str(tmp_path / "tta"), 2, ["world_objects_noisy"])
    test = tmp_path / "tta" / "world_objects_noisy" / "test"
    classes = sorted(p.name for p in test.iterdir())
    assert len(classes) == len(DATASETS["WorldObjectsNoisy"].classes) == 64
    assert all(sorted(p.name for p in (test / c).iterdir()) == ["test_000.png", "test_001.png"] for c in classes)
    lines = (tmp_path / "tta" / "world_objects_noisy" / "classnames.txt").read_text().splitlines()
    assert "red_circle red circle" in lines and len(lines) == 64
    with pytest.raises(ValueError, match='Unknown world data set "world_moon"'):
        write_tta_folders(str(root), str(tmp_path / "tta"), 1, ["world_moon"])


@pytest.mark.parametrize("env, message", [
    ({"METHODS": "CoOp Coop"}, 'Unknown method "Coop" in METHODS: choose from ZeroshotCLIP CoOp'),
    ({"TTA_SETTING": "imagenet"}, 'Unknown TTA_SETTING "imagenet": image-folder'),
])
def test_an_unknown_value_is_named_before_anything_runs(tmp_path, env, message):
    res = subprocess.run(["bash", SCRIPT], cwd=REPO, env=script_env(tmp_path, **env), capture_output=True, text=True)
    assert res.returncode == 2
    assert message in res.stderr
    assert not (tmp_path / "bench" / "output").exists()


@pytest.mark.slow
def test_reduced_benchmark_runs_every_method_and_writes_the_tables_plots_and_results(tmp_path):
    """One data set, one seed, one epoch, 1-shot few-shot, 1 shifted image per class and 10 views for
    TTA, a 12-image retrieval set, captioning on 8 training and 2 test images with a 3-step decoder,
    every method; the reward / teacher CLIP is the default world CLIP here (the large one only
    changes which file is read)."""
    cache = str(tmp_path / "cache")
    expand = dict(os.environ, TEXTREFINER_WORLD_CACHE=cache)
    clip = subprocess.run([sys.executable, "-m", "tools.world.pretrain", "--print-path"], cwd=REPO, env=expand,
                          check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    env = script_env(tmp_path, DATASETS="world_shapes", SEEDS="1", EPOCHS="1", SHOTS="4", SHOTS_LIST="1",
                     TTA_PER_CLASS="1", TTA_VIEWS="10", WORLD_CLIP_LARGE=clip, RETRIEVAL_IMAGES="12",
                     CAPTION_OPTS="--train-images 8 --test-images 2 --tta-steps 1 --opt-steps 3 --no-coco-metrics")
    res = subprocess.run(["bash", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = tmp_path / "bench"
    for protocol in benchmark.PROTOCOLS:
        assert (out / f"{protocol}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{protocol}.md").read_text() in res.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["methods"] == list(benchmark.METHODS) and results["wall_time_s"] > 0
    b2n = results["base2new"]
    assert set(b2n) == {m for m in benchmark.METHODS[:13]}
    for method, cells in b2n.items():
        row = cells["world_shapes"]
        assert row["seeds"] == 1 and 0 <= row["new"] <= 100 and row["base_values"] == [row["base"]], method
        assert f"| world_shapes | {method} | {row['base']:.2f} ± 0.00 |" in (out / "base2new.md").read_text()
    few = results["fewshot"]["world_shapes"]
    assert set(few["TaskRes"]) == set(few["LinearProbe"]) == {"1"} and few["ZeroshotCLIP"]["values"]
    kd = results["promptkd"]
    assert {"PromptSRC (large CLIP, teacher)", "PromptKD", "TextRefiner-PromptKD"} <= set(kd)
    # the students keep their scripts' shots, not the teacher's SHOTS: PromptKD the whole train split
    runs = out / "output" / "base2new" / "train_base" / "world_shapes"
    assert sorted(p.name for p in (runs / "shots_0").iterdir()) == ["PromptKD"]
    assert (runs / "shots_16" / "TextRefiner" / "world_promptkd_4+4ctx").is_dir()
    tta = results["tta"]
    assert set(tta) == {"world_objects_sketch", "world_objects_cartoon", "world_objects_noisy"}
    assert all(set(cell) == {"ZeroshotCLIP", "TPT", "RLCF-prompt", "RLCF-tune"} for cell in tta.values())
    # 64 classes, one image each: accuracies are multiples of 1/64
    assert all(round(s["mean"] * 64 / 100, 2).is_integer() for cell in tta.values() for s in cell.values())
    retrieval = results["retrieval"]
    assert set(retrieval) == {"zero-shot", "RLCF"}
    for name, cell in retrieval.items():  # 12 images, 60 captions: image->text R@1 in twelfths, text->image in sixtieths
        assert set(cell) == set(benchmark.RETRIEVAL_METRICS) and len(cell["txt_r1"]["values"]) == 1
        assert round(cell["txt_r1"]["mean"] * 12 / 100, 6).is_integer()
        assert round(cell["img_r1"]["mean"] * 60 / 100, 6).is_integer()
        assert cell["txt_r1"]["mean"] <= cell["txt_r5"]["mean"] and cell["img_r1"]["mean"] <= cell["img_r5"]["mean"]
        assert f"| {name} | {cell['txt_r1']['mean']:.2f} ± 0.00 |" in (out / "retrieval.md").read_text()
    assert (out / "output" / "retrieval" / "seed1" / "tta_clip_world_ret_01" / "text2image" / "results.json").is_file()
    captioning = results["captioning"]
    assert set(captioning) == {"sketch"}
    assert set(captioning["sketch"]) == {"CapDec", "CapDec + RLCF", "ClipCap", "ClipCap + RLCF"}
    for name, cell in captioning["sketch"].items():
        assert set(cell) == {"CLIPScore"} and len(cell["CLIPScore"]["values"]) == 1, name  # no java metrics here
        assert f"| sketch | {name} | {cell['CLIPScore']['mean']:.2f} ± 0.00 |" in (out / "captioning.md").read_text()


def b2n_cell(base, new):
    return {"base": sum(base) / len(base), "new": sum(new) / len(new), "base_values": base, "new_values": new}


def test_effects_follow_the_fixed_rule(tmp_path):
    """The effects table: the sign of the real difference and the seed std decide; "recovers" only
    where CoOp loses on new."""
    results = {
        "base2new": {"ZeroshotCLIP": {"s": b2n_cell([80.0], [70.0]), "t": b2n_cell([80.0], [70.0])},
                     "CoOp": {"s": b2n_cell([90.0, 92.0, 94.0], [60.0, 61.0, 62.0]),
                              "t": b2n_cell([79.0, 80.0, 81.5], [71.0, 72.0, 73.0])},
                     "TextRefiner": {"s": b2n_cell([88.0, 89.0, 90.0], [62.0, 63.0, 64.0]),
                                     "t": b2n_cell([80.0, 80.0, 80.0], [72.0, 72.0, 72.0])}},
        "fewshot": {"s": {"ZeroshotCLIP": {"values": [50.0]},
                          "TaskRes": {"1": {"values": [49.0, 51.0, 52.0]}, "16": {"values": [60.0, 61.0, 62.0]}}}},
        "tta": {"a": {"ZeroshotCLIP": {"values": [40.0]}, "TPT": {"values": [41.0, 42.0, 43.0]}},
                "b": {"ZeroshotCLIP": {"values": [50.0]}, "TPT": {"values": [51.0, 52.0, 53.0]}}},
        "retrieval": {"zero-shot": {"txt_r1": {"values": [40.0, 44.0, 42.0]}, "img_r1": {"values": [30.0, 30.0, 30.0]}},
                      "RLCF": {"txt_r1": {"values": [41.0, 45.0, 43.0]}, "img_r1": {"values": [33.0, 33.0, 33.0]}}},
        "captioning": {"sketch": {"CapDec": {"CIDEr": {"values": [10.0, 12.0]}},
                                  "CapDec + RLCF": {"CIDEr": {"values": [8.0, 9.0]}},
                                  "ClipCap": {"CLIPScore": {"values": [1.0, 2.0]}},
                                  "ClipCap + RLCF": {"CLIPScore": {"values": [3.0, 4.0]}}}},
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert effects.main([str(tmp_path)]) == 0
    table = (tmp_path / "effects.md").read_text()
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line.split("|")[-2].strip()
            for line in table.splitlines()[2:]}
    assert rows[("CoOp gains on base against zero-shot", "s")] == "yes"  # +12, std 1.63
    assert rows[("CoOp loses on new against zero-shot", "s")] == "yes"  # -9, std 0.82
    assert rows[("CoOp loses on new against zero-shot", "t")] == "no (opposite sign)"
    assert rows[("CoOp gains on base against zero-shot", "t")] == "no (within the seed std)"  # +0.17, std 1.03
    assert rows[("TextRefiner recovers most of CoOp's loss on new", "s")] == "no (under half)"  # 2 of 9
    assert "new 63.00 vs CoOp 61.00, zero-shot 70.00: 22% of the loss" in table
    assert rows[("TextRefiner recovers most of CoOp's loss on new", "t")] == "not applicable (no loss to recover)"
    assert rows[("TaskRes beats zero-shot (1 shots)", "s")] == "no (within the seed std)"
    assert rows[("TaskRes beats zero-shot (16 shots)", "s")] == "yes"
    assert rows[("TPT gains on the shifted sets", "mean of a, b")] == "yes"  # +2, std 0.82
    assert "| +3.61 (60.81 vs 57.20, OOD average) |" in table
    # +1 with a zero-shot std over the retrieval sets of 1.63: within it; +3 over stds of 0
    retrieval = "world retrieval sets (one per seed)"
    assert rows[("RLCF gains on retrieval, image→text R@1", retrieval)] == "no (within the seed std)"
    assert rows[("RLCF gains on retrieval, text→image R@1", retrieval)] == "yes"
    assert "| +6.60 (59.10 vs 52.50, COCO 5k) | +1.00 (std 1.63) |" in table
    assert rows[("RLCF gains on CapDec's captions (CIDEr)", "sketch test images")] == "no (opposite sign)"
    assert not any(effect.startswith("RLCF gains on ClipCap") for effect, _ in rows)  # no CIDEr without java
    assert effects.main([str(tmp_path / "none")]) == 1
