"""What train.py does with an output folder that already holds a run (docs/WHAT_HAPPENS_WHEN.md).

- A finished run made from the same inputs (result-determining config, data, weights; for an
  evaluation also the checkpoints it evaluated) is skipped: "Oops! The results exist at ...".
- An unfinished run made from the same inputs is resumed (from its newest checkpoint).
- A run made from other inputs is refused with one error naming every difference, unless each is
  listed in TRAIN.ALLOW_CHANGED (e.g. more epochs on purpose): then the run continues with them.
- An evaluation whose checkpoints changed since (the training ran again) is evaluated again.
- An evaluation of a training run that has not finished is refused.
"""
import contextlib
import io
import os
import os.path as osp
import re

from . import distributed
from .results import RESULTS_NAME
from .run_manifest import (
    FINISHED,
    FORMAT_VERSION,
    RUNNING,
    config_differences,
    content_differences,
    data_fingerprint,
    describe_differences,
    read_manifest,
    result_config,
    sha256_file,
    weights_fingerprint,
    write_manifest,
)
from .utils.faults import UserError
from .checkpoint.rng import capture_rng_state, restore_rng_state

ALLOW_KEY = "TRAIN.ALLOW_CHANGED"


class RunConflict(UserError):
    """The output folder holds a run made from other inputs."""


def allowed_changes(cfg):
    """The names in TRAIN.ALLOW_CHANGED (separated by commas or spaces)."""
    return {name for name in re.split(r"[,\s]+", str(cfg.TRAIN.ALLOW_CHANGED)) if name}


def model_file_name(load_epoch):
    """The checkpoint file an evaluation loads (--load-epoch N, else model-best.pth.tar)."""
    return "model-best.pth.tar" if load_epoch is None else f"model.pth.tar-{load_epoch}"


def model_fingerprint(model_dir, relative_files):
    """{"dir": model_dir, "files": {relative path: sha256 or None}} of the checkpoints an evaluation loads."""
    files = {rel: sha256_file(osp.join(model_dir, rel)) if osp.isfile(osp.join(model_dir, rel)) else None
             for rel in sorted(relative_files)}
    return {"dir": osp.abspath(model_dir), "files": files}


def check_training_finished(model_dir):
    """Refuse to evaluate a training run whose run.json says it has not finished."""
    recorded = read_manifest(model_dir) if model_dir else None
    if recorded is None or recorded.get("mode") != "train" or recorded.get("status") == FINISHED:
        return
    epochs = recorded.get("config", {}).get("OPTIM.MAX_EPOCH")
    last = _last_checkpoint(model_dir)
    where = f"its newest checkpoint is {last}" if last else "it has written no checkpoint yet"
    raise UserError(
        f'The training run in "{model_dir}" has not finished ({where}, of {epochs} epochs): it was stopped or is '
        "still training. Rerun its training command (it resumes), then run this evaluation again."
    )


def _last_checkpoint(run_dir):
    """The file named by the first model folder's ``checkpoint`` pointer, or None."""
    for name in sorted(os.listdir(run_dir)):
        pointer = osp.join(run_dir, name, "checkpoint")
        if osp.isfile(pointer):
            with open(pointer) as f:
                return f"{name}/{f.readline().strip()}"
    return None


class ManifestRecord:
    """The run.json of ``self.folder`` (``self.manifest``), written by the main process only."""

    def finish(self):
        self.manifest["status"] = FINISHED
        self._write()

    def _write(self):
        if distributed.is_main_process():
            write_manifest(self.folder, self.manifest)


class RerunGuard(ManifestRecord):
    """Decides what a train.py run does with its output folder and keeps the folder's run.json.

    ``check()`` before anything is built (skip or refuse), ``start(trainer)`` once the trainer is
    built (compares the data and weights it uses, writes run.json "running"), ``finish()`` after
    the results are written.
    """

    def __init__(self, cfg, eval_only=False, model_dir="", load_epoch=None, weights_files=None):
        self.cfg = cfg
        self.folder = cfg.OUTPUT_DIR
        self.model_dir = model_dir
        self.model_file = model_file_name(load_epoch)
        self.weights_files = weights_files or {}
        self.recorded = read_manifest(self.folder)
        self.allowed = allowed_changes(cfg)
        self.changes = {}  # allowed differences from the recorded run: {name: (there, now)}
        self.manifest = {
            "format": FORMAT_VERSION,
            "status": RUNNING,
            "mode": "eval" if eval_only else "train",
            "trainer": cfg.TRAINER.NAME,
            "dataset": cfg.DATASET.NAME,
            "seed": cfg.SEED,
            "config": result_config(cfg),
        }

    # ----- before building -------------------------------------------------------------
    def check(self):
        """True when the folder holds this finished run (the caller skips); raises RunConflict."""
        if self.cfg.RESUME and not osp.isdir(self.cfg.RESUME):
            raise UserError(
                f'The --resume folder "{self.cfg.RESUME}" does not exist: give the output folder of the run to '
                "resume (it holds one sub-folder per model, e.g. prompt_learner/), or leave --resume out."
            )
        if self.manifest["mode"] == "eval":
            check_training_finished(self.model_dir)
        recorded = self.recorded
        if recorded is None:
            return self._finished_without_manifest()
        if recorded.get("mode") != self.manifest["mode"]:
            kinds = {"train": "a training run", "eval": "an evaluation (--eval-only)"}
            raise RunConflict(
                f'The output folder "{self.folder}" holds {kinds.get(recorded.get("mode"), "another run")}, this is '
                f"{kinds[self.manifest['mode']]}: give this run its own --output-dir."
            )
        self._accept(config_differences(recorded, self.manifest))
        if recorded.get("status") != FINISHED or self.changes:
            return False
        if self.manifest["mode"] == "eval" and self._model_changed():
            return False
        current = {"data": self._quiet_data_fingerprint(), "weights": weights_fingerprint(self.weights_files)}
        if current["data"] is None:
            current["data"] = recorded.get("data")  # cannot be read now: not compared
        self._accept(content_differences(recorded, current, missing_ok=True))
        return not self.changes

    def _finished_without_manifest(self):
        """A folder of an earlier version: results.json means it finished (its inputs cannot be compared)."""
        if osp.isfile(osp.join(self.folder, RESULTS_NAME)):
            print(f'Note: "{self.folder}" has {RESULTS_NAME} but no run.json (an earlier version wrote it): '
                  "what it was made from cannot be compared")
            return True
        return False

    def _model_changed(self):
        """Whether the checkpoints at --model-dir differ from the ones this folder's result evaluated."""
        recorded = self.recorded.get("model") or {}
        if not self.model_dir:
            return bool(recorded)
        names = {rel.split("/")[0] for rel in recorded.get("files", {})}
        current = model_fingerprint(self.model_dir, [f"{name}/{self.model_file}" for name in names])
        if current["files"] == recorded.get("files"):
            return False
        print(f'The model at "{self.model_dir}" ({self.model_file}) is not the one "{self.folder}" evaluated '
              "(the training ran again, or another epoch is asked for): evaluating again")
        return True

    def _quiet_data_fingerprint(self):
        """The data the run would use, built without printing (None when it cannot be read now)."""
        from .data.datasets import build_dataset

        state = capture_rng_state()  # a run that continues after this check draws what it would have drawn
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                dataset = build_dataset(self.cfg)
        except (OSError, ValueError, KeyError):
            return None
        finally:
            restore_rng_state(state)
        return data_fingerprint(dataset, self.cfg.DATASET.ROOT)

    def _accept(self, differences):
        """Keep the differences TRAIN.ALLOW_CHANGED allows; raise one RunConflict naming the others."""
        refused = {k: v for k, v in differences.items() if k not in self.allowed}
        if refused:
            status = "finished" if self.recorded.get("status") == FINISHED else "unfinished"
            raise RunConflict(
                f'The output folder "{self.folder}" holds a {status} run made from other inputs '
                f"({describe_differences(refused)}). Rerunning into it would mix two runs or replace its results. "
                f"Use another --output-dir; or, to continue this run with these changes on purpose (e.g. more epochs), "
                f"add {ALLOW_KEY} {','.join(refused)} to the command."
            )
        self.changes.update(differences)

    # ----- once the trainer is built -----------------------------------------------------
    def start(self, trainer):
        """Record (and, for an unfinished run, compare) the data, weights and evaluated checkpoints; write run.json."""
        self.manifest["data"] = data_fingerprint(trainer.dm.dataset, self.cfg.DATASET.ROOT)
        self.manifest["weights"] = weights_fingerprint(self.weights_files)
        if self.manifest["mode"] == "eval" and self.model_dir:
            names = trainer.get_model_names()
            self.manifest["model"] = model_fingerprint(self.model_dir, [f"{n}/{self.model_file}" for n in names])
        if self.recorded is not None:
            self._accept(content_differences(self.recorded, self.manifest))
            self.manifest["changes"] = list(self.recorded.get("changes", []))
        if self.changes:
            print(f"Continuing the run in {self.folder} with changed {describe_differences(self.changes)} "
                  f"({ALLOW_KEY} allows it)")
            self.manifest["changes"].append({k: list(v) for k, v in self.changes.items()})
        self._write()
