"""parse_test_res.py: the reference printout over seeds, and the base / new / harmonic-mean table."""
import json
import os
import subprocess
import sys

import pytest

import parse_test_res as ptr

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTING = "vit_b16_ep10_ctxv1_16shots/nctx4_cscFalse_ctpend"


def write_log(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def train_log(final, epoch_value=50.0):
    """A training log: a value before the end signal, a val result, then the final test."""
    return [
        "* accuracy: 11.0%",
        "epoch [1/2] batch [1/1] loss 1.0 acc 10.0",
        "=> result", "* total: 1,000", "* accuracy: 12.0%",
        "Finish training",
        "Deploy the model with the best val performance",
        "=> result", f"* accuracy: {epoch_value}%", "* error: 50.0%",
        "Evaluate on the *test* set",
        "=> result", "* total: 1,000", "* correct: 900", f"* accuracy: {final}%", "* macro_f1: 70.5%",
        "Elapsed: 0:00:01",
    ]


def eval_log(value):
    return ["Loading weights", "Evaluate on the *test* set", "=> result", "* total: 300",
            f"* accuracy: {value}%", "* macro_f1: 60.0%"]


def make_seeds(directory, values, lines=train_log):
    for i, value in enumerate(values, start=1):
        write_log(directory / f"seed{i}" / "log.txt", lines(value))


def run_cli(*args):
    return subprocess.run([sys.executable, "parse_test_res.py", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, check=False)


# ---- reference format -------------------------------------------------------------------------


def test_seeds_printout_exact_via_subprocess(tmp_path):
    exp = tmp_path / "exp"
    make_seeds(exp, [91.8, 92.0, 92.2])
    write_log(exp / "seed1" / "log.txt-2024-01-01-10-00-00", train_log(99.9))  # an earlier run: not read
    (exp / ".cache").mkdir()  # hidden entries are not runs
    res = run_cli(exp)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        f"Parsing files in {exp}",
        f"file: {exp}/seed1/log.txt. accuracy: 91.80%. ",
        f"file: {exp}/seed2/log.txt. accuracy: 92.00%. ",
        f"file: {exp}/seed3/log.txt. accuracy: 92.20%. ",
        "===",
        f"Summary of directory: {exp}",
        "* accuracy: 92.00% +- 0.16%",  # np.std, ddof 0
        "===",
    ]


def test_ci95_and_returned_mean(tmp_path, capsys):
    make_seeds(tmp_path, [91.8, 92.0, 92.2])
    assert ptr.main([str(tmp_path), "--ci95"]) == 0
    assert "* accuracy: 92.00% +- 0.18%" in capsys.readouterr().out.splitlines()  # 1.96 * std / sqrt(3)
    assert ptr.parse_function(str(tmp_path), ci95=True) == {"accuracy": pytest.approx(92.0)}
    summary = ptr.summarize_seeds(str(tmp_path))
    assert summary.values == [91.8, 92.0, 92.2]
    assert summary.std == pytest.approx(0.163299, abs=1e-6)
    assert summary.ci95 == pytest.approx(0.184791, abs=1e-6)
    assert ptr.compute_ci95([1.0, 3.0]) == pytest.approx(1.96 / 2 ** 0.5)


def test_last_match_after_end_signal_wins(tmp_path):
    log = tmp_path / "log.txt"
    write_log(log, train_log(77.7, epoch_value=55.5))
    assert ptr.read_metric(str(log)) == 77.7
    assert ptr.read_metric(str(log), keyword="macro_f1") == 70.5
    assert ptr.read_metric(str(log), end_signal=ptr.END_TEST) == 77.7
    write_log(log, train_log(77.7)[:5])  # stopped before "Finish training": the 11.0 / 12.0 never count
    assert ptr.read_metric(str(log)) is None
    assert ptr.read_metric(str(log), end_signal=ptr.END_TEST) == 12.0


def test_test_log_reads_eval_only_runs(tmp_path, capsys):
    make_seeds(tmp_path, [60.0, 70.0], lines=eval_log)
    assert ptr.main([str(tmp_path)]) == 1  # no "Finish training" in eval-only logs
    err = capsys.readouterr().err
    assert f"Nothing found in {tmp_path}" in err and "--test-log" in err
    assert ptr.main([str(tmp_path), "--test-log"]) == 0
    assert "* accuracy: 65.00% +- 5.00%" in capsys.readouterr().out.splitlines()


def test_run_without_result_is_left_out(tmp_path, capsys):
    make_seeds(tmp_path, [80.0, 90.0])
    write_log(tmp_path / "seed3" / "log.txt", train_log(0.0)[:5])  # unfinished
    assert ptr.main([str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "* accuracy: 85.00% +- 5.00%" in out.splitlines() and "seed3/log.txt" not in out
    assert f"{tmp_path}/seed3/log.txt; left out" in err


def test_keyword(tmp_path, capsys):
    make_seeds(tmp_path, [80.0, 90.0])
    assert ptr.main([str(tmp_path), "--keyword", "macro_f1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"file: {tmp_path}/seed1/log.txt. macro_f1: 70.50%. " in out
    assert "* macro_f1: 70.50% +- 0.00%" in out


def test_multi_exp_average(tmp_path, capsys):
    make_seeds(tmp_path / "exp-1", [70.0, 90.0])
    make_seeds(tmp_path / "exp-2", [60.0, 61.0, 62.0])
    assert ptr.main([str(tmp_path), "--multi-exp"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Parsing files in {tmp_path}/exp-1"
    assert out[4:7] == [f"Summary of directory: {tmp_path}/exp-1", "* accuracy: 80.00% +- 10.00%", "==="]
    assert out[-5:] == [f"Summary of directory: {tmp_path}/exp-2", "* accuracy: 61.00% +- 0.82%", "===",
                        "Average performance", "* accuracy: 70.50%"]
    assert ptr.parse_multi_exp(str(tmp_path)) == {"accuracy": pytest.approx(70.5)}


def test_layout_errors_name_the_folder(tmp_path, capsys):
    make_seeds(tmp_path, [80.0])
    (tmp_path / "seed2").mkdir()
    with pytest.raises(ptr.ParseError, match=f"{tmp_path}/seed2 has no log.txt"):
        ptr.summarize_seeds(str(tmp_path))
    assert ptr.main([str(tmp_path)]) == 1
    assert f"error: {tmp_path}/seed2 has no log.txt" in capsys.readouterr().err
    (tmp_path / "seed2").rmdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ptr.ParseError, match="notes.txt is not a folder"):
        ptr.summarize_seeds(str(tmp_path))
    with pytest.raises(ptr.ParseError, match="missing is not a folder"):
        ptr.summarize_seeds(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ptr.ParseError, match="empty is empty"):
        ptr.parse_multi_exp(str(tmp_path / "empty"))


def test_cli_argument_errors(tmp_path):
    res = run_cli()
    assert res.returncode == 2 and "give either DIRECTORY or --base2new OUTPUT" in res.stderr
    res = run_cli(tmp_path, "--trainer", "CoOp")
    assert res.returncode == 2 and "--trainer, --std and --plot only apply to --base2new" in res.stderr
    res = run_cli("--base2new", tmp_path, "--test-log")
    assert res.returncode == 2 and "do not apply to --base2new" in res.stderr


# ---- base-to-new ------------------------------------------------------------------------------

RESULTS = {  # trainer -> dataset -> (base per seed, new per seed)
    "CoOp": {"caltech101": ([96.0, 97.0, 98.0], [90.0, 91.0, 92.0]),
             "oxford_pets": ([90.0, 92.0, 94.0], [94.0, 96.0, 98.0])},
    "TextRefiner": {"caltech101": ([98.0, 98.0], [94.0, 95.0]),
                    "oxford_pets": ([80.0, 82.0], [60.0, 62.0])},
}


def make_base2new(root, results=RESULTS, setting=SETTING):
    for trainer, datasets in results.items():
        for dataset, (bases, news) in datasets.items():
            sub = f"{dataset}/{trainer}/{setting}"
            make_seeds(root / "train_base" / sub, bases)
            make_seeds(root / "test_new" / sub, news, lines=eval_log)


def block_rows(out, title):
    """{first cell: other cells} of the table printed under the line `title`."""
    lines = out.splitlines()
    start = lines.index(title) + 3  # title, header, rule
    rows = {}
    for line in lines[start:]:
        if not line or line.startswith("note:"):
            break
        name, *cells = line.split()
        rows[name] = cells
    return rows


def test_base2new_table_two_trainers(tmp_path, capsys):
    make_base2new(tmp_path)
    assert ptr.main(["--base2new", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "note:" not in out
    coop = block_rows(out, f"CoOp/{SETTING}")
    assert coop == {"caltech101": ["97.00", "91.00", "93.90", "3"],
                    "oxford_pets": ["92.00", "96.00", "93.96", "3"],
                    "Average": ["94.50", "93.50", "94.00"]}  # H of the averages; the mean of the H is 93.93
    tr = block_rows(out, f"TextRefiner/{SETTING}")
    assert tr == {"caltech101": ["98.00", "94.50", "96.22", "2"],
                  "oxford_pets": ["81.00", "61.00", "69.59", "2"],
                  "Average": ["89.50", "77.75", "83.21"]}  # the mean of the H would be 82.90
    averages = block_rows(out, "Averages (H of the averaged Base and New)")
    assert averages == {f"CoOp/{SETTING}": ["2", "94.50", "93.50", "94.00"],
                        f"TextRefiner/{SETTING}": ["2", "89.50", "77.75", "83.21"]}

    blocks = ptr.collect_base2new(str(tmp_path))
    assert [b.method for b in blocks] == [f"CoOp/{SETTING}", f"TextRefiner/{SETTING}"]
    row = blocks[1].rows[0]
    assert (row.dataset, row.base, row.new, row.seeds) == ("caltech101", 98.0, 94.5, ["seed1", "seed2"])
    assert row.h == pytest.approx(2 * 98.0 * 94.5 / (98.0 + 94.5))
    assert blocks[1].average().h == pytest.approx(2 * 89.5 * 77.75 / (89.5 + 77.75))


def test_base2new_missing_counterparts_are_reported(tmp_path):
    make_base2new(tmp_path)
    new = tmp_path / "test_new"
    for path in sorted((new / f"oxford_pets/TextRefiner/{SETTING}").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (new / f"oxford_pets/TextRefiner/{SETTING}").rmdir()
    (new / f"caltech101/CoOp/{SETTING}/seed3/log.txt").unlink()
    (new / f"caltech101/CoOp/{SETTING}/seed3").rmdir()
    write_log(new / f"oxford_pets/CoOp/{SETTING}/seed4/log.txt", eval_log(10.0))
    write_log(new / f"oxford_pets/CoOp/{SETTING}/seed2/log.txt", ["=> result"])  # no value

    res = run_cli("--base2new", tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert block_rows(out, f"TextRefiner/{SETTING}") == {  # only caltech101 left
        "caltech101": ["98.00", "94.50", "96.22", "2"], "Average": ["98.00", "94.50", "96.22"]}
    assert block_rows(out, f"CoOp/{SETTING}") == {
        "caltech101": ["96.50", "90.50", "93.40", "2"],  # seeds 1-2
        "oxford_pets": ["92.00", "96.00", "93.96", "2"],  # seeds 1 and 3
        "Average": ["94.25", "93.25", "93.75"]}
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    coop_new = f"{new}/oxford_pets/CoOp/{SETTING}"
    assert notes == [
        f"note: caltech101: seed3 only in train_base ({new}/caltech101/CoOp/{SETTING}/seed3 is missing); left out",
        (f"note: oxford_pets: seed4 only in test_new ({tmp_path}/train_base/oxford_pets/CoOp/{SETTING}/seed4"
         " is missing); left out"),
        (f"note: oxford_pets: no '* accuracy: X%' after '=> result' in {coop_new}/seed2/log.txt (unfinished run?);"
         " seed left out"),
        (f"note: oxford_pets: missing {new}/oxford_pets/TextRefiner/{SETTING} (run base2new_test.sh for oxford_pets);"
         " row skipped"),
    ]


def test_base2new_trainer_filter_and_other_layouts(tmp_path, capsys):
    make_base2new(tmp_path)
    # CoCoOp's layout: train_base/<dataset>/shots_16/CoCoOp/<cfg>/seed<S>
    make_base2new(tmp_path, {"CoCoOp": {"dtd": ([70.0], [50.0])}}, setting="c4")
    for tree in ("train_base", "test_new"):
        os.renames(tmp_path / tree / "dtd" / "CoCoOp", tmp_path / tree / "dtd" / "shots_16" / "CoCoOp")
    assert ptr.main(["--base2new", str(tmp_path), "--trainer", "CoCoOp", "--trainer", "TextRefiner"]) == 0
    out = capsys.readouterr().out
    assert block_rows(out, "shots_16/CoCoOp/c4") == {"dtd": ["70.00", "50.00", "58.33", "1"],
                                                      "Average": ["70.00", "50.00", "58.33"]}
    assert f"TextRefiner/{SETTING}" in out.splitlines() and f"CoOp/{SETTING}" not in out.splitlines()

    assert ptr.main(["--base2new", str(tmp_path), "--trainer", "MaPLe"]) == 1
    assert "no seed* folders for trainer MaPLe" in capsys.readouterr().err
    with pytest.raises(ptr.ParseError, match=f"found: CoOp/{SETTING}, TextRefiner/{SETTING}, shots_16/CoCoOp/c4"):
        ptr.collect_base2new(str(tmp_path), trainers=["MaPLe"])
    with pytest.raises(ptr.ParseError, match="has neither train_base/ nor test_new/"):
        ptr.collect_base2new(str(tmp_path / "train_base"))


def test_base2new_without_any_pair_fails(tmp_path, capsys):
    make_seeds(tmp_path / "train_base" / "dtd" / "CoOp" / "cfg", [70.0])
    assert ptr.main(["--base2new", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "(no data set has both a base and a new result)" in out
    assert f"note: dtd: missing {tmp_path}/test_new/dtd/CoOp/cfg (run base2new_test.sh for dtd); row skipped" in out
    assert ptr.harmonic_mean(0.0, 0.0) == 0.0


# ---- mean ± std, zero-shot base runs, plots ----------------------------------------------------


def zero_shot_log(value):
    """An eval-only run's log (zero-shot CLIP on the base classes): no "Finish training"."""
    return ["** Arguments **", "eval_only: True", "Evaluate on the *test* set", "=> result", f"* accuracy: {value}%"]


def test_base2new_std_and_zero_shot_base_runs(tmp_path, capsys):
    make_base2new(tmp_path)
    make_seeds(tmp_path / "train_base/dtd/ZeroshotCLIP/cfg", [60.0], lines=zero_shot_log)
    make_seeds(tmp_path / "test_new/dtd/ZeroshotCLIP/cfg", [40.0], lines=eval_log)
    assert ptr.main(["--base2new", str(tmp_path), "--std"]) == 0
    out = capsys.readouterr().out
    assert "mean ± std over seeds" in out
    coop = [line for line in out.splitlines() if line.startswith("caltech101")][0]
    # base 96/97/98 (std 0.82), new 90/91/92, H per seed 92.9/93.9/94.9 (std 0.82)
    assert coop.split()[1:10] == ["97.00", "±", "0.82", "91.00", "±", "0.82", "93.90", "±", "0.82"]
    zs = block_rows(out, "ZeroshotCLIP/cfg")["dtd"]
    assert zs == ["60.00", "±", "0.00", "40.00", "±", "0.00", "48.00", "±", "0.00", "1"]


def test_base2new_plot_writes_a_png(tmp_path, capsys):
    make_base2new(tmp_path)
    png = tmp_path / "plots" / "b2n.png"
    assert ptr.main(["--base2new", str(tmp_path), "--plot", str(png)]) == 0
    assert f"Wrote the plot to {png}" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_base2new_plot_without_matplotlib_says_how_to_install(tmp_path, capsys, monkeypatch):
    make_base2new(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    png = tmp_path / "b2n.png"
    assert ptr.main(["--base2new", str(tmp_path), "--plot", str(png)]) == 1
    captured = capsys.readouterr()
    assert "--plot needs matplotlib, which is not installed: `pip install -r requirements.txt`" in captured.err
    assert "caltech101" in captured.out and not png.exists()  # the table is still printed


def test_base2new_leaves_out_a_new_result_of_an_earlier_base_checkpoint(tmp_path, capsys):
    # what train.py records: test_new/.../seed1 evaluated train_base/.../seed1's checkpoint, which was
    # replaced since (the base was trained again)
    make_base2new(tmp_path, {"CoOp": {"dtd": ([70.0, 72.0], [50.0, 52.0])}}, setting="cfg")
    base = tmp_path / "train_base/dtd/CoOp/cfg"
    for seed in ("seed1", "seed2"):
        ckpt = base / seed / "prompt_learner" / "model-best.pth.tar"
        ckpt.parent.mkdir()
        ckpt.write_bytes(b"the evaluated checkpoint")
        model = {"dir": str(base / seed), "files": {"prompt_learner/model-best.pth.tar": ptr.sha256_file(ckpt)}}
        (tmp_path / "test_new/dtd/CoOp/cfg" / seed / "run.json").write_text(json.dumps({"model": model}))
    (base / "seed1/prompt_learner/model-best.pth.tar").write_bytes(b"trained again")
    assert ptr.main(["--base2new", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert block_rows(out, "CoOp/cfg")["dtd"] == ["72.00", "52.00", "60.39", "1"]
    assert (f"note: dtd: {tmp_path}/test_new/dtd/CoOp/cfg/seed1 evaluated an earlier prompt_learner/model-best.pth.tar "
            f"of {base}/seed1 (it was trained again since): rerun the test script to evaluate the current one; "
            "seed1 left out") in out
