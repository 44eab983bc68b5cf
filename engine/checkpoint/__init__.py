"""Checkpoints: save, resume and load every registered model, with the run's state.

- files.py: the atomic save, the load as data (ours and the reference's files), the newest
  readable file of a folder, pretrained weights by name and shape (Dassl's torchtools names);
- keys.py: ``CheckpointKeys``, the one declaration per model of the keys saved, left out and
  rebuilt, and of the fields beside the state dict (``ExtraState``, e.g. the TextRefiner cache);
- models.py: save / resume / load of a trainer's registered models, one folder per model;
- resume.py: the point every model and every rank resume from; Dassl's resume_from_checkpoint;
- run_state.py: the run's fields (RNG states, loss scaler, best result, evaluation history);
- rng.py: the global generators' states as checkpoint values; position.py: epochs and batches
  done, and the file names for them.
"""
# engine.utils re-exports Dassl's torchtools names from here, and files.py uses engine.utils:
# initialising engine.utils first lets either package be imported first.
from .. import utils as _utils  # noqa: F401
from .files import latest_checkpoint, load_checkpoint, load_pretrained_weights, save_checkpoint
from .keys import CheckpointKeys, ExtraState
from .models import Registered, load_models, resume_models, save_models
from .resume import find_resume_point, resume_from_checkpoint

__all__ = [
    "CheckpointKeys",
    "ExtraState",
    "Registered",
    "find_resume_point",
    "latest_checkpoint",
    "load_checkpoint",
    "load_models",
    "load_pretrained_weights",
    "resume_from_checkpoint",
    "resume_models",
    "save_checkpoint",
    "save_models",
]
