"""``results.json``: the machine-readable record of a run, written atomically beside log.txt.

Format (all accuracies in percent)::

    {
      "format": 1,
      "trainer": "CoOp", "dataset": "OxfordPets", "seed": 1,
      "config_digest": "sha256 of the result-determining config (engine.run_manifest.result_config)",
      "setting_digest": "the same without SEED: equal for the seeds of one experiment",
      "split": "test",                      # the split of the final evaluation (null: none)
      "accuracy": 91.2, "error": 8.8, "macro_f1": 90.9,
      "val_per_epoch": [{"epoch": 1, "accuracy": 80.0}, ...],   # TEST.FINAL_MODEL best_val
      "best_epoch": 3,                      # epoch of model-best.pth.tar (null without val)
      "epochs_trained": 50, "eval_only": false,
      "untrained": false,                   # --eval-only without --model-dir of a trainer that learns (TEST.ALLOW_UNTRAINED)
      "skipped_updates": 0,                 # updates PREC amp's GradScaler skipped (inf/NaN gradients)
      "wall_time_s": 812.4,                 # this process only (a resumed run counts its own part)
      "versions": {"python": "3.11.9", "torch": "2.3.0", "numpy": "1.26.4", "code": "git commit or null"}
    }

The per-epoch validation history, the best epoch and the skipped-update count are carried in every checkpoint, so
a resumed run writes the same record as an uninterrupted one (but for the wall time).
"""
import os.path as osp
import platform
import subprocess
import time

import numpy as np
import torch

from .run_manifest import config_digest
from .utils.tools import write_json_atomic

RESULTS_NAME = "results.json"
FORMAT_VERSION = 1


class RunRecord:
    """Collects the evaluations of a run and writes them to ``results.json``."""

    def __init__(self):
        self.val_per_epoch = []  # [{"epoch": 1-based, "accuracy": float}]
        self.best_epoch = None
        self.final = None  # {"split", "accuracy", "error", "macro_f1"}
        self.time_start = time.time()

    def add_val(self, epoch, results, is_best):
        self.val_per_epoch.append({"epoch": epoch + 1, "accuracy": float(results["accuracy"])})
        if is_best:
            self.best_epoch = epoch + 1

    def set_final(self, split, results):
        self.final = {
            "split": split,
            "accuracy": float(results["accuracy"]),
            "error": float(results["error_rate"]),
            "macro_f1": float(results["macro_f1"]),
        }

    # ----- carried in checkpoints -------------------------------------------------------
    def state_dict(self):
        return {"val_per_epoch": list(self.val_per_epoch), "best_epoch": self.best_epoch}

    def load_state_dict(self, state):
        self.val_per_epoch = list(state["val_per_epoch"])
        self.best_epoch = state["best_epoch"]

    # ----- the file -------------------------------------------------------------------
    def to_dict(self, cfg, epochs_trained, eval_only, skipped_updates=0, untrained=False):
        final = self.final or {"split": None, "accuracy": None, "error": None, "macro_f1": None}
        return {
            "format": FORMAT_VERSION,
            "trainer": cfg.TRAINER.NAME,
            "dataset": cfg.DATASET.NAME,
            "seed": cfg.SEED,
            "config_digest": config_digest(cfg),
            "setting_digest": config_digest(cfg, with_seed=False),
            **final,
            "val_per_epoch": self.val_per_epoch,
            "best_epoch": self.best_epoch,
            "epochs_trained": epochs_trained,
            "eval_only": eval_only,
            "untrained": untrained,
            "skipped_updates": skipped_updates,
            "wall_time_s": round(time.time() - self.time_start, 3),
            "versions": versions(),
        }

    def write(self, cfg, epochs_trained, eval_only, skipped_updates=0, untrained=False):
        fpath = osp.join(cfg.OUTPUT_DIR, RESULTS_NAME)
        write_json_atomic(self.to_dict(cfg, epochs_trained, eval_only, skipped_updates, untrained), fpath, indent=2, trailing_newline=True)
        print(f"Results written to {fpath}")
        return fpath


def versions():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "code": _git_revision(),
    }


def _git_revision():
    """The commit of this code (null outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=osp.dirname(osp.abspath(__file__)), capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None
