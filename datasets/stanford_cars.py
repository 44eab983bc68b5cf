"""Stanford Cars: 196 models; the official test set, trainval split 80/20.

Split paths are relative to the data set folder itself (cars_train/..., cars_test/...).
"""
import os

from engine.data.datasets import DATASET_REGISTRY

from . import splits
from .base import SplitDataset


@DATASET_REGISTRY.register()
class StanfordCars(SplitDataset):
    dataset_dir = "stanford_cars"
    split_file = "split_zhou_StanfordCars.json"

    def _annotation_files(self):
        return (
            os.path.join(self.dataset_dir, "devkit", "cars_train_annos.mat"),
            os.path.join(self.dataset_dir, "cars_test_annos_withlabels.mat"),
            os.path.join(self.dataset_dir, "devkit", "cars_meta.mat"),
        )

    def split_sources(self):
        folders = [os.path.join(self.dataset_dir, d) for d in ("cars_train", "cars_test")]
        return folders + list(self._annotation_files())

    def generate_split(self):
        trainval_file, test_file, meta_file = self._annotation_files()
        trainval = self.read_data("cars_train", trainval_file, meta_file)
        test = self.read_data("cars_test", test_file, meta_file)
        train, val = splits.split_trainval(trainval)
        return train, val, test

    def read_data(self, image_dir, anno_file, meta_file):
        """Items of a .mat annotation file; the model year moves to the front of the name
        ("AM General Hummer SUV 2000" -> "2000 AM General Hummer SUV")."""
        from scipy.io import loadmat  # only needed to generate a split

        annotations = loadmat(anno_file)["annotations"][0]
        class_names = loadmat(meta_file)["class_names"][0]
        items = []
        for anno in annotations:
            impath = os.path.join(self.dataset_dir, image_dir, anno["fname"][0])
            label = int(anno["class"][0, 0]) - 1
            words = class_names[label][0].split(" ")
            classname = " ".join([words[-1]] + words[:-1])
            items.append(splits.make_datum(impath, label, classname, anno_file))
        return items
