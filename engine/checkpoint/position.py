"""Where a checkpoint stands in training, and the file name for it.

Epoch checkpoints are Dassl's ``model.pth.tar-N`` (N epochs done). A mid-epoch checkpoint
(``TRAIN.CHECKPOINT_ITER_FREQ``) is ``model.pth.tar-N-iterB``: N epochs done and B batches of
epoch N + 1. Only the newest mid-epoch file is kept.
"""
import os
import os.path as osp
import re

MID_EPOCH_FILE = re.compile(r"model\.pth\.tar-(\d+)-iter(\d+)")


def position(checkpoint):
    """(epochs done, batches of the next epoch done) of a checkpoint dict."""
    return int(checkpoint["epoch"]), int(checkpoint.get("batch", 0))


def file_name(at):
    epoch, batch = at
    return f"model.pth.tar-{epoch}" if batch == 0 else f"model.pth.tar-{epoch}-iter{batch}"


def describe(at):
    epoch, batch = at
    return f"{epoch} epochs done" if batch == 0 else f"{epoch} epochs and {batch} batches done"


def remove_mid_epoch_files(fdir, keep=None):
    """Delete the mid-epoch checkpoints of ``fdir`` but ``keep`` (a file name)."""
    if not osp.isdir(fdir):
        return
    for name in os.listdir(fdir):
        if MID_EPOCH_FILE.fullmatch(name) and name != keep:
            os.remove(osp.join(fdir, name))
