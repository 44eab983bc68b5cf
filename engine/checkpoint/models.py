"""Save, resume and load every registered model of a trainer: one folder per model name
(``<directory>/<name>/model.pth.tar-N``, ``model-best.pth.tar``), Dassl's layout.

``models`` is the trainer's registry, {name: Registered}; each model's CheckpointKeys decides
what its file holds and gives back (keys.py), the run's fields are shared by every file of a
save (run_state.py).
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import Any

from .. import distributed
from . import position
from .files import load_checkpoint, save_checkpoint
from .keys import CheckpointKeys
from .resume import resume_from_checkpoint


@dataclass(frozen=True)
class Registered:
    """A registered model: the module, its optimizer and scheduler (None when it has none) and its CheckpointKeys."""

    module: Any
    optim: Any = None
    sched: Any = None
    keys: CheckpointKeys = CheckpointKeys()


def save_models(models, run_state, epoch, directory, is_best=False, val_result=None, model_name=""):
    """Write every model's checkpoint (``run_state``: the run's fields, the same in every file).

    Under torchrun rank 0 writes, the others wait for it. After an epoch or mid-epoch save, older
    mid-epoch files are deleted.
    """
    if not distributed.is_main_process():
        distributed.barrier()
        return
    for name, model in models.items():
        state = {
            **model.keys.file_state(model.module),
            "epoch": epoch + 1,
            "optimizer": model.optim.state_dict() if model.optim is not None else None,
            "scheduler": model.sched.state_dict() if model.sched is not None else None,
            "val_result": val_result,
            **run_state,
        }
        save_checkpoint(state, osp.join(directory, name), is_best=is_best, model_name=model_name)
    if not model_name or position.MID_EPOCH_FILE.fullmatch(model_name):
        for name in models:  # every model has the new file: the older ones can go
            position.remove_mid_epoch_files(osp.join(directory, name), keep=model_name or None)
    distributed.barrier()


def resume_models(models, directory, found):
    """Load ``found`` ({name: (path, checkpoint)}, resume.find_resume_point) into every model,
    its optimizer and scheduler; return the epochs done."""
    start_epoch = 0
    for name, model in models.items():
        start_epoch = resume_from_checkpoint(
            osp.join(directory, name),
            model.module,
            model.optim,
            model.sched,
            restore=lambda checkpoint, name=name, model=model: model.keys.restore(name, model.module, checkpoint),
            checkpoint=found[name],
        )
    return start_epoch


def load_models(models, directory, epoch=None, check=None):
    """Load ``model-best.pth.tar`` (or ``model.pth.tar-{epoch}``) of every model for evaluation.

    ``check(name, checkpoint)`` raises when a file cannot belong to this trainer.
    """
    model_file = "model-best.pth.tar" if epoch is None else f"model.pth.tar-{epoch}"
    for name, model in models.items():
        model_path = osp.join(directory, name, model_file)
        if not osp.exists(model_path):
            raise FileNotFoundError(missing_model_message(directory, name, model_file, list(models)))
        checkpoint = load_checkpoint(model_path)
        if check is not None:
            check(name, checkpoint)
        val = checkpoint.get("val_result")
        val_txt = "" if val is None else f", val_result = {val:.1f}"
        print(f'Loading weights to {name} from "{model_path}" (epoch = {checkpoint["epoch"]}{val_txt})')
        model.keys.restore(name, model.module, checkpoint)


def missing_model_message(directory, name, model_file, names):
    found = sorted(os.listdir(directory)) if osp.isdir(directory) else None
    where = "the folder does not exist" if found is None else f"it contains {found}"
    return (
        f'Model not found at "{osp.join(directory, name, model_file)}" ({where}). '
        f"--model-dir must be the output folder of a run of this trainer, holding {names} sub-folders; "
        "--load-epoch N picks model.pth.tar-N, without it model-best.pth.tar is loaded."
    )
