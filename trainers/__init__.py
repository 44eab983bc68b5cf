"""Trainers, registered by name in engine.TRAINER_REGISTRY when imported."""
from . import coop, zsclip  # noqa: F401
