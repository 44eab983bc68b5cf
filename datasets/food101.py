"""Food-101: 101 dishes, split 50/20/30 per class (the official meta/ lists are unused)."""
from engine.data.datasets import DATASET_REGISTRY

from . import splits
from .base import SplitDataset


@DATASET_REGISTRY.register()
class Food101(SplitDataset):
    dataset_dir = "food-101"
    image_folder = "images"
    split_file = "split_zhou_Food101.json"

    def split_sources(self):
        return [self.image_dir]

    def generate_split(self):
        return splits.read_and_split_data(self.image_dir)
