"""What the CoOp-family data sets share: locating the data set folder and the build order.

Build order of a split data set (as the reference): read the split file, or generate and
save it when missing -> few-shot (train K, val min(K, 4), cached per seed) -> keep the
base/new classes -> DatasetBase(train, val, test).
"""
import os
from collections import Counter

from engine.data.datasets import DatasetBase
from engine.utils import mkdir_if_missing

from .fewshot import load_or_sample_fewshot
from .released_files import where_to_get
from .splits import check_subsample, distillation_splits, read_split, save_split

LAYOUT_DOC = "docs/DATASETS.md"


def dataset_folder(cfg, folder, name):
    """``DATASET.ROOT/<folder>``, with one clear error when ROOT or the folder is missing."""
    root = cfg.DATASET.ROOT
    if not root:
        raise ValueError(
            "DATASET.ROOT is empty: set it to the folder that holds the data set folders "
            f"(train.py --root DATA, or DATASET.ROOT in a config). Layouts: {LAYOUT_DOC}."
        )
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f'DATASET.ROOT "{root}" does not exist or is not a folder: set it to the folder that holds '
            f"the data set folders. Layouts: {LAYOUT_DOC}."
        )
    path = os.path.join(root, folder)
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f'{name} expects a folder named "{folder}" under DATASET.ROOT, but "{path}" does not exist. '
            f"Create it with the layout given for {name} in {LAYOUT_DOC}."
        )
    return path


def subsample_setting(cfg):
    """DATASET.SUBSAMPLE_CLASSES ("all" when the key is absent), validated."""
    return check_subsample(cfg.DATASET.get("SUBSAMPLE_CLASSES", "all"))


def modal_setting(cfg):
    """TRAINER.MODAL ("" when the key is absent): PromptKD's data protocol, or "" for CoOp's."""
    return cfg.TRAINER.get("MODAL", "")


def require_files(paths, what):
    """Raise one FileNotFoundError listing the ``paths`` that do not exist."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"{what}: missing {', '.join(repr(p) for p in missing)}. Layouts: {LAYOUT_DOC}.")


def report_short_classes(num_shots, train, val=None):
    """One line naming the classes with fewer images than NUM_SHOTS (train) or min(NUM_SHOTS, 4) (val)
    and what they use: all of their images, as the reference."""
    if num_shots < 1:
        return
    parts = []
    for split, items, wanted in (("train", train, num_shots), ("val", val, min(num_shots, 4))):
        counts = Counter(item.label for item in items or ())
        names = {item.label: item.classname for item in items or ()}
        short = [f"{names[label]} ({n})" for label, n in counts.items() if n < wanted]
        if short:
            parts.append(f"{split}: {len(short)} of {len(counts)} classes have fewer than {wanted} images and use "
                         f"all of them: {', '.join(short)}")
    if parts:
        print(f"NUM_SHOTS {num_shots}: " + "; ".join(parts))


class SplitDataset(DatasetBase):
    """A data set with a train/val/test split file (``split_zhou_<Name>.json``).

    Subclasses set ``dataset_dir``, ``image_folder`` (the image root, to which split paths
    are relative; "" = the data set folder) and ``split_file``, and implement
    ``split_sources`` and ``generate_split`` for the case where the split file is missing.
    """

    image_folder = ""
    split_file = ""

    def __init__(self, cfg):
        name = type(self).__name__
        subsample = subsample_setting(cfg)
        self.dataset_dir = dataset_folder(cfg, self.dataset_dir, name)
        self.image_dir = os.path.join(self.dataset_dir, self.image_folder) if self.image_folder else self.dataset_dir
        self.split_path = os.path.join(self.dataset_dir, self.split_file) if self.split_file else None
        self.label_source = self.split_path or ""
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")
        mkdir_if_missing(self.split_fewshot_dir)

        train, val, test = self.load_split()
        train, val = load_or_sample_fewshot(self, train, val, cfg.DATASET.NUM_SHOTS, cfg.SEED, self.split_fewshot_dir)
        report_short_classes(cfg.DATASET.NUM_SHOTS, train, val)
        train, val, test = distillation_splits(train, val, test, modal_setting(cfg), subsample)
        super().__init__(train_x=train, val=val, test=test)

    def load_split(self):
        """(train, val, test) from the split file; generated and saved when it is missing."""
        if os.path.exists(self.split_path):
            return read_split(self.split_path, self.image_dir)
        name = type(self).__name__
        require_files(
            self.split_sources(),
            f'{name}: the split file "{self.split_path}" is missing ({where_to_get(name, self.split_file)}), '
            "and so are the files a split would be generated from",
        )
        train, val, test = self.generate_split()
        save_split(train, val, test, self.split_path, self.image_dir)
        print(
            f'No split file was found, so a new {name} split was generated and saved to "{self.split_path}". '
            f"Published numbers use the released {self.split_file}: {where_to_get(name, self.split_file)}, "
            "and put it at that path."
        )
        return train, val, test

    def split_sources(self):
        """Paths that ``generate_split`` reads."""
        raise NotImplementedError

    def generate_split(self):
        """(train, val, test) built from the data set's own files (Python's global ``random``)."""
        raise NotImplementedError
