"""Result files of a test-time adaptation run: results.json and the table in RLCF's layout."""
import os

from engine.utils.tools import write_json_atomic, write_text_atomic

from .data import IMAGENET_SETS

# the columns of RLCF's Table 1: ImageNet, then the four distribution shifts
TABLE_ORDER = ("ImageNet", "ImageNetA", "ImageNetV2", "ImageNetR", "ImageNetSketch")
TABLE_HEADS = {"ImageNet": "I", "ImageNetA": "A", "ImageNetV2": "V", "ImageNetR": "R", "ImageNetSketch": "K"}


def results_table(method, results):
    """Markdown table of top-1: I, A, V, R, K, OOD average (the shifted sets), then the other sets and their mean.

    ``results``: [(set id, data set name, top1, top5)] in run order.
    """
    by_name = {name: (set_id, top1) for set_id, name, top1, _ in results}
    heads, cells = [], []
    for name in TABLE_ORDER:
        if name in by_name:
            heads.append(TABLE_HEADS[name])
            cells.append(by_name[name][1])
    ood = [by_name[n][1] for n in TABLE_ORDER[1:] if n in by_name]
    if ood:
        heads.append("OOD avg")
        cells.append(sum(ood) / len(ood))
    fine = [(set_id, top1) for set_id, name, top1, _ in results if name not in IMAGENET_SETS]
    if fine:
        heads += [set_id for set_id, _ in fine] + ["fine-grained avg"]
        cells += [top1 for _, top1 in fine] + [sum(t for _, t in fine) / len(fine)]
    lines = [
        "| method | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(heads),
        f"| {method} | " + " | ".join(f"{c:.2f}" for c in cells) + " |",
    ]
    return "\n".join(lines) + "\n"


def write_results(output, method, results):
    """results.json ({set id: [top1, top5]}, as the reference) and results_table.md (each written
    atomically); returns the table."""
    write_json_atomic({s: [t1, t5] for s, _, t1, t5 in results}, os.path.join(output, "results.json"))
    table = results_table(method, results)
    write_text_atomic(os.path.join(output, "results_table.md"), table)
    return table
