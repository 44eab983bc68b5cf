"""ImageFolder: your own images, one folder per class, without code (DATASET.NAME ImageFolder).

DATASET.ROOT is the image folder itself, in one of three layouts:
    ROOT/<class>/<image>          a split drawn per class with CoOp's ratios (50% train, 20% val,
                                  30% test, as DTD), seeded, written once to ROOT/split_ImageFolder.json
                                  (the split-file format of every data set) and read from then on
    ROOT/train/<class>/...        the folders' split; without val/, 20% of each class's train images
    ROOT/test/<class>/...         become val (CoOp's trainval rule), written to the split file likewise
    [ROOT/val/<class>/...]
    ROOT/test/<class>/... alone   an evaluation set (cross-data-set tests, tta.py): train = val = test
Images may sit in sub-folders of a class folder; files PIL does not know by extension are skipped.
Labels are the class folders in sorted order; class names the folder names with "_" as " ", or
the names in ROOT/classnames.txt ("<folder> <class name>" per line). Few-shot samples
(ROOT/split_fewshot/) and base/new subsampling are those of every data set.
"""
import os
import random

from PIL import Image

from engine.data.datasets import DATASET_REGISTRY, Datum, DatasetBase
from engine.utils import listdir_nohidden, mkdir_if_missing

from .base import modal_setting, subsample_setting
from .fewshot import load_or_sample_fewshot
from .splits import distillation_splits, read_split, save_split

SPLIT_FILE = "split_ImageFolder.json"
CLASSNAMES_FILE = "classnames.txt"
FEWSHOT_FOLDER = "split_fewshot"
SPLIT_FOLDERS = ("train", "val", "test")
SPLIT_SEED = 1  # the drawn split depends on the images only, not on the run's seed
P_TRAIN, P_VAL = 0.5, 0.2  # CoOp's ratios of a generated split (read_and_split_data)
P_VAL_OF_TRAIN = 0.2  # CoOp's split_trainval
DOC = "docs/OWN_DATA.md"


def image_extensions():
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def image_folder_root(cfg):
    root = cfg.DATASET.ROOT
    if not root:
        raise ValueError(f"DATASET.ROOT is empty: set it to your image folder (train.py --root FOLDER). See {DOC}.")
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(f'ImageFolder: DATASET.ROOT "{root}" is not a folder. See {DOC}.')
    return root


def _sub_folders(folder):
    return sorted(d for d in listdir_nohidden(folder) if os.path.isdir(os.path.join(folder, d)) and d != FEWSHOT_FOLDER)


def _loose_images(folder, extensions):
    return sorted(f for f in listdir_nohidden(folder) if os.path.splitext(f)[1].lower() in extensions
                  and os.path.isfile(os.path.join(folder, f)))


def detect_layout(root, extensions):
    """"classes", "split" (train/ + test/ [+ val/]) or "test_only"; one error for a mixed or partial layout."""
    folders = _sub_folders(root)
    loose = _loose_images(root, extensions)
    split = [d for d in folders if d in SPLIT_FOLDERS]
    if loose:
        raise ValueError(
            f'ImageFolder: "{root}" holds images directly ({", ".join(loose[:3])}{", ..." if len(loose) > 3 else ""}): '
            f"DATASET.ROOT must be the folder that holds one folder per class (or train/ and test/). See {DOC}."
        )
    if not split:
        return "classes"
    others = [d for d in folders if d not in SPLIT_FOLDERS]
    if others:
        raise ValueError(
            f'ImageFolder: "{root}" mixes layouts: split folders ({", ".join(split)}) and class folders '
            f'({", ".join(others[:5])}). Put every class under train/ and test/ (and val/), or drop the split '
            f"folders and keep one folder per class. See {DOC}."
        )
    if "test" not in split:
        raise ValueError(
            f'ImageFolder: "{root}" has {" and ".join(d + "/" for d in split)} but no test/: a split layout needs '
            f"train/ and test/ (val/ is optional). See {DOC}."
        )
    if "val" in split and "train" not in split:
        raise ValueError(f'ImageFolder: "{root}" has val/ and test/ but no train/. See {DOC}.')
    return "split" if "train" in split else "test_only"


def _unreadable(paths):
    bad = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.size  # the header is parsed: PIL knows the format
        except Exception as e:  # PIL raises many types for damaged files (OSError, SyntaxError, ValueError ...)
            bad.append(f"{path} ({type(e).__name__})")
    return bad


def list_class_images(folder, extensions):
    """{class folder: [image paths, sorted]} of ``folder``; errors for loose images, empty classes,
    fewer than two classes and unreadable images."""
    loose = _loose_images(folder, extensions)
    if loose:
        raise ValueError(
            f'ImageFolder: "{folder}" holds images outside class folders ({", ".join(loose[:3])}): move them '
            f"into a folder named after their class. See {DOC}."
        )
    classes, skipped = {}, []
    for name in _sub_folders(folder):
        images = []
        for current, dirs, files in os.walk(os.path.join(folder, name)):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file in sorted(f for f in files if not f.startswith(".")):
                path = os.path.join(current, file)
                (images if os.path.splitext(file)[1].lower() in extensions else skipped).append(path)
        if not images:
            raise ValueError(
                f'ImageFolder: the class folder "{os.path.join(folder, name)}" holds no images: add images or '
                "remove the folder."
            )
        classes[name] = images
    if len(classes) < 2:
        found = f'only "{next(iter(classes))}"' if classes else "none"
        raise ValueError(
            f'ImageFolder: "{folder}" needs at least two class folders to classify, found {found}. See {DOC}.'
        )
    bad = _unreadable([p for images in classes.values() for p in images])
    if bad:
        raise ValueError(
            f"ImageFolder: {len(bad)} image(s) cannot be read: {'; '.join(bad[:5])}{'; ...' if len(bad) > 5 else ''}. "
            "Replace or remove them."
        )
    if skipped:
        print(f"ImageFolder: skipped {len(skipped)} file(s) that are not images, e.g. {skipped[0]}")
    return classes


def read_classnames(root, folders):
    """{class folder: class name}: "_" -> " ", overridden by ROOT/classnames.txt."""
    names = {folder: folder.replace("_", " ") for folder in folders}
    path = os.path.join(root, CLASSNAMES_FILE)
    if not os.path.isfile(path):
        return names
    with open(path, "r", encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            folder, _, name = line.strip().partition(" ")
            if not folder:
                continue
            if folder not in names or not name.strip():
                problem = "names no class folder" if folder not in names else "gives no class name"
                raise ValueError(
                    f'{path}, line {number} ("{line.strip()}") {problem}: each line is "<class folder> <class name>", '
                    f"folders: {', '.join(sorted(names)[:8])}{', ...' if len(names) > 8 else ''}"
                )
            names[folder] = name.strip()
    return names


def _class_folder(relative_path):
    """The class folder of a split-file path: "<class>/..." or "train/<class>/..."."""
    parts = relative_path.replace(os.sep, "/").split("/")
    return parts[1] if parts[0] in SPLIT_FOLDERS and len(parts) > 2 else parts[0]


def draw_split(classes, labels, names, rng):
    """CoOp's per-class 50/20/30 cut of the shuffled images (round half to even, as read_and_split_data)."""
    train, val, test = [], [], []
    for folder, images in classes.items():
        images = list(images)
        rng.shuffle(images)
        n_train, n_val = round(len(images) * P_TRAIN), round(len(images) * P_VAL)
        if n_train == 0 or n_val == 0 or len(images) - n_train - n_val <= 0:
            raise ValueError(
                f'ImageFolder: the class folder "{folder}" has {len(images)} image(s); a drawn train/val/test split '
                "needs at least 4 per class (or give train/ and test/ folders)."
            )
        for part, out in ((images[:n_train], train), (images[n_train:n_train + n_val], val),
                          (images[n_train + n_val:], test)):
            out.extend(Datum(impath=p, label=labels[folder], classname=names[folder]) for p in part)
    return train, val, test


def draw_val(classes, labels, names, rng):
    """CoOp's trainval rule on train/: per class, round(20%) of the shuffled images become val."""
    train, val = [], []
    for folder, images in classes.items():
        images = list(images)
        rng.shuffle(images)
        n_val = round(len(images) * P_VAL_OF_TRAIN)
        if n_val == 0:
            raise ValueError(
                f'ImageFolder: train/{folder} has {len(images)} image(s); drawing a val split needs at least 3 '
                "(or give a val/ folder)."
            )
        val.extend(Datum(impath=p, label=labels[folder], classname=names[folder]) for p in images[:n_val])
        train.extend(Datum(impath=p, label=labels[folder], classname=names[folder]) for p in images[n_val:])
    return train, val


def items(classes, labels, names):
    return [Datum(impath=p, label=labels[folder], classname=names[folder])
            for folder, images in classes.items() for p in images]


@DATASET_REGISTRY.register()
class ImageFolder(DatasetBase):
    def __init__(self, cfg):
        root = image_folder_root(cfg)
        self.dataset_dir = root
        self.split_path = os.path.join(root, SPLIT_FILE)
        self.split_fewshot_dir = os.path.join(root, FEWSHOT_FOLDER)
        train, val, test = self.load_split(root)
        if cfg.DATASET.NUM_SHOTS >= 1:
            mkdir_if_missing(self.split_fewshot_dir)
        train, val = load_or_sample_fewshot(self, train, val, cfg.DATASET.NUM_SHOTS, cfg.SEED, self.split_fewshot_dir)
        train, val, test = distillation_splits(train, val, test, modal_setting(cfg), subsample_setting(cfg))
        super().__init__(train_x=train, val=val, test=test)

    def load_split(self, root):
        extensions = image_extensions()
        layout = detect_layout(root, extensions)
        if layout == "test_only":
            test = self.folder_items(root, "test", extensions)
            print(f'ImageFolder: "{root}" has test/ only: an evaluation set (train and val are its test images)')
            return test, test, test
        if os.path.exists(self.split_path):
            return self.read_split_file(root)
        if layout == "classes":
            classes = list_class_images(root, extensions)
            labels, names = self.labels_and_names(root, classes)
            train, val, test = draw_split(classes, labels, names, random.Random(SPLIT_SEED))
        else:
            train_classes = list_class_images(os.path.join(root, "train"), extensions)
            labels, names = self.labels_and_names(root, train_classes)
            test = self.folder_items(root, "test", extensions, labels, names)
            if os.path.isdir(os.path.join(root, "val")):
                val = self.folder_items(root, "val", extensions, labels, names)
                return items(train_classes, labels, names), val, test
            train, val = draw_val(train_classes, labels, names, random.Random(SPLIT_SEED))
        save_split(train, val, test, self.split_path, root)
        print(f'ImageFolder: drew a split (seed {SPLIT_SEED}) and wrote it to "{self.split_path}"; later runs read it. '
              "Delete it to draw again after adding or removing images.")
        return train, val, test

    @staticmethod
    def labels_and_names(root, classes):
        labels = {folder: label for label, folder in enumerate(classes)}  # classes: sorted folders
        return labels, read_classnames(root, classes)

    def folder_items(self, root, split, extensions, labels=None, names=None):
        """The images of ROOT/<split>/, labelled as train/'s classes (or, alone, as its own)."""
        folder = os.path.join(root, split)
        classes = list_class_images(folder, extensions)
        if labels is None:
            labels, names = self.labels_and_names(root, classes)
        unknown = sorted(set(classes) - set(labels))
        if unknown:
            raise ValueError(
                f'ImageFolder: {split}/ has class folders that train/ lacks: {", ".join(unknown[:5])}. '
                "Every class in val/ and test/ needs its folder in train/."
            )
        return items(classes, labels, names)

    def read_split_file(self, root):
        """The split file's images and labels; class names as the folders and classnames.txt say now."""
        train, val, test = read_split(self.split_path, root)

        def folder_of(item):
            return _class_folder(os.path.relpath(item.impath, root))

        names = read_classnames(root, sorted({folder_of(item) for item in train + val + test}))

        def renamed(data):
            return [Datum(impath=d.impath, label=d.label, classname=names[folder_of(d)]) for d in data]

        return renamed(train), renamed(val), renamed(test)
