"""Oxford-IIIT Pets: 37 breeds; the official test list, trainval split 80/20."""
import os

from engine.data.datasets import DATASET_REGISTRY

from . import splits
from .base import SplitDataset


@DATASET_REGISTRY.register()
class OxfordPets(SplitDataset):
    dataset_dir = "oxford_pets"
    image_folder = "images"
    split_file = "split_zhou_OxfordPets.json"

    # the reference exposes the shared split helpers here; other code calls OxfordPets.<helper>
    read_split = staticmethod(splits.read_split)
    save_split = staticmethod(splits.save_split)
    split_trainval = staticmethod(splits.split_trainval)
    subsample_classes = staticmethod(splits.subsample_classes)

    @property
    def anno_dir(self):
        return os.path.join(self.dataset_dir, "annotations")

    def split_sources(self):
        return [self.image_dir, os.path.join(self.anno_dir, "trainval.txt"), os.path.join(self.anno_dir, "test.txt")]

    def generate_split(self):
        trainval = self.read_data("trainval.txt")
        test = self.read_data("test.txt")
        train, val = splits.split_trainval(trainval)
        return train, val, test

    def read_data(self, split_file):
        """Lines "<image name> <class id> <species> <breed id>"; the class name is the image
        name without its trailing "_<n>", lowercased ("Bengal_12" -> "bengal")."""
        filepath = os.path.join(self.anno_dir, split_file)
        items = []
        with open(filepath, "r") as f:
            for line in f:
                imname, label, _species, _breed_id = line.strip().split(" ")
                breed = "_".join(imname.split("_")[:-1]).lower()
                impath = os.path.join(self.image_dir, imname + ".jpg")
                items.append(splits.make_datum(impath, int(label) - 1, breed, filepath))
        return items
