"""Results over seeds from the log.txt files that train.py writes, and the base-to-new table.

Seeds of one experiment (same flags and printout as CoOp's parse_test_res.py):

    python parse_test_res.py output/my_experiment                 # my_experiment/seed*/log.txt
    python parse_test_res.py output/my_experiment --ci95          # 95% confidence interval, not std
    python parse_test_res.py output/evaluation/... --test-log     # eval-only runs
    python parse_test_res.py output/my_experiment --multi-exp     # my_experiment/<exp>/seed*/log.txt

Every non-hidden entry of the folder, in sorted order, must be a run folder holding log.txt
(log.txt-<timestamp> files of earlier runs are not read). A run's results.json (written by
train.py, also after a resume) is read first; the log is read when there is none. A value counts only after the end
signal ("Finish training", or "=> result" with --test-log) and the last one wins: the final test.
Runs whose results.json name another data set, trainer or config (setting_digest: the config
without the seed) than the others are refused, naming them; a run that evaluated untrained
parameters ("untrained": true) is left out with a warning.

Base-to-new generalisation (what scripts/*/base2new_{train,test}.sh write):

    python parse_test_res.py --base2new output/base2new [--trainer TextRefiner] [--keyword accuracy]

pairs every OUTPUT/train_base/<dataset>/<path>/seed<S> (Base: final test after training) with
OUTPUT/test_new/<dataset>/<path>/seed<S> (New: eval-only) and prints, per <path> (trainer and
setting, e.g. TextRefiner/vit_b16_ep10_ctxv1_16shots/nctx4_cscFalse_ctpend), one row per data set
with Base, New and H = 2*Base*New/(Base+New) of the seed means. The Average row averages Base and
New over the data sets and takes H of those averages. Only seeds present in both trees are used.
With several methods, their averages and a side-by-side table (a column of Base / New / H per
method) follow. A base run may also be an eval-only run (zero-shot CLIP: its log says "eval_only: True"); its
value is then the test result. A row whose seeds mix experiments is skipped with a note, and a New
result that evaluated an earlier checkpoint of its Base run (run.json: trained again since) is
left out with a note. Options:

    --std        each cell "mean ± std" over seeds (H: std of the per-seed H)
    --plot FILE  also draw Base, New and H per method and data set into FILE (PNG; needs matplotlib)

Few-shot tables (TaskRes layout, OUTPUT/<dataset>/<cfg>_<K>shots/seed<S>/log.txt): one row per
number of shots, one column per data set (final-test mean over seeds), and their average:

    python parse_test_res.py --fewshot output/FINAL/debug
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
from dataclasses import dataclass, field

import numpy as np
from tabulate import tabulate

from engine.run_manifest import read_manifest, sha256_file

END_TRAIN = "Finish training"
END_TEST = "=> result"
LOG_NAME = "log.txt"
BASE_TREE = "train_base"
NEW_TREE = "test_new"
SEED_PREFIX = "seed"
COLALIGN = ("left", "right", "right", "right", "right")


class ParseError(ValueError):
    """A results folder that cannot be read; the message names it and says how to fix it."""


def compute_ci95(values):
    return 1.96 * np.std(values) / np.sqrt(len(values))


def harmonic_mean(base, new):
    return 0.0 if base + new == 0 else 2 * base * new / (base + new)


def listdir_nohidden(path):
    return sorted(name for name in os.listdir(path) if not name.startswith("."))


def _metric_lines(fpath, keyword):
    """(line, value or None) for every line of a log; value is X of a `* <keyword>: X%` line."""
    regex = re.compile(rf"\* {re.escape(keyword)}: ([\.\deE+-]+)%")
    with open(fpath, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            match = regex.search(line)
            if match is None:
                yield line, None
                continue
            try:
                yield line, float(match.group(1))
            except ValueError:
                raise ParseError(f"{fpath}: '{line}' does not hold a number") from None


def read_metric(fpath, keyword="accuracy", end_signal=END_TRAIN):
    """The last `* <keyword>: X%` value after the line `end_signal` in one log, or None."""
    started, value = False, None
    for line, metric in _metric_lines(fpath, keyword):
        started = started or line == end_signal
        if started and metric is not None:
            value = metric
    return value


def read_results_json(run_dir):
    """The results.json of a run folder as a dict, or None when there is none."""
    fpath = osp.join(run_dir, "results.json")
    if not osp.isfile(fpath):
        return None
    try:
        with open(fpath, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ParseError(f"{fpath} cannot be read ({e}): delete it to fall back to {LOG_NAME}") from None


def results_json_metric(log_path, keyword="accuracy", end_signal=END_TRAIN):
    """The final-evaluation ``keyword`` of the results.json beside ``log_path`` (to 0.1), or None.

    None when there is no such file, it has no final value for keyword, or it records an
    eval-only run where a training run is asked for (end_signal "Finish training").
    """
    results = read_results_json(osp.dirname(log_path))
    if results is None:
        return None
    if end_signal == END_TRAIN and results.get("eval_only"):
        return None
    value = results.get(keyword)
    # rounded as the log prints it ("* accuracy: 91.2%"): tables agree whichever file is read
    return round(float(value), 1) if isinstance(value, (int, float)) else None


def run_metric(log_path, keyword="accuracy", end_signal=END_TRAIN):
    """The run's value: from results.json when it has one, else from the log."""
    value = results_json_metric(log_path, keyword, end_signal)
    return read_metric(log_path, keyword, end_signal) if value is None else value


def best_val_metric(fpath, keyword="accuracy"):
    """The best `* <keyword>: X%` among the val evaluations of a log, or None.

    PromptKD's base-to-novel runs (TRAINER.MODAL base2novel) evaluate the base classes as
    their val split, so the base accuracy is the best val result, not the final test.
    """
    best, in_val = None, False
    for line, metric in _metric_lines(fpath, keyword):
        if line.startswith("Evaluate on the *"):
            in_val = line.startswith("Evaluate on the *val* set")
        if in_val and metric is not None:
            best = metric if best is None else max(best, metric)
    return best


def is_base2novel_distillation(fpath):
    """Whether a log's config dump says TRAINER.MODAL base2novel."""
    with open(fpath, "r", encoding="utf-8", errors="replace") as f:
        return any(line.strip() == "MODAL: base2novel" for line in f)


def run_logs(directory):
    """Paths of <directory>/<run>/log.txt for every sorted non-hidden entry of directory."""
    if not osp.isdir(directory):
        raise ParseError(f"{directory} is not a folder: pass the folder that holds one sub-folder per seed")
    names = listdir_nohidden(directory)
    if not names:
        raise ParseError(f"{directory} is empty: it should hold one sub-folder per seed (seed1/, seed2/, ...)")
    logs = []
    for name in names:
        sub = osp.join(directory, name)
        if not osp.isdir(sub):
            raise ParseError(
                f"{sub} is not a folder: every non-hidden entry of {directory} must be a run folder "
                f"holding {LOG_NAME} (move the file elsewhere or prefix its name with '.')"
            )
        fpath = osp.join(sub, LOG_NAME)
        if not osp.isfile(fpath):
            raise ParseError(
                f"{sub} has no {LOG_NAME}: each sub-folder of {directory} must be one run "
                f"(finish or remove that run; for <exp>/<seed>/{LOG_NAME} folders use --multi-exp)"
            )
        logs.append(fpath)
    return logs


def is_untrained(run_dir):
    """Whether results.json says the run evaluated untrained parameters (TEST.ALLOW_UNTRAINED)."""
    results = read_results_json(run_dir)
    return bool(results and results.get("untrained"))


def _experiment(run_dir):
    """(data set, trainer, setting digest) of a run's results.json: equal for the seeds of one
    experiment; None without results.json (logs of an earlier version cannot be compared)."""
    results = read_results_json(run_dir)
    if results is None or "setting_digest" not in results:
        return None
    return results.get("dataset"), results.get("trainer"), results["setting_digest"]


def _config_difference(run_dir, other_dir):
    """The config keys (SEED aside) in which two runs' run.json differ, as text ("" when unknown)."""
    mine, theirs = read_manifest(run_dir), read_manifest(other_dir)
    if not (mine and theirs):
        return ""
    a, b = mine.get("config", {}), theirs.get("config", {})
    keys = [k for k in sorted(set(a) & set(b)) if k != "SEED" and a[k] != b[k]]
    return ", ".join(f"{k} {json.dumps(a[k])} vs {json.dumps(b[k])}" for k in keys[:5]) + (" ..." if len(keys) > 5 else "")


def check_same_experiment(run_dirs, where):
    """Raise ParseError naming the runs that belong to another experiment than the others (another
    data set, trainer or config): their results cannot be averaged."""
    found = {d: _experiment(d) for d in run_dirs}
    kinds = [k for k in found.values() if k is not None]
    if len(set(kinds)) <= 1:
        return
    common = max(kinds, key=kinds.count)  # the experiment most runs belong to (the first run's on a tie)
    reference = next(d for d, k in found.items() if k == common)
    odd = []
    for run_dir, kind in found.items():
        if kind is None or kind == common:
            continue
        if kind[0] != common[0]:
            what = f"data set {kind[0]}, the others {common[0]}"
        elif kind[1] != common[1]:
            what = f"trainer {kind[1]}, the others {common[1]}"
        else:
            what = "another config (" + (_config_difference(run_dir, reference) or "its results.json setting_digest differs") + ")"
        odd.append(f"{run_dir}: {what}")
    raise ParseError(
        f"{where} mixes runs of different experiments, which cannot be averaged: {'; '.join(odd)}. "
        "Give each experiment (data set, trainer, config) its own folder of seeds."
    )


@dataclass
class SeedSummary:
    """Per-run values of one experiment; `missing` lists the logs without a value, `untrained` the
    runs that evaluated untrained parameters (left out)."""

    files: list
    values: list
    missing: list = field(default_factory=list)
    untrained: list = field(default_factory=list)

    @property
    def mean(self):
        return float(np.mean(self.values))

    @property
    def std(self):
        return float(np.std(self.values))

    @property
    def ci95(self):
        return float(compute_ci95(self.values))


def summarize_seeds(directory, keyword="accuracy", end_signal=END_TRAIN):
    """Read every run's value under directory; raises ParseError when none has one."""
    summary = SeedSummary(files=[], values=[])
    logs = []
    for fpath in run_logs(directory):
        (summary.untrained if is_untrained(osp.dirname(fpath)) else logs).append(fpath)
    check_same_experiment([osp.dirname(f) for f in logs], directory)
    for fpath in logs:
        value = run_metric(fpath, keyword, end_signal)
        if value is None:
            summary.missing.append(fpath)
        else:
            summary.files.append(fpath)
            summary.values.append(value)
    if not summary.values:
        hint = " (logs of eval-only runs need --test-log)" if end_signal == END_TRAIN else ""
        raise ParseError(
            f"Nothing found in {directory}: no '* {keyword}: X%' line after '{end_signal}' "
            f"in any of its {LOG_NAME} files{hint}"
        )
    return summary


def parse_function(directory, keyword="accuracy", end_signal=END_TRAIN, ci95=False):
    """Print one line per run and the mean +- std (or 95% CI); returns {keyword: mean}."""
    print(f"Parsing files in {directory}")
    summary = summarize_seeds(directory, keyword, end_signal)
    for fpath in summary.missing:
        print(f"warning: no '* {keyword}: X%' after '{end_signal}' in {fpath}; left out", file=sys.stderr)
    for fpath in summary.untrained:
        print(f"warning: {fpath} evaluated untrained parameters (--eval-only without --model-dir); left out",
              file=sys.stderr)
    for fpath, value in zip(summary.files, summary.values):
        print(f"file: {fpath}. {keyword}: {value:.2f}%. ")
    spread = summary.ci95 if ci95 else summary.std
    print("===")
    print(f"Summary of directory: {directory}")
    print(f"* {keyword}: {summary.mean:.2f}% +- {spread:.2f}%")
    print("===")
    return {keyword: summary.mean}


def parse_multi_exp(directory, keyword="accuracy", end_signal=END_TRAIN, ci95=False):
    """parse_function on every experiment folder of directory, then the mean of their means."""
    if not osp.isdir(directory):
        raise ParseError(f"{directory} is not a folder: pass the folder that holds one sub-folder per experiment")
    names = listdir_nohidden(directory)
    if not names:
        raise ParseError(f"{directory} is empty: with --multi-exp it should hold <exp>/<seed>/{LOG_NAME}")
    means = []
    for name in names:
        means.append(parse_function(osp.join(directory, name), keyword, end_signal, ci95)[keyword])
    avg = float(np.mean(means))
    print("Average performance")
    print(f"* {keyword}: {avg:.2f}%")
    return {keyword: avg}


# ---- base-to-new --------------------------------------------------------------------------


def _seed_order(name):
    digits = name[len(SEED_PREFIX):].lstrip("_")
    return (0, int(digits), name) if digits.isdigit() else (1, 0, name)


def find_seed_dirs(tree):
    """{(dataset, method path): {seed name: seed folder}} for every seed* folder under tree/<dataset>/.

    The method path is what lies between the data set folder and the seed folder, e.g.
    "TextRefiner/vit_b16_ep10_ctxv1_16shots/nctx4_cscFalse_ctpend". Seed folders are not entered.
    """
    runs = {}
    if not osp.isdir(tree):
        return runs
    for dataset in listdir_nohidden(tree):
        dataset_dir = osp.join(tree, dataset)
        for parent, dirs, _ in os.walk(dataset_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            method = osp.relpath(parent, dataset_dir).replace(os.sep, "/")
            for seed in (d for d in dirs if d.startswith(SEED_PREFIX)):
                runs.setdefault((dataset, method), {})[seed] = osp.join(parent, seed)
            dirs[:] = [d for d in dirs if not d.startswith(SEED_PREFIX)]
    return runs


@dataclass
class Row:
    """Seed means of one data set; `seeds` are the seed folders used, `*_values` the per-seed values."""

    dataset: str
    base: float
    new: float
    seeds: list
    base_values: list = field(default_factory=list)
    new_values: list = field(default_factory=list)

    @property
    def h(self):
        return harmonic_mean(self.base, self.new)

    @property
    def stds(self):
        """(Base, New, H) standard deviations over seeds; H's from the per-seed H values."""
        hs = [harmonic_mean(b, n) for b, n in zip(self.base_values, self.new_values)]
        return tuple(float(np.std(v)) if v else 0.0 for v in (self.base_values, self.new_values, hs))


@dataclass
class Block:
    """One trainer and setting: a row per data set and notes on what was left out."""

    method: str
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def average(self):
        """Base and New averaged over the data sets; H of those averages (not the mean of the H)."""
        if not self.rows:
            return None
        base = float(np.mean([r.base for r in self.rows]))
        new = float(np.mean([r.new for r in self.rows]))
        return Row("Average", base, new, [])


def is_eval_only(fpath):
    """Whether a log's argument dump says eval_only: True (a run that evaluated without training)."""
    with open(fpath, "r", encoding="utf-8", errors="replace") as f:
        return any(line.strip() == "eval_only: True" for line in f)


def _seed_value(seed_dir, keyword, end_signal, dataset, notes):
    fpath = osp.join(seed_dir, LOG_NAME)
    if not osp.isfile(fpath):
        notes.append(f"{dataset}: no {LOG_NAME} in {seed_dir}; seed left out")
        return None
    if is_untrained(seed_dir):
        notes.append(f"{dataset}: {seed_dir} evaluated untrained parameters (--eval-only without --model-dir); "
                     "seed left out")
        return None
    if end_signal == END_TRAIN and is_eval_only(fpath):
        end_signal = END_TEST  # e.g. zero-shot CLIP on the base classes
    if end_signal == END_TRAIN and is_base2novel_distillation(fpath):
        value = best_val_metric(fpath, keyword)
    else:
        value = run_metric(fpath, keyword, end_signal)
    if value is None:
        notes.append(f"{dataset}: no '* {keyword}: X%' after '{end_signal}' in {fpath} (unfinished run?); "
                     "seed left out")
    return value


def _pair_row(dataset, method, base_seeds, new_seeds, root, keyword, notes):
    """The row of one data set from its paired seeds, or None (with a note) when there is none."""
    trees = {BASE_TREE: (base_seeds, "base2new_train.sh"), NEW_TREE: (new_seeds, "base2new_test.sh")}
    for tree, (seeds, script) in trees.items():
        if seeds is None:
            missing = osp.join(root, tree, dataset, method)
            notes.append(f"{dataset}: missing {missing} (run {script} for {dataset}); row skipped")
            return None
    for tree, other in ((BASE_TREE, NEW_TREE), (NEW_TREE, BASE_TREE)):
        alone = set(trees[tree][0]) - set(trees[other][0])
        for seed in sorted(alone, key=_seed_order):
            missing = osp.join(root, other, dataset, method, seed)
            notes.append(f"{dataset}: {seed} only in {tree} ({missing} is missing); left out")
    try:
        for tree, (seeds, _) in trees.items():
            trained = [seeds[s] for s in sorted(seeds, key=_seed_order) if not is_untrained(seeds[s])]
            check_same_experiment(trained, osp.join(root, tree, dataset, method))
    except ParseError as err:
        notes.append(f"{dataset}: {err}; row skipped")
        return None
    base_values, new_values, used = [], [], []
    for seed in sorted(set(base_seeds) & set(new_seeds), key=_seed_order):
        stale = stale_evaluation(new_seeds[seed], base_seeds[seed])
        if stale:
            notes.append(f"{dataset}: {stale}; {seed} left out")
            continue
        base = _seed_value(base_seeds[seed], keyword, END_TRAIN, dataset, notes)
        new = _seed_value(new_seeds[seed], keyword, END_TEST, dataset, notes)
        if base is not None and new is not None:
            base_values.append(base)
            new_values.append(new)
            used.append(seed)
    if not used:
        notes.append(f"{dataset}: no seed has both a base and a new result; row skipped")
        return None
    return Row(dataset, float(np.mean(base_values)), float(np.mean(new_values)), used, base_values, new_values)


def stale_evaluation(eval_dir, train_dir):
    """Why the evaluation in eval_dir does not belong to the training run in train_dir now ("" when
    it does, or when its run.json cannot tell): it evaluated checkpoints that changed since."""
    model = (read_manifest(eval_dir) or {}).get("model") or {}
    if osp.abspath(model.get("dir", "")) != osp.abspath(train_dir):
        return ""
    for rel, sha in model.get("files", {}).items():
        path = osp.join(train_dir, rel)
        if not osp.isfile(path) or sha256_file(path) != sha:
            return (f"{eval_dir} evaluated an earlier {rel} of {train_dir} (it was trained again since): "
                    "rerun the test script to evaluate the current one")
    return ""


def collect_base2new(root, trainers=None, keyword="accuracy"):
    """Blocks (sorted by method path) of paired results under root/train_base and root/test_new.

    trainers: keep only method paths with a folder of one of these names (None keeps all).
    """
    if not (osp.isdir(osp.join(root, BASE_TREE)) or osp.isdir(osp.join(root, NEW_TREE))):
        raise ParseError(
            f"{root} has neither {BASE_TREE}/ nor {NEW_TREE}/: pass the folder the base2new scripts "
            f"write into (e.g. output/base2new)"
        )
    base_runs = find_seed_dirs(osp.join(root, BASE_TREE))
    new_runs = find_seed_dirs(osp.join(root, NEW_TREE))
    found = sorted(set(base_runs) | set(new_runs), key=lambda k: (k[1], k[0]))
    keys = [k for k in found if not trainers or set(k[1].split("/")) & set(trainers)]
    if not keys:
        where = f"{osp.join(root, BASE_TREE)} or {osp.join(root, NEW_TREE)}"
        if not found:
            raise ParseError(f"no {SEED_PREFIX}* folders under {where}")
        names = ", ".join(sorted({method for _, method in found}))
        raise ParseError(f"no {SEED_PREFIX}* folders for trainer {', '.join(trainers)} under {where} "
                         f"(found: {names})")
    blocks = {}
    for dataset, method in keys:
        block = blocks.setdefault(method, Block(method))
        key = (dataset, method)
        row = _pair_row(dataset, method, base_runs.get(key), new_runs.get(key), root, keyword, block.notes)
        if row is not None:
            block.rows.append(row)
    return list(blocks.values())


def _pct(row, with_std=False):
    means = (row.base, row.new, row.h)
    if not with_std:
        return [f"{v:.2f}" for v in means]
    return [f"{v:.2f} ± {s:.2f}" for v, s in zip(means, row.stds)]


def format_base2new(blocks, root, keyword="accuracy", with_std=False):
    """The printed report: a table per block, its notes, and a comparison of averages."""
    headers = ["Dataset", "Base", "New", "H", "Seeds"]
    spread = " ± std" if with_std else ""
    lines = [f"Base-to-new {keyword} under {root}: mean{spread} over seeds, H = 2*Base*New/(Base+New)", ""]
    for block in blocks:
        lines.append(block.method)
        table = [[r.dataset, *_pct(r, with_std), str(len(r.seeds))] for r in block.rows]
        average = block.average()
        if average is None:
            lines.append("(no data set has both a base and a new result)")
        else:
            table.append([average.dataset, *_pct(average), ""])
            lines.append(tabulate(table, headers=headers, colalign=COLALIGN, disable_numparse=True))
        lines.extend(f"note: {note}" for note in block.notes)
        lines.append("")
    averages = [(b.method, len(b.rows), b.average()) for b in blocks if b.rows]
    if len(averages) > 1:
        lines.append("Averages (H of the averaged Base and New)")
        table = [[method, str(n), *_pct(avg)] for method, n, avg in averages]
        headers = ["Method", "Datasets", "Base", "New", "H"]
        lines.append(tabulate(table, headers=headers, colalign=COLALIGN, disable_numparse=True))
        lines.append("")
        lines.extend(format_side_by_side(blocks))
    return "\n".join(lines).rstrip("\n")


def format_side_by_side(blocks):
    """Every method in a column: "Base / New / H" per data set (and their averages), [i] = method i."""
    blocks = [b for b in blocks if b.rows]
    datasets = sorted({r.dataset for b in blocks for r in b.rows})
    cells = [{r.dataset: r for r in b.rows} for b in blocks]
    lines = ["Side by side: Base / New / H, columns [i] are the methods listed below"]
    table = []
    for dataset in datasets:
        table.append([dataset] + [" / ".join(_pct(c[dataset])) if dataset in c else "-" for c in cells])
    table.append(["Average"] + [" / ".join(_pct(b.average())) for b in blocks])
    headers = ["Dataset"] + [f"[{i}]" for i in range(1, len(blocks) + 1)]
    lines.append(tabulate(table, headers=headers, disable_numparse=True))
    lines.extend(f"[{i}] {b.method}" for i, b in enumerate(blocks, 1))
    return lines


# ---- few-shot table ------------------------------------------------------------------------

SHOTS_FOLDER = re.compile(r"^(?P<cfg>.+)_(?P<shots>\d+)shots$")


def collect_fewshot(root, keyword="accuracy"):
    """Seed means of every OUTPUT/<dataset>/<cfg>_<K>shots/seed*/log.txt (what scripts/taskres writes).

    Returns ({shots: {dataset: SeedSummary}}, notes). A data set with several configs for the
    same shots keeps the first (sorted) and notes the others.
    """
    if not osp.isdir(root):
        raise ParseError(f"{root} is not a folder: pass the folder that holds <dataset>/<cfg>_<K>shots/seed*/")
    cells, notes = {}, []
    for dataset in listdir_nohidden(root):
        dataset_dir = osp.join(root, dataset)
        if not osp.isdir(dataset_dir):
            continue
        for name in listdir_nohidden(dataset_dir):
            match = SHOTS_FOLDER.match(name)
            if match is None or not osp.isdir(osp.join(dataset_dir, name)):
                continue
            shots = int(match.group("shots"))
            if dataset in cells.get(shots, {}):
                notes.append(f"{dataset}, {shots} shots: {osp.join(dataset_dir, name)} left out (another config "
                             "has these shots; pass a folder with one config per data set and shots)")
                continue
            try:
                summary = summarize_seeds(osp.join(dataset_dir, name), keyword, END_TRAIN)
            except ParseError as err:
                notes.append(f"{dataset}, {shots} shots: {err}")
                continue
            notes.extend(f"{dataset}, {shots} shots: no result in {f} (unfinished run?); left out"
                         for f in summary.missing)
            cells.setdefault(shots, {})[dataset] = summary
    if not cells:
        raise ParseError(f"no <dataset>/<cfg>_<K>shots/seed*/{LOG_NAME} with a result under {root}"
                         + (f" ({notes[0]})" if notes else ""))
    return cells, notes


def format_fewshot(cells, notes, root, keyword="accuracy"):
    """Shots x data sets table of seed means (std over seeds in brackets), with an Average column."""
    datasets = sorted({d for row in cells.values() for d in row})
    table = []
    for shots in sorted(cells):
        row = cells[shots]
        values = [f"{row[d].mean:.2f} ({row[d].std:.2f})" if d in row else "-" for d in datasets]
        average = f"{np.mean([row[d].mean for d in row]):.2f}"
        if len(row) < len(datasets):
            average += f" ({len(row)}/{len(datasets)})"
        table.append([str(shots), *values, average])
    lines = [f"Few-shot {keyword} under {root}: mean over seeds (std); Average over the data sets present", ""]
    colalign = ("right",) * (len(datasets) + 2)
    lines.append(tabulate(table, headers=["Shots", *datasets, "Average"], colalign=colalign, disable_numparse=True))
    lines.extend(f"note: {note}" for note in notes)
    return "\n".join(lines)


def fewshot_main(parser, args):
    """--fewshot OUTPUT: print the shots x data sets table."""
    if args.directory is not None or args.base2new is not None or args.multi_exp or args.test_log:
        parser.error("--fewshot OUTPUT takes no DIRECTORY, --base2new, --multi-exp or --test-log")
    try:
        cells, notes = collect_fewshot(args.fewshot, args.keyword)
    except ParseError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    print(format_fewshot(cells, notes, args.fewshot, args.keyword))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(description="Mean and std of test results over seeds; base-to-new tables.")
    parser.add_argument("directory", nargs="?", help="folder with one sub-folder (seed) per run")
    parser.add_argument("--ci95", action="store_true", help=r"compute 95%% confidence interval")
    parser.add_argument("--test-log", action="store_true", help="parse test-only logs")
    parser.add_argument("--multi-exp", action="store_true", help="parse multiple experiments")
    parser.add_argument("--keyword", default="accuracy", type=str, help="which keyword to extract")
    parser.add_argument("--base2new", metavar="OUTPUT",
                        help="base-to-new table from OUTPUT/train_base and OUTPUT/test_new")
    parser.add_argument("--trainer", action="append", metavar="NAME",
                        help="with --base2new: only this trainer (repeat for several)")
    parser.add_argument("--std", action="store_true", help="with --base2new: show mean ± std over seeds")
    parser.add_argument("--plot", metavar="FILE", help="with --base2new: also draw the table into FILE (PNG)")
    parser.add_argument("--fewshot", metavar="OUTPUT",
                        help="shots x data sets table of OUTPUT/<dataset>/<cfg>_<K>shots/seed*/ (TaskRes layout)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.fewshot is not None:
        return fewshot_main(parser, args)
    if (args.directory is None) == (args.base2new is None):
        parser.error("give either DIRECTORY or --base2new OUTPUT (exactly one)")
    if args.base2new is None and (args.trainer or args.std or args.plot):
        parser.error("--trainer, --std and --plot only apply to --base2new")
    if args.base2new is not None and (args.ci95 or args.test_log or args.multi_exp):
        parser.error("--ci95, --test-log and --multi-exp do not apply to --base2new (it reads both trees itself)")
    try:
        if args.base2new is not None:
            blocks = collect_base2new(args.base2new, args.trainer, args.keyword)
            print(format_base2new(blocks, args.base2new, args.keyword, args.std))
            if not any(b.rows for b in blocks):
                return 1
            if args.plot:
                from tools import base2new_plot  # matplotlib only when a plot is asked for

                try:
                    base2new_plot.plot_base2new(blocks, args.plot, args.keyword)
                except base2new_plot.PlotError as err:
                    raise ParseError(str(err)) from None
                print(f"Wrote the plot to {args.plot}")
            return 0
        end_signal = END_TEST if args.test_log else END_TRAIN
        parse = parse_multi_exp if args.multi_exp else parse_function
        parse(args.directory, args.keyword, end_signal, args.ci95)
    except ParseError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
