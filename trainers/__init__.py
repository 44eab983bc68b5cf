"""Trainers, registered by name in engine.TRAINER_REGISTRY when imported."""
from . import coop, ivlp, maple, promptkd, promptsrc, zsclip  # noqa: F401
from .textrefiner import trainer  # noqa: F401  (registers "TextRefiner")
