"""Accept a data set either by its registered name or by its config file name.

``OxfordPets`` and ``oxford_pets`` (configs/datasets/oxford_pets.yaml) name the same data set,
so command-line tools take whichever the user has at hand.
"""
import os

import yaml

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "datasets")


def config_names():
    """config file stem -> DATASET.NAME, read from configs/datasets/*.yaml."""
    names = {}
    for filename in sorted(os.listdir(CONFIG_DIR)):
        if filename.endswith(".yaml"):
            with open(os.path.join(CONFIG_DIR, filename), "r") as f:
                names[filename[:-len(".yaml")]] = yaml.safe_load(f)["DATASET"]["NAME"]
    return names


def resolve_dataset_name(text, known):
    """The name in ``known`` that ``text`` means: a registered name (any case) or a config stem."""
    if text in known:
        return text
    by_lower = {name.lower(): name for name in known}
    if text.lower() in by_lower:
        return by_lower[text.lower()]
    stems = config_names()
    stem = text.lower().replace("-", "_")
    if stem.endswith(".yaml"):
        stem = stem[:-len(".yaml")]
    if stems.get(stem) in known:
        return stems[stem]
    raise ValueError(
        f'Unknown data set "{text}". Use a registered name ({", ".join(sorted(known))}) '
        f'or a config name from configs/datasets/ ({", ".join(sorted(stems))}).'
    )
