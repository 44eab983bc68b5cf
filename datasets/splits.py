"""Split files and split rules shared by the CoOp-family data sets.

A split file (``split_zhou_<Name>.json``) holds "train", "val" and "test" lists of
``[relative_image_path, label, classname]``, paths relative to the data set's image root.
Generated splits use Python's global ``random`` and ``round()`` (round half to even), so
they depend on the seed and on the order in which the file system lists the images.
"""
import json
import math
import os
import random
from collections import defaultdict

from engine.data.datasets import Datum
from engine.utils import listdir_nohidden, write_json
from engine.utils.tools import atomic_write

SUBSAMPLE_CHOICES = ("all", "base", "new")
SPLIT_LISTS = ("train", "val", "test")
FIX_SPLIT = "fix the file, or get the released split file again (python -m datasets.split_files <Name> --root DATA)"


def make_datum(impath, label, classname, listed_in):
    """A Datum whose missing-image error names the file that lists the image."""
    try:
        return Datum(impath=impath, label=label, classname=classname)
    except FileNotFoundError:
        raise FileNotFoundError(
            f'Image "{impath}" is listed in "{listed_in}" but does not exist. Check that DATASET.ROOT '
            "is the folder that holds the data set folder and that all images were extracted into it "
            "(layouts: docs/DATASETS.md)."
        ) from None


def read_split(filepath, path_prefix):
    """Read a split file; image paths are joined to ``path_prefix``."""
    print(f"Reading split from {filepath}")
    try:
        with open(filepath, "r") as f:
            split = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'The split file "{filepath}" is not valid JSON ({e}): download it again.') from None
    missing = [key for key in SPLIT_LISTS if key not in split]
    if missing:
        raise ValueError(f'The split file "{filepath}" has no {missing} list: it must hold "train", "val" and "test".')
    check_split_labels(split, filepath)

    def convert(items):
        return [make_datum(os.path.join(path_prefix, impath), label, classname, filepath)
                for impath, label, classname in items]

    return convert(split["train"]), convert(split["val"]), convert(split["test"])


def _is_entry(entry):
    """[relative image path, label (an integer >= 0), class name]."""
    return (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str) and isinstance(entry[2], str)
            and isinstance(entry[1], int) and not isinstance(entry[1], bool) and entry[1] >= 0)


def check_split_labels(split, filepath):
    """The entries of a split file: their shape, one class name per label, and every val/test label
    among the train labels (when it has a train list); an error names the file, the entry and the fix."""
    names = {}  # label -> (class name, where it was first seen)
    for key in SPLIT_LISTS:
        for index, entry in enumerate(split[key]):
            where = f"{key} entry #{index} {json.dumps(entry)}"
            if not _is_entry(entry):
                raise ValueError(
                    f'The split file "{filepath}" has a malformed {where}: each entry is [image path relative to '
                    f"the image folder, label (an integer from 0), class name]; {FIX_SPLIT}."
                )
            _, label, classname = entry
            first = names.setdefault(label, (classname, where))
            if first[0] != classname:
                raise ValueError(
                    f'The split file "{filepath}" gives label {label} two class names: "{first[0]}" ({first[1]}) and '
                    f'"{classname}" ({where}). A label has one class name: {FIX_SPLIT}.'
                )
    train_labels = {label for _, label, _ in split["train"]}
    for key in SPLIT_LISTS[1:] if train_labels else ():  # test-only files (shifted renderings) have no train
        for index, (impath, label, _) in enumerate(split[key]):
            if label not in train_labels:
                raise ValueError(
                    f'The split file "{filepath}" has {key} entry #{index} ("{impath}") with label {label}, which no '
                    f"train entry has (train labels {min(train_labels)}..{max(train_labels)}): "
                    f"such an image is always counted as a miss; {FIX_SPLIT}."
                )


def save_split(train, val, test, filepath, path_prefix):
    """Write a split file with paths made relative to ``path_prefix`` (atomically)."""

    def extract(items):
        out = []
        for item in items:
            impath = item.impath
            if impath.startswith(path_prefix):
                impath = impath[len(path_prefix):]
            if impath.startswith(("/", os.sep)):
                impath = impath[1:]
            out.append((impath, item.label, item.classname))
        return out

    split = {"train": extract(train), "val": extract(val), "test": extract(test)}
    atomic_write(filepath, lambda tmp: write_json(split, tmp))
    print(f"Saved split to {filepath}")


def split_trainval(trainval, p_val=0.2):
    """Per label (first-appearance order): shuffle, the first round(p_val * n) go to val."""
    print(f"Splitting trainval into {1 - p_val:.0%} train and {p_val:.0%} val")
    tracker = defaultdict(list)
    for idx, item in enumerate(trainval):
        tracker[item.label].append(idx)

    train, val = [], []
    for label, idxs in tracker.items():
        n_val = round(len(idxs) * p_val)
        if n_val == 0:
            raise ValueError(
                f"Cannot split class {label} ({trainval[idxs[0]].classname}) into train and val: it has "
                f"{len(idxs)} trainval images and round({p_val} * {len(idxs)}) = 0 (at least 3 are needed)."
            )
        random.shuffle(idxs)
        for n, idx in enumerate(idxs):
            (val if n < n_val else train).append(trainval[idx])
    return train, val


def read_and_split_data(image_dir, p_trn=0.5, p_val=0.2, ignored=(), new_cnames=None):
    """Split ``image_dir/<class>/<image>`` into train/val/test per class.

    Classes are the folder names sorted case-sensitively (label = sorted index); images
    keep the file system's listing order before the shuffle. ``new_cnames`` renames a
    class after its label is fixed.
    """
    categories = sorted(c for c in listdir_nohidden(image_dir) if c not in ignored)
    print(f"Splitting into {p_trn:.0%} train, {p_val:.0%} val, and {1 - p_trn - p_val:.0%} test")

    train, val, test = [], [], []
    for label, category in enumerate(categories):
        category_dir = os.path.join(image_dir, category)
        images = [os.path.join(category_dir, im) for im in listdir_nohidden(category_dir)]
        random.shuffle(images)
        n_total = len(images)
        n_train = round(n_total * p_trn)
        n_val = round(n_total * p_val)
        if n_train == 0 or n_val == 0 or n_total - n_train - n_val <= 0:
            raise ValueError(
                f'Cannot split the {n_total} images of "{category_dir}" into train/val/test '
                f"({p_trn:.0%}/{p_val:.0%}/rest, each non-empty): a class needs at least 4 images."
            )
        classname = new_cnames.get(category, category) if new_cnames else category
        for items, out in ((images[:n_train], train), (images[n_train:n_train + n_val], val),
                           (images[n_train + n_val:], test)):
            out.extend(Datum(impath=im, label=label, classname=classname) for im in items)
    return train, val, test


def check_subsample(subsample):
    if subsample not in SUBSAMPLE_CHOICES:
        raise ValueError(
            f'DATASET.SUBSAMPLE_CLASSES must be one of "all", "base" or "new", got "{subsample}".'
        )
    return subsample


def subsample_classes(*args, subsample="all"):
    """Keep the base (first ceil(n/2)) or new (the rest) labels and relabel them from 0.

    The labels come from the first argument (sorted); every argument is filtered the same
    way. "all" returns the arguments unchanged.
    """
    check_subsample(subsample)
    if subsample == "all":
        return args

    labels = sorted({item.label for item in args[0]})
    m = math.ceil(len(labels) / 2)
    print(f"SUBSAMPLE {subsample.upper()} CLASSES!")
    selected = labels[:m] if subsample == "base" else labels[m:]
    relabeler = {y: y_new for y_new, y in enumerate(selected)}
    return [
        [Datum(impath=item.impath, label=relabeler[item.label], classname=item.classname)
         for item in dataset if item.label in relabeler]
        for dataset in args
    ]


MODALS = ("", "base2novel", "cross")


def check_modal(modal):
    if modal not in MODALS:
        raise ValueError(
            f'TRAINER.MODAL must be "base2novel" or "cross" (PromptKD distillation data) or "" (the '
            f'CoOp protocol), got "{modal}".'
        )
    return modal


def distillation_splits(train, val, test, modal, subsample="all"):
    """(train, val, test) for PromptKD's distillation protocol, chosen by TRAINER.MODAL.

    base2novel: train = the train split of *all* classes (the labels are never used); val = the
    base classes' test images and test = the new classes' test images, each relabelled from 0.
    cross: train and test keep the classes SUBSAMPLE_CLASSES selects and val = test.
    "" (any other trainer): the CoOp protocol, every split subsampled alike.
    """
    check_modal(modal)
    if modal == "base2novel":
        print("TRAINER.MODAL base2novel: train on all classes, val = base test, test = new test")
        _, base_test = subsample_classes(train, test, subsample="base")
        _, new_test = subsample_classes(train, test, subsample="new")
        return train, base_test, new_test
    if modal == "cross":
        train, test = subsample_classes(train, test, subsample=subsample)
        return train, test, test
    return tuple(subsample_classes(train, val, test, subsample=subsample))
