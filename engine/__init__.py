"""A Dassl-compatible engine: ``from dassl.engine import X`` ports as ``from engine import X``.

The trainer names are imported lazily so that ``engine.config`` or ``engine.utils`` can be
used without building the whole stack.
"""
_TRAINER_NAMES = ("TRAINER_REGISTRY", "SimpleTrainer", "TrainerBase", "TrainerX", "build_trainer")

__all__ = list(_TRAINER_NAMES)


def __getattr__(name):
    if name in _TRAINER_NAMES:
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'engine' has no attribute '{name}'")
