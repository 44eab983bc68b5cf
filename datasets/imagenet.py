"""ImageNet (1,000 classes, val used as test and as val) and the base of its test-only variants."""
import json
import os
from collections import OrderedDict

from engine.data.datasets import DATASET_REGISTRY, DatasetBase, Datum
from engine.utils import UntrustedPickleError, listdir_nohidden, load_pickle, mkdir_if_missing, write_json_atomic

from .base import dataset_folder, modal_setting, report_short_classes, require_files, subsample_setting
from .fewshot import load_or_sample_fewshot, relative_path
from .splits import distillation_splits, make_datum


def read_classnames(text_file):
    """classnames.txt lines "<wnid> <class name with spaces>" -> OrderedDict wnid -> name."""
    classnames = OrderedDict()
    with open(text_file, "r") as f:
        for line in f:
            folder, *words = line.strip().split(" ")
            classnames[folder] = " ".join(words)
    return classnames


def read_class_folders(image_dir, folders, classnames, text_file):
    """Items of ``image_dir/<wnid>/<image>``; label = index in ``folders``."""
    items = []
    for label, folder in enumerate(folders):
        if folder not in classnames:
            raise KeyError(
                f'The class folder "{os.path.join(image_dir, folder)}" is not listed in "{text_file}": '
                "use ImageNet's classnames.txt (lines \"<wnid> <class name>\")."
            )
        class_dir = os.path.join(image_dir, folder)
        for imname in listdir_nohidden(class_dir):
            items.append(make_datum(os.path.join(class_dir, imname), label, classnames[folder], class_dir))
    return items


@DATASET_REGISTRY.register()
class ImageNet(DatasetBase):
    """images/train/<wnid>/ is the training set, images/val/<wnid>/ the test set (and val).

    The image lists are saved once to preprocessed.json (paths relative to the data set
    folder), which fixes the item order that few-shot sampling sees; delete it after changing
    the images. The reference code's preprocessed.pkl, when present, is read instead (through
    the allow-listed unpickler), so its few-shot draws see the reference's order.
    """

    dataset_dir = "imagenet"
    read_classnames = staticmethod(read_classnames)

    def __init__(self, cfg):
        subsample = subsample_setting(cfg)
        self.dataset_dir = dataset_folder(cfg, self.dataset_dir, "ImageNet")
        self.image_dir = os.path.join(self.dataset_dir, "images")
        self.preprocessed = os.path.join(self.dataset_dir, "preprocessed.json")
        self.reference_preprocessed = os.path.join(self.dataset_dir, "preprocessed.pkl")
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")
        self.label_source = os.path.join(self.dataset_dir, "classnames.txt")
        mkdir_if_missing(self.split_fewshot_dir)

        train, test = self.load_image_lists()
        train, _ = load_or_sample_fewshot(self, train, None, cfg.DATASET.NUM_SHOTS, cfg.SEED, self.split_fewshot_dir)
        report_short_classes(cfg.DATASET.NUM_SHOTS, train)
        train, val, test = distillation_splits(train, test, test, modal_setting(cfg), subsample)
        super().__init__(train_x=train, val=val, test=test)

    def load_image_lists(self):
        """(train, test): the saved lists when readable (their first images checked), else read and saved."""
        for path, read in ((self.reference_preprocessed, load_pickle), (self.preprocessed, self._read_saved_lists)):
            if os.path.exists(path):
                lists = self._saved_lists(path, read)
                if lists is not None:
                    return lists

        text_file = os.path.join(self.dataset_dir, "classnames.txt")
        split_dirs = [os.path.join(self.image_dir, s) for s in ("train", "val")]
        require_files(
            [text_file] + split_dirs,
            "ImageNet needs images/train/<wnid>/ and images/val/<wnid>/ (val arranged in class folders) "
            "and classnames.txt (get it with `python -m datasets.split_files ImageNet --root <DATASET.ROOT>`)",
        )
        classnames = read_classnames(text_file)
        train, test = (self.read_data(classnames, split_dir, text_file) for split_dir in split_dirs)
        saved = {split: [[relative_path(i.impath, self.dataset_dir), i.label, i.classname] for i in items]
                 for split, items in (("train", train), ("test", test))}
        write_json_atomic(saved, self.preprocessed, indent=None)
        print(f"Saved the ImageNet image lists to {self.preprocessed}")
        return train, test

    def _read_saved_lists(self, path):
        with open(path) as f:
            saved = json.load(f)
        return {split: [Datum.from_saved_list(os.path.join(self.dataset_dir, impath), int(label), classname=name)
                        for impath, label, name in saved[split]] for split in ("train", "test")}

    @staticmethod
    def _saved_lists(path, read):
        """(train, test) of a saved list file, or None (said in a line) when it cannot be read."""
        try:
            data = read(path)
            train, test = data["train"], data["test"]
            first = train[:1] + test[:1]
            impaths = [item.impath for item in first]
        except UntrustedPickleError:  # a pickle naming other types is refused, never read around
            raise
        except Exception as e:  # a damaged file can fail in many ways; each means "read the images again"
            print(f'Not using "{path}": it cannot be read ({type(e).__name__}: {e}); the image lists are read again')
            return None
        for impath in impaths:
            if not os.path.isfile(impath):
                raise FileNotFoundError(
                    f'"{path}" lists "{impath}", which does not exist (the images moved): '
                    f"delete {os.path.basename(path)} so that the image lists are read again."
                )
        return train, test

    @staticmethod
    def read_data(classnames, split_dir, text_file):
        folders = sorted(f.name for f in os.scandir(split_dir) if f.is_dir())
        return read_class_folders(split_dir, folders, classnames, text_file)


class ImageNetVariant(DatasetBase):
    """A test-only ImageNet variant: train_x = test = all images, no val.

    NUM_SHOTS and SUBSAMPLE_CLASSES do not apply. Each variant folder holds a copy of
    ImageNet's classnames.txt.
    """

    image_folder = ""
    ignored = ()  # non-class entries of the image folder

    def __init__(self, cfg):
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, self.dataset_dir, name)
        self.image_dir = os.path.join(self.dataset_dir, self.image_folder)
        text_file = os.path.join(self.dataset_dir, "classnames.txt")
        self.label_source = text_file
        require_files(
            [self.image_dir, text_file],
            f"{name} needs its image folder and a copy of imagenet/classnames.txt in {self.dataset_dir}",
        )
        data = self.read_data(read_classnames(text_file), text_file)
        super().__init__(train_x=data, test=data)

    def read_data(self, classnames, text_file):
        """Sorted wnid folders; label = index among the folders present."""
        folders = [f for f in listdir_nohidden(self.image_dir, sort=True) if f not in self.ignored]
        return read_class_folders(self.image_dir, folders, classnames, text_file)
