"""The mapper training's resumable checkpoints, in ``--out_dir``/clip_project/ with Dassl's names.

``model.pth.tar-N`` after epoch N and ``model.pth.tar-N-iterB`` after B batches of epoch N + 1
(``--checkpoint_iter_freq``), written atomically by the engine's save_checkpoint. The ``checkpoint``
file there names the newest one, and only that one is kept: each holds the mapper, its two AdamW
moments, the schedule, the random states and the position (about 0.65 GB with OPT-125m's width).
"""
import os
import os.path as osp
import re

from engine.checkpoint import position as checkpoint_position
from engine.checkpoint import resume_from_checkpoint, save_checkpoint
from tta.captioning.model import MAPPER_PREFIX

FOLDER = "clip_project"  # the mapper's name in the reference's checkpoints
CHECKPOINT_FILE = re.compile(r"model\.pth\.tar-\d+(-iter\d+)?")


def save(training, out_dir):
    """Write the training's state as its position's file; remove the older ones."""
    state = training.checkpoint()
    name = checkpoint_position.file_name(checkpoint_position.position(state))
    folder = osp.join(out_dir, FOLDER)
    save_checkpoint(state, folder, model_name=name)
    for other in os.listdir(folder):
        if CHECKPOINT_FILE.fullmatch(other) and other != name:
            os.remove(osp.join(folder, other))


def resume(training, out_dir):
    """Load the newest checkpoint of ``out_dir`` into ``training``; False when it has none."""
    folder = osp.join(out_dir, FOLDER)
    if not osp.isfile(osp.join(folder, "checkpoint")):
        return False

    def restore(checkpoint):
        mapper = {k[len(MAPPER_PREFIX):]: v for k, v in checkpoint["state_dict"].items()}
        training.captioner.clip_project.load_state_dict(mapper)
        training.restore(checkpoint)

    resume_from_checkpoint(folder, training.captioner.clip_project, restore=restore)
    print(f"Resuming the training after {checkpoint_position.describe((training.epoch, training.batch))}")
    return True
