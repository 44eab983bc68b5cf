"""The world benchmark's report (the last step of scripts/world/benchmark.sh).

    python -m scripts.world.benchmark_report --out OUT [--wall-time S] [--methods M ...]

reads the runs under OUT/output (and the teacher's under OUT/teacher) and writes one table per
protocol (OUT/base2new.md, fewshot.md, promptkd.md, tta.md, retrieval.md, captioning.md: mean ± std
over seeds), one plot per protocol (the .png beside it, drawn with tools/base2new_plot.py where it
fits) and OUT/results.json with every number. (It sits beside the script rather than in tools/ because it reads the runs with
parse_test_res.py, which itself imports tools/.)
"""
import argparse
import json
import os
import sys

import numpy as np

from engine.utils.tools import write_json_atomic, write_text_atomic
from parse_test_res import (END_TEST, END_TRAIN, ParseError, Block, Row, best_val_metric, collect_base2new,
                            collect_fewshot, find_seed_dirs, run_metric)

# display order; "TextRefiner" is TextRefiner on CoOp (its default host)
METHODS = ("ZeroshotCLIP", "CoOp", "CoCoOp", "KgCoOp", "IVLP", "MaPLe", "PromptSRC", "TextRefiner",
           "TextRefiner-CoCoOp", "TextRefiner-KgCoOp", "TextRefiner-IVLP", "TextRefiner-MaPLe",
           "TextRefiner-PromptSRC", "TaskRes", "LinearProbe", "PromptKD", "TextRefiner-PromptKD",
           "TPT", "RLCF-prompt", "RLCF-tune", "RLCF-retrieval", "RLCF-captioning")
TF_HOSTS = {"cocoop": "CoCoOp", "kgcoop": "KgCoOp", "ivlp": "IVLP", "maple": "MaPLe", "promptsrc": "PromptSRC",
            "promptkd": "PromptKD"}
TTA_METHODS = {"zeroshot": "ZeroshotCLIP", "tpt": "TPT", "rlcf-prompt": "RLCF-prompt", "rlcf-tune": "RLCF-tune"}
PROTOCOLS = ("base2new", "fewshot", "promptkd", "tta", "retrieval", "captioning")  # a table and a plot each


# ---- base-to-new ---------------------------------------------------------------------------


def method_name(path):
    """The benchmark's name of a base2new method path ("shots_16/TextRefiner/world_cocoop_c4_ctxv1" ->
    "TextRefiner-CoCoOp", "CoOp/world_ctxv1_16shots/nctx4_cscFalse_ctpend" -> "CoOp")."""
    parts = [p for p in path.split("/") if not p.startswith("shots_")]
    trainer, cfg = parts[0], (parts[1] if len(parts) > 1 else "")
    host = TF_HOSTS.get(cfg.split("_")[1]) if trainer == "TextRefiner" and cfg.count("_") else None
    return f"{trainer}-{host}" if host else trainer


def _order(name):
    return METHODS.index(name) if name in METHODS else len(METHODS)


def _row_dict(row):
    b, n, h = row.stds
    return {"base": row.base, "new": row.new, "h": row.h, "base_std": b, "new_std": n, "h_std": h,
            "seeds": len(row.seeds), "base_values": row.base_values, "new_values": row.new_values}


def _named_blocks(blocks):
    named = [Block(method_name(b.method), b.rows, b.notes) for b in blocks if b.rows]
    return sorted(named, key=lambda b: _order(b.method))


def _b2n_table(title, blocks):
    lines = [f"## {title}", "", "mean ± std over seeds (one run for zero-shot); H = 2*Base*New/(Base+New)", "",
             "| data set | method | Base | New | H | seeds |", "|---|---|---|---|---|---|"]
    datasets = sorted({r.dataset for b in blocks for r in b.rows})
    for dataset in datasets:
        for block in blocks:
            for row in (r for r in block.rows if r.dataset == dataset):
                cells = [f"{v:.2f} ± {s:.2f}" for v, s in zip((row.base, row.new, row.h), row.stds)]
                lines.append(f"| {dataset} | {block.method} | {' | '.join(cells)} | {len(row.seeds)} |")
    lines.extend(f"- note ({b.method}): {note}" for b in blocks for note in b.notes)
    return "\n".join(lines) + "\n"


def _plot_blocks(blocks, path):
    from tools import base2new_plot  # matplotlib only here

    base2new_plot.plot_base2new(blocks, path)


def report_base2new(out):
    root = os.path.join(out, "output", "base2new")
    if not os.path.isdir(root):
        return None
    blocks = _named_blocks(collect_base2new(root))
    blocks = [b for b in blocks if b.method not in ("PromptKD", "TextRefiner-PromptKD")]
    if not blocks:
        return None
    write_text_atomic(os.path.join(out, "base2new.md"), _b2n_table("Base-to-new (16 shots)", blocks))
    _plot_blocks(blocks, os.path.join(out, "base2new.png"))
    return {b.method: {r.dataset: _row_dict(r) for r in b.rows} for b in blocks}, blocks


# ---- PromptKD ------------------------------------------------------------------------------


def _kd_rows(out):
    """Blocks of the distilled students: base = the best val (base classes), new = the final test,
    both from the training log (TRAINER.MODAL base2novel)."""
    blocks = {}
    for (dataset, path), seeds in find_seed_dirs(os.path.join(out, "output", "base2new", "train_base")).items():
        name = method_name(path)
        if name not in ("PromptKD", "TextRefiner-PromptKD"):
            continue
        base_values, new_values, used = [], [], []
        for seed, seed_dir in sorted(seeds.items()):
            log = os.path.join(seed_dir, "log.txt")
            base, new = best_val_metric(log), run_metric(log, "accuracy", END_TRAIN)
            if base is not None and new is not None:
                base_values.append(base)
                new_values.append(new)
                used.append(seed)
        if used:
            row = Row(dataset, float(np.mean(base_values)), float(np.mean(new_values)), used, base_values, new_values)
            blocks.setdefault(name, Block(name)).rows.append(row)
    return list(blocks.values())


def report_promptkd(out, b2n_blocks):
    students = _kd_rows(out)
    if not students:
        return None
    teacher_root = os.path.join(out, "teacher", "base2new")
    teachers = collect_base2new(teacher_root) if os.path.isdir(teacher_root) else []
    teachers = [Block("PromptSRC (large CLIP, teacher)", b.rows, b.notes) for b in teachers if b.rows]
    references = [b for b in b2n_blocks if b.method in ("ZeroshotCLIP", "PromptSRC")]
    blocks = references + teachers + sorted(students, key=lambda b: _order(b.method))
    kd_sets = {r.dataset for b in students for r in b.rows}
    blocks = [Block(b.method, [r for r in b.rows if r.dataset in kd_sets], b.notes) for b in blocks]
    blocks = [b for b in blocks if b.rows]
    write_text_atomic(os.path.join(out, "promptkd.md"),
                      _b2n_table("PromptKD: the large world CLIP's PromptSRC distilled into the default one", blocks))
    _plot_blocks(blocks, os.path.join(out, "promptkd.png"))
    return {b.method: {r.dataset: _row_dict(r) for r in b.rows} for b in blocks}


# ---- few-shot ------------------------------------------------------------------------------


def _stats(values):
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": list(values)}


def report_fewshot(out):
    output = os.path.join(out, "output")
    zs_root = os.path.join(output, "ZeroshotCLIP", "world_ctxv1")
    if not os.path.isdir(zs_root):
        return None
    results = {}
    for dataset in sorted(os.listdir(zs_root)):
        value = run_metric(os.path.join(zs_root, dataset, "log.txt"), "accuracy", END_TEST)
        results[dataset] = {"ZeroshotCLIP": _stats([value]) if value is not None else None,
                            "TaskRes": {}, "LinearProbe": {}}
    taskres_root = os.path.join(output, "FINAL", "debug")
    if os.path.isdir(taskres_root):
        cells, _ = collect_fewshot(taskres_root)
        for shots, row in cells.items():
            for dataset, summary in row.items():
                results.setdefault(dataset, {"TaskRes": {}, "LinearProbe": {}})["TaskRes"][shots] = _stats(summary.values)
    for dataset in results:
        lp_root = os.path.join(output, "lpclip", dataset)
        for name in sorted(os.listdir(lp_root)) if os.path.isdir(lp_root) else []:
            path = os.path.join(lp_root, name, "results.json")
            if name.endswith("shots") and os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    lp = json.load(f)
                values = [s["test_accuracy"] for s in lp["seeds"].values()]
                results[dataset]["LinearProbe"][int(lp["shots"])] = _stats(values)
    lines = ["## Few-shot (all classes)", "", "test accuracy, mean ± std over seeds (zero-shot: one run)", "",
             "| data set | shots | ZeroshotCLIP | TaskRes | LinearProbe |", "|---|---|---|---|---|"]
    fmt = lambda s: f"{s['mean']:.2f} ± {s['std']:.2f}" if s else "-"  # noqa: E731
    for dataset, cell in sorted(results.items()):
        for shots in sorted(set(cell["TaskRes"]) | set(cell["LinearProbe"])):
            lines.append(f"| {dataset} | {shots} | {fmt(cell.get('ZeroshotCLIP'))} | "
                         f"{fmt(cell['TaskRes'].get(shots))} | {fmt(cell['LinearProbe'].get(shots))} |")
    write_text_atomic(os.path.join(out, "fewshot.md"), "\n".join(lines) + "\n")
    _plot_fewshot(results, os.path.join(out, "fewshot.png"))
    return results


def _pyplot():
    from tools.base2new_plot import _import_pyplot

    return _import_pyplot()


def _plot_fewshot(results, path):
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results) + 1.5, 3.4), squeeze=False)
    for ax, (dataset, cell) in zip(axes[0], sorted(results.items())):
        for method in ("TaskRes", "LinearProbe"):
            shots = sorted(cell[method])
            if shots:
                ax.errorbar(shots, [cell[method][k]["mean"] for k in shots], [cell[method][k]["std"] for k in shots],
                            marker="o", capsize=2, label=method)
        if cell.get("ZeroshotCLIP"):
            ax.axhline(cell["ZeroshotCLIP"]["mean"], color="grey", linestyle="--", label="ZeroshotCLIP")
        ax.set_xscale("log", base=2)
        ax.set_title(dataset)
        ax.set_xlabel("shots per class")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- TTA -----------------------------------------------------------------------------------


def report_tta(out):
    root = os.path.join(out, "output", "tta")
    if not os.path.isdir(root):
        return None
    results = {}  # {set: {method: stats of top-1}}
    for method_dir in sorted(os.listdir(root)):
        name = TTA_METHODS.get(method_dir, method_dir)
        for seed_dir in sorted(os.listdir(os.path.join(root, method_dir))):
            path = os.path.join(root, method_dir, seed_dir, "results.json")
            if not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8") as f:
                for set_id, (top1, _top5) in json.load(f).items():
                    results.setdefault(set_id, {}).setdefault(name, []).append(float(top1))
    if not results:
        return None
    results = {s: {m: _stats(v) for m, v in cell.items()} for s, cell in results.items()}
    names = sorted({m for cell in results.values() for m in cell}, key=_order)
    lines = ["## Test-time adaptation on the shifted sets", "",
             "top-1 accuracy, mean ± std over seeds (zero-shot: one run)", "",
             "| set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for set_id, cell in sorted(results.items()):
        cells = [f"{cell[m]['mean']:.2f} ± {cell[m]['std']:.2f}" if m in cell else "-" for m in names]
        lines.append(f"| {set_id} | " + " | ".join(cells) + " |")
    write_text_atomic(os.path.join(out, "tta.md"), "\n".join(lines) + "\n")
    _plot_bars(dict(sorted(results.items())), names, "top-1 accuracy (%)", os.path.join(out, "tta.png"))
    return results


# ---- retrieval and captioning --------------------------------------------------------------

RETRIEVAL_METRICS = ("txt_r1", "txt_r5", "img_r1", "img_r5")


def report_retrieval(out):
    """Zero-shot vs RLCF (scripts/world/retrieval.sh's runs under OUT/output/retrieval, one retrieval
    set per seed): {row: {metric: stats over seeds}}."""
    from tools.world.retrieval import summarize

    root = os.path.join(out, "output", "retrieval")
    seeds = sorted(int(d[4:]) for d in os.listdir(root) if d.startswith("seed") and d[4:].isdigit()) \
        if os.path.isdir(root) else []
    if not seeds:
        return None
    rows, _ = summarize(root, seeds)
    results = {name: {m: _stats(values[m]) for m in RETRIEVAL_METRICS} for name, values in rows.items()}
    lines = ["## Image-text retrieval (RLCF)", "",
             f"Recall@K (%), mean ± std over {len(seeds)} seeds (one world retrieval set per seed); txt: image→text, "
             "img: text→image", "", "| method | " + " | ".join(RETRIEVAL_METRICS) + " |",
             "|---" * (len(RETRIEVAL_METRICS) + 1) + "|"]
    for name, cell in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{cell[m]['mean']:.2f} ± {cell[m]['std']:.2f}"
                                                 for m in RETRIEVAL_METRICS) + " |")
    write_text_atomic(os.path.join(out, "retrieval.md"), "\n".join(lines) + "\n")
    _plot_bars({m: {name: cell[m] for name, cell in results.items()} for m in RETRIEVAL_METRICS},
               list(results), "recall (%)", os.path.join(out, "retrieval.png"))
    return results


def report_captioning(out):
    """ClipCap / CapDec without and with RLCF (scripts/world/captioning.sh's OUT/output/captioning/
    results.json): {style: {"<model>" or "<model> + RLCF": {metric: stats over seeds}}}."""
    from tools.world.captioning import METRICS  # here: it imports torch, which the other tables do not need

    path = os.path.join(out, "output", "captioning", "results.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        runs = json.load(f)["runs"]
    values = {}
    for run in runs:
        name = run["model"] + (" + RLCF" if run["tta_steps"] else "")
        cell = values.setdefault(run["style"], {}).setdefault(name, {})
        for metric, value in run["metrics"].items():
            cell.setdefault(metric, []).append(float(value))
    results = {style: {name: {m: _stats(v) for m, v in cell.items() if m in METRICS} for name, cell in names.items()}
               for style, names in values.items()}
    metrics = [m for m in METRICS if all(m in c for names in results.values() for c in names.values())]
    seeds = len({run["seed"] for run in runs})
    lines = ["## Captioning (ClipCap / CapDec, RLCF test-time adaptation)", "",
             f"metrics x 100 on the shifted test style, mean ± std over {seeds} seeds", "",
             "| test style | method | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
    for style, names in sorted(results.items()):
        for name, cell in names.items():
            lines.append(f"| {style} | {name} | " + " | ".join(f"{cell[m]['mean']:.2f} ± {cell[m]['std']:.2f}"
                                                              for m in metrics) + " |")
    write_text_atomic(os.path.join(out, "captioning.md"), "\n".join(lines) + "\n")
    groups = {f"{style} {m}": {name: cell[m] for name, cell in names.items()}
              for style, names in sorted(results.items()) for m in metrics}
    _plot_bars(groups, sorted({n for names in results.values() for n in names}), "score (x 100)",
               os.path.join(out, "captioning.png"))
    return results


def _plot_bars(groups, names, ylabel, path):
    """One group of bars per key of ``groups`` ({group: {name: stats}}), one bar per name, std as error."""
    plt = _pyplot()
    keys = list(groups)
    fig, ax = plt.subplots(figsize=(1.6 * len(keys) + 3, 3.4))
    width = 0.8 / len(names)
    x = np.arange(len(keys))
    for i, name in enumerate(names):
        cells = [groups[k].get(name) for k in keys]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, [c["mean"] if c else 0 for c in cells], width,
               yerr=[c["std"] if c else 0 for c in cells], capsize=2, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(keys, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- report --------------------------------------------------------------------------------


def report(out, wall_time=None, methods=()):
    """Write the tables, plots and results.json of the runs under ``out``; returns the results dict."""
    b2n = report_base2new(out)
    b2n_results, b2n_blocks = b2n if b2n else (None, [])
    results = {"wall_time_s": wall_time, "methods": list(methods), "base2new": b2n_results,
               "fewshot": report_fewshot(out), "promptkd": report_promptkd(out, b2n_blocks), "tta": report_tta(out),
               "retrieval": report_retrieval(out), "captioning": report_captioning(out)}
    write_json_atomic(results, os.path.join(out, "results.json"), indent=2)
    for protocol in PROTOCOLS:
        path = os.path.join(out, f"{protocol}.md")
        if results[protocol] is not None and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                print(f.read())
    print(f"Wrote {os.path.join(out, 'results.json')}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description="Tables, plots and results.json of a world benchmark folder.")
    parser.add_argument("--out", required=True, help="the benchmark's OUT folder")
    parser.add_argument("--wall-time", type=float, default=None, help="the benchmark's wall time in seconds")
    parser.add_argument("--methods", nargs="*", default=[], help="the methods that were run")
    args = parser.parse_args(argv)
    try:
        report(args.out, args.wall_time, args.methods)
    except ParseError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
