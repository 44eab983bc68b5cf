"""Checkpoint io (atomic save, load of ours and of the reference's files) and parameter counts."""
import os
import os.path as osp
import shutil
import warnings
from collections import OrderedDict

import torch
import torch.nn as nn

from . import compat_pickle
from .tools import mkdir_if_missing


def save_checkpoint(state, save_dir, is_best=False, remove_module_from_keys=True, model_name=""):
    """Save ``state`` to ``save_dir/<model_name or model.pth.tar-{epoch}>``.

    The file is written to a temporary name and renamed, so an interrupted save never
    destroys an existing checkpoint. ``save_dir/checkpoint`` names the latest file, as Dassl.
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
    tmp = f"{fpath}.tmp{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, fpath)
    print(f"Checkpoint saved to {fpath}")

    pointer = osp.join(save_dir, "checkpoint")
    tmp = f"{pointer}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{osp.basename(fpath)}\n")
    os.replace(tmp, pointer)

    if is_best:
        best_fpath = osp.join(osp.dirname(fpath), "model-best.pth.tar")
        shutil.copy(fpath, best_fpath)
        print(f'Best checkpoint saved to "{best_fpath}"')


def load_checkpoint(fpath, map_location=None):
    """Load a checkpoint written by us or by the reference code.

    Ours hold only tensors and plain values and load with ``weights_only=True``. The
    reference's pickle Dassl scheduler objects, so those fall back to a full unpickle with
    Dassl's module paths mapped onto ours (checkpoints are the user's own files).
    """
    if fpath is None:
        raise ValueError("File path is None")
    if not osp.exists(fpath):
        raise FileNotFoundError(f'File is not found at "{fpath}"')
    if map_location is None:
        map_location = None if torch.cuda.is_available() else "cpu"
    try:
        return torch.load(fpath, map_location=map_location, weights_only=True)
    except Exception:
        pass
    try:
        return torch.load(fpath, map_location=map_location, weights_only=False, pickle_module=compat_pickle.pickle_module)
    except Exception as e:
        raise RuntimeError(f'Unable to load checkpoint "{fpath}": {e}') from e


def resume_from_checkpoint(fdir, model, optimizer=None, scheduler=None, restore=None):
    """Load the file named in ``fdir/checkpoint`` into model/optimizer/scheduler; return its epoch.

    ``restore(checkpoint)`` replaces the strict ``model.load_state_dict`` when given (trainers
    whose checkpoints hold more than, or only part of, a state dict).
    """
    with open(osp.join(fdir, "checkpoint"), "r") as f:
        model_name = f.readlines()[0].strip("\n")
        fpath = osp.join(fdir, model_name)
    print(f'Loading checkpoint from "{fpath}"')
    checkpoint = load_checkpoint(fpath)
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


def count_num_param(model=None, params=None):
    if model is not None:
        return sum(p.numel() for p in model.parameters())
    if params is not None:
        total = 0
        for p in params:
            total += p["params"].numel() if isinstance(p, dict) else p.numel()
        return total
    raise ValueError("model and params must provide at least one.")


def trainable_state_dict(module: nn.Module, keep_buffers=True):
    """State dict of the parameters that require grad (plus buffers), without frozen weights."""
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    buffers = {n for n, _ in module.named_buffers()} if keep_buffers else set()
    return OrderedDict((k, v) for k, v in module.state_dict().items() if k in trainable or k in buffers)
