"""SUN397: 397 scene classes; partition 01 (Training_01 = trainval, Testing_01 = test)."""
import os

from engine.data.datasets import DATASET_REGISTRY

from . import splits
from .base import SplitDataset


@DATASET_REGISTRY.register()
class SUN397(SplitDataset):
    dataset_dir = "sun397"
    image_folder = "SUN397"
    split_file = "split_zhou_SUN397.json"

    def split_sources(self):
        names = ("ClassName.txt", "Training_01.txt", "Testing_01.txt")
        return [self.image_dir] + [os.path.join(self.dataset_dir, n) for n in names]

    def generate_split(self):
        with open(os.path.join(self.dataset_dir, "ClassName.txt"), "r") as f:
            # lines "/a/abbey": label = line index
            cname2lab = {line.strip()[1:]: i for i, line in enumerate(f)}
        trainval = self.read_data(cname2lab, "Training_01.txt")
        test = self.read_data(cname2lab, "Testing_01.txt")
        train, val = splits.split_trainval(trainval)
        return train, val, test

    def read_data(self, cname2lab, text_file):
        """Lines "/b/bakery/shop/sun_x.jpg"; the class name drops the first-letter folder and
        reverses the rest so words like indoor/outdoor come first ("shop bakery")."""
        text_file = os.path.join(self.dataset_dir, text_file)
        items = []
        with open(text_file, "r") as f:
            for line in f:
                imname = line.strip()[1:]
                folder = os.path.dirname(imname)
                classname = " ".join(folder.split("/")[1:][::-1])
                impath = os.path.join(self.image_dir, imname)
                items.append(splits.make_datum(impath, cname2lab[folder], classname, text_file))
        return items
