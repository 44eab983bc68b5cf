"""Checkpoint files: the atomic save, the load (as data) of ours and of the reference's files, the
newest readable file of a folder, and the name-and-shape matching load of pretrained weights."""
import os
import os.path as osp
import re
import shutil
import warnings
from collections import OrderedDict

import torch

from ..utils.faults import save_failure_message
from ..utils.safe_pickle import UntrustedPickleError, torch_load
from ..utils.tools import atomic_write, mkdir_if_missing, write_text_atomic


def save_checkpoint(state, save_dir, is_best=False, remove_module_from_keys=True, model_name=""):
    """Save ``state`` to ``save_dir/<model_name or model.pth.tar-{epoch}>``.

    The file is written to a temporary name and renamed, so an interrupted or failed save
    (killed, disk full) never destroys an existing checkpoint nor leaves a partial file. ``save_dir/checkpoint`` names the latest file, as Dassl.
    """
    mkdir_if_missing(save_dir)
    if remove_module_from_keys:
        state = dict(state)
        state["state_dict"] = OrderedDict(
            (k[7:] if k.startswith("module.") else k, v) for k, v in state["state_dict"].items()
        )
    if not model_name:
        model_name = "model.pth.tar-" + str(state["epoch"])
    fpath = osp.join(save_dir, model_name)
    pointer = osp.join(save_dir, "checkpoint")
    try:
        atomic_write(fpath, lambda tmp: torch.save(state, tmp))
        print(f"Checkpoint saved to {fpath}")
        write_text_atomic(pointer, f"{osp.basename(fpath)}\n")
        if is_best:
            best_fpath = osp.join(osp.dirname(fpath), "model-best.pth.tar")
            atomic_write(best_fpath, lambda tmp: shutil.copyfile(fpath, tmp))
            print(f'Best checkpoint saved to "{best_fpath}"')
    except (OSError, RuntimeError) as e:  # torch.save reports a failed write as RuntimeError
        raise OSError(save_failure_message(fpath, e, _pointed_file(save_dir))) from e


def _pointed_file(fdir):
    """The file named in ``fdir/checkpoint`` (None when there is no readable pointer)."""
    try:
        with open(osp.join(fdir, "checkpoint")) as f:
            return osp.join(fdir, f.readline().strip())
    except OSError:
        return None


def load_checkpoint(fpath, map_location="cpu"):
    """Load a checkpoint written by us or by the reference code, onto the CPU by default.

    Every restore path moves what it loads to the model's device (``load_state_dict`` copies
    into the parameters, optimizers cast their state to the parameters' devices, the GPA sum
    and the TextRefiner cache are moved explicitly), so a file saved on one device resumes on
    another and no rank of a multi-GPU run loads onto another rank's GPU.

    The file is read as data (``safe_pickle.torch_load``): ours pass ``weights_only``; the
    reference's pickle optimizer and scheduler objects, which the allow-list admits as records.
    A file naming anything else raises UntrustedPickleError (not a RuntimeError: resuming
    never falls back to an earlier file past it).
    """
    if fpath is None:
        raise ValueError("File path is None")
    if not osp.exists(fpath):
        raise FileNotFoundError(f'File is not found at "{fpath}"')
    try:
        return torch_load(fpath, map_location=map_location)
    except UntrustedPickleError:
        raise
    except Exception as e:
        raise RuntimeError(f'Unable to load checkpoint "{fpath}": {e}') from e


def latest_checkpoint(fdir):
    """``(path, checkpoint)`` of the newest loadable checkpoint in ``fdir``.

    The file named in ``fdir/checkpoint`` comes first. When it cannot be read (truncated,
    corrupted) it is named in a warning and left in place, and the newest readable
    ``model.pth.tar-N`` before it is used instead; with none, the error names every file tried.
    """
    pointed = _pointed_file(fdir)
    if pointed is None:
        raise FileNotFoundError(f'No readable "checkpoint" file in "{fdir}" to resume from.')
    candidates = [pointed] + [
        osp.join(fdir, name)
        for name in sorted(
            (n for n in os.listdir(fdir) if re.fullmatch(r"model\.pth\.tar-\d+", n)),
            key=lambda n: -int(n.rsplit("-", 1)[1]),
        )
        if osp.join(fdir, name) != pointed
    ]
    failed = []
    for fpath in candidates:
        try:
            checkpoint = load_checkpoint(fpath)
        except (RuntimeError, FileNotFoundError) as e:
            print(f'Warning: cannot read the checkpoint "{fpath}" ({_first_line(e)}); it is left in place and an earlier one is tried')
            failed.append(fpath)
            continue
        if failed and checkpoint.get("epoch", 0) >= _epoch_of(pointed, default=10**9):
            continue  # only an earlier file may stand in for the unreadable latest one
        return fpath, checkpoint
    raise RuntimeError(
        f"No readable checkpoint in \"{fdir}\" (tried {failed}). Remove the unreadable files to train "
        "from scratch, or point --output-dir at another folder."
    )


def _epoch_of(fpath, default):
    match = re.search(r"model\.pth\.tar-(\d+)$", fpath)
    return int(match.group(1)) if match else default


def _first_line(error):
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def load_pretrained_weights(model, weight_path):
    """Load the matching (same name and shape) entries of a checkpoint into ``model``."""
    checkpoint = load_checkpoint(weight_path)
    state_dict = checkpoint.get("state_dict", checkpoint)
    model_dict = model.state_dict()
    matched, discarded = OrderedDict(), []
    for k, v in state_dict.items():
        if k.startswith("module."):
            k = k[7:]
        if k in model_dict and model_dict[k].size() == v.size():
            matched[k] = v
        else:
            discarded.append(k)
    model_dict.update(matched)
    model.load_state_dict(model_dict)
    if not matched:
        warnings.warn(f"Cannot load {weight_path} (check the key names manually)")
    else:
        print(f"Successfully loaded pretrained weights from {weight_path}")
        if discarded:
            print(f"Layers discarded due to unmatched keys or size: {discarded}")
