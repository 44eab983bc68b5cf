"""Which of the real benchmark's known effects the world benchmark reproduces.

    python -m scripts.world.benchmark_effects OUT [OUT ...]

reads each OUT/results.json of scripts/world/benchmark.sh and writes OUT/effects.md (and prints
it): per effect and data set, the real benchmark's figure, the world's figure (mean over the seeds,
with the std of the seed values) and whether it is reproduced.

The rule, fixed before any world result was read: an effect is a difference between two methods
(or a share of one); it is **reproduced** when the world's difference has the real one's sign and
is larger than the std over seeds of the method's values (zero-shot runs once, so its std is 0),
and, for "recovers most of CoOp's loss", when CoOp loses on new there (else "no loss to recover")
and the method wins back at least half of it.
"""
import json
import os
import sys

import numpy as np

from engine.utils.tools import write_text_atomic

# The real figures: 11-set averages, ViT-B/16, 16 shots, base-to-new
# (../reference paper-results.md §1: PromptKD README Table 1 and TextRefiner Table 1), and the RLCF
# Table 1 OOD average over ImageNet-A / V2 / R / Sketch (tta-protocol.md).
REAL_B2N = {"ZeroshotCLIP": (69.34, 74.22), "CoOp": (82.69, 63.22), "CoCoOp": (80.47, 71.69),
            "TextRefiner": (79.74, 74.32), "MaPLe": (82.28, 75.14), "PromptSRC": (84.26, 76.10),
            "PromptKD": (86.96, 80.73)}
REAL_OOD = {"ZeroshotCLIP": 57.20, "TPT": 60.81, "RLCF-prompt": 68.33, "RLCF-tune": 71.69}
# RLCF Table 2, COCO 5k, ViT-B/16 R@1: zero-shot and RLCF (variant 01) (docs/TTA_RETRIEVAL.md)
REAL_RETRIEVAL = {"txt_r1": ("image→text R@1", 52.5, 59.1), "img_r1": ("text→image R@1", 33.0, 37.3)}
# RLCF Table 3, COCO → Flickr30k CIDEr: without and with RLCF (docs/TTA_CAPTIONING.md)
REAL_CAPTIONING = {"CapDec": (37.0, 41.9), "ClipCap": (49.3, 56.6)}


def _values(cell, side):
    return [float(v) for v in cell[f"{side}_values"]] if cell.get(f"{side}_values") else [float(cell[side])]


def _difference(a_values, b_values):
    """mean(a) - mean(b) and the std over seeds of the trained side (the larger of the two)."""
    return float(np.mean(a_values) - np.mean(b_values)), float(max(np.std(a_values), np.std(b_values)))


def _verdict(real, world, std):
    if np.sign(world) != np.sign(real) or world == 0:
        return "no (opposite sign)" if world else "no (equal)"
    return "yes" if abs(world) > std else "no (within the seed std)"


def _fmt(diff, std):
    return f"{diff:+.2f} (std {std:.2f})"


def base2new_effects(b2n):
    """Rows (effect, data set, real, world, reproduced) of the base-to-new protocol."""
    rows = []
    if not b2n or "ZeroshotCLIP" not in b2n:
        return rows
    zs = b2n["ZeroshotCLIP"]
    for dataset in sorted(zs):
        def cell(method):
            return b2n.get(method, {}).get(dataset)

        pairs = [("CoOp gains on base against zero-shot", "CoOp", "ZeroshotCLIP", "base"),
                 ("CoOp loses on new against zero-shot", "CoOp", "ZeroshotCLIP", "new"),
                 ("CoCoOp is above CoOp on new", "CoCoOp", "CoOp", "new")]
        for effect, a, b, side in pairs:
            if cell(a) is None or cell(b) is None:
                continue
            i = 0 if side == "base" else 1
            real = REAL_B2N[a][i] - REAL_B2N[b][i]
            diff, std = _difference(_values(cell(a), side), _values(cell(b), side))
            rows.append((effect, dataset, f"{real:+.2f} ({REAL_B2N[a][i]:.2f} vs {REAL_B2N[b][i]:.2f})",
                         _fmt(diff, std), _verdict(real, diff, std)))
        coop, zero = cell("CoOp"), cell("ZeroshotCLIP")
        if coop is None:
            continue
        loss = float(np.mean(_values(zero, "new")) - np.mean(_values(coop, "new")))
        coop_std = float(np.std(_values(coop, "new")))
        for method in ("TextRefiner", "KgCoOp", "PromptSRC"):
            if cell(method) is None:
                continue
            real = (f"{(REAL_B2N[method][1] - REAL_B2N['CoOp'][1]) / (74.22 - 63.22):.0%} of the loss "
                    f"(new {REAL_B2N[method][1]:.2f})" if method in REAL_B2N else "KgCoOp: not in our reference notes")
            values = _values(cell(method), "new")
            gained = float(np.mean(values) - np.mean(_values(coop, "new")))
            world = f"new {np.mean(values):.2f} vs CoOp {np.mean(_values(coop, 'new')):.2f}, zero-shot " \
                    f"{np.mean(_values(zero, 'new')):.2f}"
            if loss <= coop_std:
                verdict = "not applicable (no loss to recover)"
            else:
                share = gained / loss
                world += f": {share:.0%} of the loss"
                verdict = "yes" if share >= 0.5 else "no (under half)"
            rows.append((f"{method} recovers most of CoOp's loss on new", dataset, real, world, verdict))
    return rows


def promptkd_effects(kd):
    rows = []
    if not kd or "PromptKD" not in kd or "PromptSRC" not in kd:
        return rows
    for dataset, student in sorted(kd["PromptKD"].items()):
        src = kd["PromptSRC"].get(dataset)
        if src is None:
            continue
        for side, i in (("base", 0), ("new", 1)):
            real = REAL_B2N["PromptKD"][i] - REAL_B2N["PromptSRC"][i]
            diff, std = _difference(_values(student, side), _values(src, side))
            rows.append((f"PromptKD's student is above PromptSRC on {side}", dataset,
                         f"{real:+.2f} ({REAL_B2N['PromptKD'][i]:.2f} vs {REAL_B2N['PromptSRC'][i]:.2f})",
                         _fmt(diff, std), _verdict(real, diff, std)))
    return rows


def fewshot_effects(few):
    rows = []
    for dataset, cell in sorted((few or {}).items()):
        zero = cell.get("ZeroshotCLIP")
        if not zero or not cell.get("TaskRes"):
            continue
        for shots, stats in sorted(cell["TaskRes"].items(), key=lambda kv: int(kv[0])):
            diff, std = _difference(stats["values"], zero["values"])
            rows.append((f"TaskRes beats zero-shot ({shots} shots)", dataset,
                         "above zero-shot at 1-16 shots (TaskRes paper; not in our reference notes)",
                         _fmt(diff, std), _verdict(1.0, diff, std)))
    return rows


def tta_effects(tta):
    rows = []
    if not tta:
        return rows
    sets = sorted(s for s, cell in tta.items() if "ZeroshotCLIP" in cell)
    for method in ("TPT", "RLCF-prompt", "RLCF-tune"):
        if not sets or not all(method in tta[s] for s in sets):
            continue
        # the mean over the shifted sets per seed, against zero-shot's mean over them
        per_seed = np.mean([tta[s][method]["values"] for s in sets], axis=0)
        zero = np.mean([tta[s]["ZeroshotCLIP"]["values"][0] for s in sets])
        diff, std = float(np.mean(per_seed) - zero), float(np.std(per_seed))
        real = REAL_OOD[method] - REAL_OOD["ZeroshotCLIP"]
        rows.append((f"{method} gains on the shifted sets", "mean of " + ", ".join(sets),
                     f"{real:+.2f} ({REAL_OOD[method]:.2f} vs {REAL_OOD['ZeroshotCLIP']:.2f}, OOD average)",
                     _fmt(diff, std), _verdict(real, diff, std)))
    return rows


def retrieval_effects(retrieval):
    rows = []
    if not retrieval or "zero-shot" not in retrieval or "RLCF" not in retrieval:
        return rows
    for metric, (label, zero, rlcf) in REAL_RETRIEVAL.items():
        diff, std = _difference(retrieval["RLCF"][metric]["values"], retrieval["zero-shot"][metric]["values"])
        rows.append((f"RLCF gains on retrieval, {label}", "world retrieval sets (one per seed)",
                     f"{rlcf - zero:+.2f} ({rlcf:.2f} vs {zero:.2f}, COCO 5k)", _fmt(diff, std),
                     _verdict(rlcf - zero, diff, std)))
    return rows


def captioning_effects(captioning):
    rows = []
    for style, cell in sorted((captioning or {}).items()):
        for model, (plain, tuned) in REAL_CAPTIONING.items():
            before, after = cell.get(model, {}).get("CIDEr"), cell.get(f"{model} + RLCF", {}).get("CIDEr")
            if before is None or after is None:
                continue
            diff, std = _difference(after["values"], before["values"])
            rows.append((f"RLCF gains on {model}'s captions (CIDEr)", f"{style} test images",
                         f"{tuned - plain:+.2f} ({tuned:.2f} vs {plain:.2f}, COCO → Flickr30k)", _fmt(diff, std),
                         _verdict(tuned - plain, diff, std)))
    return rows


def effects_table(results):
    rows = (base2new_effects(results.get("base2new")) + promptkd_effects(results.get("promptkd"))
            + fewshot_effects(results.get("fewshot")) + tta_effects(results.get("tta"))
            + retrieval_effects(results.get("retrieval")) + captioning_effects(results.get("captioning")))
    lines = ["| effect | data set | real benchmark | world (mean over seeds) | reproduced |",
             "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv=None):
    outs = sys.argv[1:] if argv is None else argv
    if not outs:
        print("usage: python -m scripts.world.benchmark_effects OUT [OUT ...]", file=sys.stderr)
        return 2
    for out in outs:
        path = os.path.join(out, "results.json")
        if not os.path.isfile(path):
            print(f"{path} does not exist: run scripts/world/benchmark.sh with OUT={out} first", file=sys.stderr)
            return 1
        with open(path, encoding="utf-8") as f:
            table = effects_table(json.load(f))
        write_text_atomic(os.path.join(out, "effects.md"), table)
        print(f"{out}:\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
