"""The data set registry and ``build_dataset(cfg)``."""
import difflib

from ...utils.registry import Registry

DATASET_REGISTRY = Registry("DATASET")


def build_dataset(cfg):
    """Construct the data set registered under ``cfg.DATASET.NAME``."""
    name = cfg.DATASET.NAME
    available = DATASET_REGISTRY.registered_names()
    if name not in available:
        raise ValueError(_unknown_name_message(name, available))
    if cfg.VERBOSE:
        print(f"Loading dataset: {name}")
    return DATASET_REGISTRY.get(name)(cfg)


def _unknown_name_message(name, available):
    if not available:
        return (
            f'Unknown DATASET.NAME "{name}": no data set is registered. '
            "Import the data set package first (import datasets), as train.py does."
        )
    close = difflib.get_close_matches(str(name), available, n=1, cutoff=0.5)
    hint = f' Did you mean "{close[0]}"?' if close else ""
    return f'Unknown DATASET.NAME "{name}".{hint} Registered data sets: {", ".join(sorted(available))}.'
