"""Resume: find the point every model's checkpoint and every rank agree on, and load a folder's latest file."""
import os.path as osp

from .. import distributed
from . import position
from .files import latest_checkpoint, load_checkpoint


def find_resume_point(directory, names):
    """{name: (path, checkpoint)} of the newest point every registered model ``names`` has in
    ``directory`` (``directory/<name>/``), or None to train from scratch (collective under torchrun)."""
    found = None
    if all(osp.exists(osp.join(directory, name)) for name in names):
        print(f"Found checkpoint at {directory} (will resume training)")
        found = consistent_checkpoints({name: latest_checkpoint(osp.join(directory, name)) for name in names})
    same_start_on_every_rank(directory, found)
    return found


def consistent_checkpoints(found):
    """Every model's checkpoint from the same point: a run killed between two models' saves
    resumes from the earlier point, whose files the later model still has."""
    positions = {name: position.position(ckpt) for name, (_, ckpt) in found.items()}
    earliest = min(positions.values())
    for name, (fpath, _) in found.items():
        if positions[name] == earliest:
            continue
        older = osp.join(osp.dirname(fpath), position.file_name(earliest))
        if not osp.exists(older):
            described = {n: position.describe(p) for n, p in positions.items()}
            raise RuntimeError(
                f"The checkpoints disagree on where training stood ({described}) and \"{older}\" is missing: "
                "the last save was interrupted. Delete the newer files to resume from an earlier epoch."
            )
        print(f'"{fpath}" is newer than the other models\' checkpoints: resuming from "{older}"')
        found[name] = (older, load_checkpoint(older))
    return found


def same_start_on_every_rank(directory, found):
    """Under torchrun, every process must resume from the same point (collective: all ranks call it).

    On several machines a rank whose node does not see rank 0's output folder would otherwise
    train from scratch while the others resume.
    """
    at = None if found is None else position.position(next(iter(found.values()))[1])
    every = distributed.all_gather_objects(at)
    if len(set(every)) > 1:
        described = ", ".join(
            f"rank {r}: {'no checkpoint' if p is None else position.describe(p)}" for r, p in enumerate(every)
        )
        raise RuntimeError(
            f'The processes found different checkpoints in "{directory}" ({described}). Every node must see the '
            "same output folder (a shared file system) to resume, or start all of them from an empty folder."
        )


def resume_from_checkpoint(fdir, model, optimizer=None, scheduler=None, restore=None, checkpoint=None):
    """Load the latest checkpoint of ``fdir`` (see latest_checkpoint) into model/optimizer/scheduler; return its epoch.

    ``restore(checkpoint)`` replaces the strict ``model.load_state_dict`` when given (trainers
    whose checkpoints hold more than, or only part of, a state dict). ``checkpoint``: an
    already loaded ``(path, dict)`` to use instead of reading ``fdir``.
    """
    fpath, checkpoint = checkpoint or latest_checkpoint(fdir)
    print(f'Loading checkpoint from "{fpath}"')
    if restore is not None:
        restore(checkpoint)
    else:
        model.load_state_dict(checkpoint["state_dict"])
    print("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")
    start_epoch = checkpoint["epoch"]
    print(f"Previous epoch: {start_epoch}")
    return start_epoch
