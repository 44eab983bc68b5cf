"""Datum and DatasetBase with Dassl's names, attributes and sampling behaviour.

The private attribute names (``_impath``, ``_label``, ...) are those of Dassl, so few-shot
caches pickled by the reference code (``dassl.data.datasets.base_dataset.Datum``) load into
this class through ``engine.utils.load_pickle`` (the allow-listed unpickler).
"""
import numbers
import os
import os.path as osp
import random
import tarfile
import zipfile
from collections import defaultdict


class Datum:
    """One image: its path, class label, domain label and class name.

    The image file must exist; every data set lists only images that are on disk.
    """

    def __init__(self, impath="", label=0, domain=0, classname=""):
        if not isinstance(impath, str):
            raise TypeError(f"Datum impath must be a str, got {type(impath).__name__}: {impath!r}")
        if not osp.isfile(impath):
            raise FileNotFoundError(
                f'Image not found: "{impath}". Every image listed in a data set\'s split or annotation '
                "files must exist on disk: check DATASET.ROOT and the data set folder."
            )
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname

    @classmethod
    def from_saved_list(cls, impath, label, domain=0, classname=""):
        """A Datum of an image list saved earlier, without a file check (the reader checks a sample)."""
        datum = cls.__new__(cls)
        datum._impath, datum._label, datum._domain, datum._classname = impath, label, domain, classname
        return datum

    @property
    def impath(self):
        return self._impath

    @property
    def label(self):
        return self._label

    @property
    def domain(self):
        return self._domain

    @property
    def classname(self):
        return self._classname

    def __repr__(self):
        return (f"Datum(impath={self._impath!r}, label={self._label}, domain={self._domain}, "
                f"classname={self._classname!r})")


class DatasetBase:
    """Holds the train_x / train_u / val / test lists of Datum of one data set.

    num_classes, lab2cname and classnames come from train_x only (as Dassl), so after
    few-shot sampling and class subsampling they describe the classes actually trained on.
    """

    dataset_dir = ""  # folder of the data set under DATASET.ROOT
    domains = []  # names of all domains (domain adaptation / generalisation data sets)
    label_source = ""  # the file the labels come from (named in label errors)

    def __init__(self, train_x=None, train_u=None, val=None, test=None):
        self._train_x = train_x  # labelled training data
        self._train_u = train_u  # unlabelled training data (optional)
        self._val = val  # validation data (optional)
        self._test = test
        self._num_classes = self.get_num_classes(train_x)
        self.check_labels()
        self._lab2cname, self._classnames = self.get_lab2cname(train_x)

    def check_labels(self):
        """Every label an integer in 0..num_classes-1, every train label present, one class name per
        label in each split: a bad label stops the build with the item and the file named."""
        where = f' (labels from "{self.label_source}")' if self.label_source else ""
        name = type(self).__name__
        for split, items in (("train_x", self._train_x), ("val", self._val), ("test", self._test)):
            first = {}  # label -> its first item in this split
            for item in items or ():
                label = item.label
                if not isinstance(label, numbers.Integral) or isinstance(label, bool) or not 0 <= label < self._num_classes:
                    raise ValueError(
                        f'{name}: the {split} image "{item.impath}" has label {label!r}, outside the {self._num_classes} '
                        f"classes of the training set (labels 0..{self._num_classes - 1}){where}. Such an image is "
                        "always counted as a miss: fix its label, or add training images of its class."
                    )
                seen = first.setdefault(label, item)
                if seen.classname != item.classname:
                    raise ValueError(
                        f'{name}: label {label} has two class names in {split}: "{seen.classname}" ("{seen.impath}") and '
                        f'"{item.classname}" ("{item.impath}"){where}. A label has one class name: fix one of them.'
                    )
            if split == "train_x":
                missing = sorted(set(range(self._num_classes)) - set(first))
                if missing:
                    raise ValueError(
                        f"{name}: no training image has label(s) {missing[:10]}{' ...' if len(missing) > 10 else ''}"
                        f"{where}, but the model gets one class per label up to the largest ({self._num_classes - 1}). "
                        "Labels must run 0..N-1 with training images for each: renumber them or add the images."
                    )

    @property
    def train_x(self):
        return self._train_x

    @property
    def train_u(self):
        return self._train_u

    @property
    def val(self):
        return self._val

    @property
    def test(self):
        return self._test

    @property
    def lab2cname(self):
        return self._lab2cname

    @property
    def classnames(self):
        return self._classnames

    @property
    def num_classes(self):
        return self._num_classes

    @staticmethod
    def get_num_classes(data_source):
        """Largest label + 1 (not the number of distinct labels)."""
        if not data_source:
            raise ValueError(
                "The training set (train_x) is empty, so the number of classes is unknown. "
                "Check the data set's split files and DATASET.SUBSAMPLE_CLASSES / DATASET.NUM_SHOTS."
            )
        return max(item.label for item in data_source) + 1

    @staticmethod
    def get_lab2cname(data_source):
        """Label -> class name, and the class names in ascending label order (one name per label:
        check_labels)."""
        mapping = {item.label: item.classname for item in data_source}
        classnames = [mapping[label] for label in sorted(mapping)]
        return mapping, classnames

    def check_input_domains(self, source_domains, target_domains):
        if len(source_domains) == 0:
            raise ValueError("DATASET.SOURCE_DOMAINS is empty: name at least one source domain")
        if len(target_domains) == 0:
            raise ValueError("DATASET.TARGET_DOMAINS is empty: name at least one target domain")
        self.is_input_domain_valid(source_domains)
        self.is_input_domain_valid(target_domains)

    def is_input_domain_valid(self, input_domains):
        for domain in input_domains:
            if domain not in self.domains:
                raise ValueError(f"Input domain must belong to {self.domains}, but got [{domain}]")

    def download_data(self, url, dst, from_gdrive=True):
        """Download an archive (Google Drive) to ``dst`` and extract it next to it."""
        if not from_gdrive:
            raise NotImplementedError("Only Google Drive downloads are supported")
        import gdown

        os.makedirs(osp.dirname(dst), exist_ok=True)
        gdown.download(url, dst, quiet=False)
        print("Extracting file ...")
        out_dir = osp.dirname(dst)
        if dst.endswith(".zip"):
            with zipfile.ZipFile(dst, "r") as zf:
                zf.extractall(out_dir)
        elif dst.endswith((".tar", ".tar.gz")):
            with tarfile.open(dst, "r:gz" if dst.endswith(".gz") else "r:") as tf:
                # the "data" filter refuses absolute paths and links out of out_dir (Python >= 3.11.4)
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tf.extractall(out_dir, **safe)
        else:
            raise NotImplementedError(f'Cannot extract "{dst}": only .zip, .tar and .tar.gz are supported')
        print(f"File extracted to {out_dir}")

    def generate_fewshot_dataset(self, *data_sources, num_shots=-1, repeat=False):
        """Keep ``num_shots`` items per class of each data source (Python's global ``random``).

        A class with fewer items keeps all of them (or, with ``repeat``, draws with
        replacement). Classes are visited in order of first appearance. One source gives a
        list, several give a list of lists; ``num_shots < 1`` returns the input unchanged.
        """
        if num_shots < 1:
            return data_sources[0] if len(data_sources) == 1 else data_sources

        print(f"Creating a {num_shots}-shot dataset")
        output = []
        for data_source in data_sources:
            dataset = []
            for items in self.split_dataset_by_label(data_source).values():
                if len(items) >= num_shots:
                    dataset.extend(random.sample(items, num_shots))
                elif repeat:
                    dataset.extend(random.choices(items, k=num_shots))
                else:
                    dataset.extend(items)
            output.append(dataset)
        return output[0] if len(output) == 1 else output

    def split_dataset_by_label(self, data_source):
        """label -> items, keyed in order of first appearance."""
        output = defaultdict(list)
        for item in data_source:
            output[item.label].append(item)
        return output

    def split_dataset_by_domain(self, data_source):
        """domain -> items, keyed in order of first appearance."""
        output = defaultdict(list)
        for item in data_source:
            output[item.domain].append(item)
        return output
