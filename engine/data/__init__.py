"""Data pipeline: ``from dassl.data import DataManager`` ports as ``from engine.data import DataManager``."""
_NAMES = ("DataManager", "DatasetWrapper", "build_data_loader")

__all__ = list(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        from . import data_manager

        return getattr(data_manager, name)
    raise AttributeError(f"module 'engine.data' has no attribute '{name}'")
