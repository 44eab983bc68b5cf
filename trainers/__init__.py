"""Trainers, registered by name in engine.TRAINER_REGISTRY when imported."""
from . import coop, textrefiner, zsclip  # noqa: F401
