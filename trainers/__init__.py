"""Trainers, registered by name in engine.TRAINER_REGISTRY when imported."""
from . import cocoop, coop, ivlp, kgcoop, maple, promptkd, promptsrc, taskres, taskres_base, zsclip  # noqa: F401
from .textrefiner import trainer  # noqa: F401  (registers "TextRefiner")
