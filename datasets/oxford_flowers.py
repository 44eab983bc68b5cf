"""Oxford Flowers-102: labels from imagelabels.mat, names from cat_to_name.json, 50/20/30."""
import os
import random
from collections import defaultdict

from engine.data.datasets import DATASET_REGISTRY
from engine.utils import read_json

from .base import SplitDataset
from .splits import make_datum


@DATASET_REGISTRY.register()
class OxfordFlowers(SplitDataset):
    dataset_dir = "oxford_flowers"
    image_folder = "jpg"
    split_file = "split_zhou_OxfordFlowers.json"

    @property
    def label_file(self):
        return os.path.join(self.dataset_dir, "imagelabels.mat")

    @property
    def lab2cname_file(self):
        return os.path.join(self.dataset_dir, "cat_to_name.json")

    def split_sources(self):
        return [self.image_dir, self.label_file, self.lab2cname_file]

    def generate_split(self):
        return self.read_data()

    def read_data(self):
        """Image i (0-based) is jpg/image_{i+1:05d}.jpg with the 1-based label labels[i];
        per label (first-appearance order): shuffle, then 50% train, 20% val, rest test."""
        from scipy.io import loadmat  # only needed to generate a split

        tracker = defaultdict(list)
        for i, label in enumerate(loadmat(self.label_file)["labels"][0]):
            tracker[int(label)].append(os.path.join(self.image_dir, f"image_{i + 1:05d}.jpg"))

        print("Splitting data into 50% train, 20% val, and 30% test")
        lab2cname = read_json(self.lab2cname_file)
        train, val, test = [], [], []
        for label, impaths in tracker.items():
            random.shuffle(impaths)
            n_total = len(impaths)
            n_train = round(n_total * 0.5)
            n_val = round(n_total * 0.2)
            if n_train == 0 or n_val == 0 or n_total - n_train - n_val <= 0:
                raise ValueError(
                    f"Cannot split flower class {label} ({n_total} images) 50/20/30 with every part "
                    "non-empty: a class needs at least 4 images."
                )
            cname = lab2cname[str(label)]
            parts = (
                (train, impaths[:n_train]),
                (val, impaths[n_train:n_train + n_val]),
                (test, impaths[n_train + n_val:]),
            )
            for out, ims in parts:
                out.extend(make_datum(im, label - 1, cname, self.label_file) for im in ims)
        return train, val, test
